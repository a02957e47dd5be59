// A JSON tree built within a nesting limit and a limit on the keys of one object, with an optional
// look at every object key as it is read. nlohmann's parser callback would do both, but it rescans the parent container each time a
// child container closes (quadratic in siblings: 100,000 small objects take most of a minute), so
// this wraps the plain DOM builder its parse() uses instead.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace wp::json_sax {

// Thrown when a container opens past the depth limit, or an object gets one key too many; callers
// turn them into their own messages.
struct TooDeep {};
struct TooManyKeys {};

struct Limits {
    int max_depth = 200;
    std::size_t max_keys = static_cast<std::size_t>(-1);  // keys of one object
};

template <class Json, class OnKey>
class LimitedDom : public nlohmann::detail::json_sax_dom_parser<Json> {
    using Base = nlohmann::detail::json_sax_dom_parser<Json>;

public:
    // on_key(depth, key): depth 1 for the keys of the top-level object.
    LimitedDom(Json& result, Limits limits, OnKey on_key) : Base(result, true), limits_(limits), on_key_(on_key) {}

    bool start_object(std::size_t n) {
        open();
        return Base::start_object(n);
    }
    bool end_object() {
        keys_.pop_back();
        return Base::end_object();
    }
    bool start_array(std::size_t n) {
        open();
        return Base::start_array(n);
    }
    bool end_array() {
        keys_.pop_back();
        return Base::end_array();
    }
    bool key(typename Json::string_t& k) {
        if (++keys_.back() > limits_.max_keys) throw TooManyKeys{};
        on_key_(static_cast<int>(keys_.size()), k);
        return Base::key(k);
    }

private:
    void open() {
        if (keys_.size() >= static_cast<std::size_t>(limits_.max_depth)) throw TooDeep{};
        keys_.push_back(0);
    }

    std::vector<std::size_t> keys_;  // per open container, keys read so far
    Limits limits_;
    OnKey on_key_;
};

// Parses [first, last) as one JSON value (nothing but whitespace after it). Throws TooDeep or
// nlohmann's parse_error / out_of_range, as Json::parse would.
template <class Json, class Iterator, class OnKey>
Json parse(Iterator first, Iterator last, Limits limits, OnKey on_key) {
    Json result;
    LimitedDom<Json, OnKey> sax(result, limits, on_key);
    Json::sax_parse(first, last, &sax);
    return result;
}

template <class Json, class Iterator>
Json parse(Iterator first, Iterator last, Limits limits) {
    return parse<Json>(first, last, limits, [](int, const typename Json::string_t&) {});
}

}  // namespace wp::json_sax
