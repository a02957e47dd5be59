#include "args.h"

#include <algorithm>
#include <charconv>
#include <string_view>

#include "wp/model/threads.h"

namespace wp::cli {

namespace {

bool contains(const std::vector<std::string>& names, const std::string& name) {
    return std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

Args::Args(int argc, char** argv, int first, const ArgSpec& spec) {
    for (int i = first; i < argc; ++i) {
        std::string a = argv[i];
        if (a.rfind("--", 0) != 0 || a == "--") {
            if (a == "--" && i + 1 < argc) a = argv[++i];
            if (static_cast<int>(positional_.size()) >= spec.max_positional)
                throw UsageError("unexpected argument \"" + a + "\"");
            positional_.push_back(a);
            continue;
        }
        std::string name = a.substr(2);
        if (name == "help") {
            help_ = true;
            return;
        }
        std::string value;
        const auto eq = name.find('=');
        if (eq != std::string::npos) {
            value = name.substr(eq + 1);
            name = name.substr(0, eq);
        }
        const bool is_flag = contains(spec.flags, name);
        if (!is_flag && !contains(spec.options, name)) throw UsageError("unknown option --" + name);
        if (is_flag && eq == std::string::npos) {
            value.push_back('1');
        } else if (eq == std::string::npos) {
            if (i + 1 >= argc) throw UsageError("option --" + name + " needs a value");
            value = argv[++i];
        }
        if (values_.count(name) != 0 && !contains(spec.repeatable, name))
            throw UsageError("--" + name + " is given twice");
        values_[name] = value;
        ordered_.emplace_back(name, value);
    }
}

std::string Args::str(const std::string& name) const {
    const auto it = values_.find(name);
    if (it == values_.end()) throw UsageError("missing option --" + name);
    return it->second;
}

std::string Args::str(const std::string& name, const std::string& fallback) const {
    return has(name) ? str(name) : fallback;
}

long long Args::integer(const std::string& name, long long fallback) const {
    if (!has(name)) return fallback;
    const std::string s = str(name);
    try {
        std::size_t pos = 0;
        const long long v = std::stoll(s, &pos);
        if (pos != s.size()) throw std::invalid_argument(s);
        return v;
    } catch (const std::exception&) {
        throw UsageError("--" + name + " expects an integer, got \"" + s + "\"");
    }
}

double Args::number(const std::string& name, double fallback) const {
    if (!has(name)) return fallback;
    const std::string s = str(name);
    try {
        std::size_t pos = 0;
        const double v = std::stod(s, &pos);
        if (pos != s.size()) throw std::invalid_argument(s);
        return v;
    } catch (const std::exception&) {
        throw UsageError("--" + name + " expects a number, got \"" + s + "\"");
    }
}

int threads_option(const Args& args, int fallback) {
    const long long n = args.integer("threads", fallback);
    if (n < 0 || n > kMaxThreads)
        throw UsageError("--threads must be between 0 and " + std::to_string(kMaxThreads) + ", got " +
                         std::to_string(n));
    return static_cast<int>(n);
}

std::vector<int> parse_ids(const std::string& csv) {
    if (csv.empty()) throw UsageError("--ids is empty");
    std::vector<int> ids;
    std::size_t start = 0;
    for (;;) {
        const std::size_t comma = std::min(csv.find(',', start), csv.size());
        const std::string_view item(csv.data() + start, comma - start);
        if (item.empty())
            throw UsageError("--ids expects comma-separated token ids, got an empty item in \"" + csv + "\"");
        // from_chars takes no sign, space or trailing text, and reports values beyond int.
        int v = 0;
        const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
        if (ec == std::errc::result_out_of_range || (ec == std::errc() && end == item.data() + item.size() && v < 0))
            throw UsageError("--ids: " + std::string(item) + " is not a token id (0 to 2147483647)");
        if (ec != std::errc() || end != item.data() + item.size())
            throw UsageError("--ids expects comma-separated token ids, got \"" + std::string(item) + "\"");
        ids.push_back(v);
        if (comma == csv.size()) break;
        start = comma + 1;
    }
    return ids;
}

}  // namespace wp::cli
