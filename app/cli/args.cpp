#include "args.h"

#include <algorithm>
#include <sstream>

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
        values_[name] = value;
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

std::vector<int> parse_ids(const std::string& csv) {
    std::vector<int> ids;
    std::stringstream ss(csv);
    std::string item;
    while (std::getline(ss, item, ',')) {
        if (item.empty()) continue;
        try {
            std::size_t pos = 0;
            const long v = std::stol(item, &pos);
            if (pos != item.size() || v < 0 || v > 0x7fffffff) throw std::invalid_argument(item);
            ids.push_back(static_cast<int>(v));
        } catch (const std::exception&) {
            throw UsageError("--ids expects comma-separated token ids, got \"" + item + "\"");
        }
    }
    if (ids.empty()) throw UsageError("--ids is empty");
    return ids;
}

}  // namespace wp::cli
