// The command line of one windowpane-cli command: --name VALUE (or --name=VALUE) options, boolean
// --name flags and up to a given number of positional arguments, checked against what the command
// declares (ArgSpec).
//
// Errors: every malformed, unknown or missing argument throws UsageError, whose message is the one
// line windowpane-cli prints before exiting with status 2.
#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace wp::cli {

struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// What a command accepts. A constructor rather than an aggregate, so that a command table may
// leave out the trailing fields.
struct ArgSpec {
    ArgSpec(std::vector<std::string> flags_ = {}, std::vector<std::string> options_ = {}, int max_positional_ = 0,
            std::vector<std::string> repeatable_ = {})
        : flags(std::move(flags_)), options(std::move(options_)), max_positional(max_positional_),
          repeatable(std::move(repeatable_)) {}

    std::vector<std::string> flags;    // --name: boolean, takes no value
    std::vector<std::string> options;  // --name VALUE or --name=VALUE
    int max_positional = 0;            // arguments not starting with "--" (or following "--")
    // Options that may be given more than once (diverge's --model A ... --model B ...); any other
    // option given twice is a UsageError, never silently the last one.
    std::vector<std::string> repeatable;
};

class Args {
public:
    // Parses argv[first..argc). An unknown option, an option without its value or one positional
    // argument too many throws UsageError. "--help" where an option may stand ends the parsing and
    // sets help_requested().
    Args(int argc, char** argv, int first, const ArgSpec& spec);

    bool help_requested() const { return help_; }
    bool has(const std::string& name) const { return values_.count(name) != 0; }
    const std::vector<std::string>& positional() const { return positional_; }

    // The value of a required option; UsageError "missing option --name" when absent.
    std::string str(const std::string& name) const;
    std::string str(const std::string& name, const std::string& fallback) const;
    // The option as a whole integer / a number, or `fallback` when absent; UsageError otherwise.
    long long integer(const std::string& name, long long fallback) const;
    double number(const std::string& name, double fallback) const;
    bool flag(const std::string& name) const { return has(name); }
    // Every option as given, in order (--name=value and --name value alike).
    const std::vector<std::pair<std::string, std::string>>& in_order() const { return ordered_; }

private:
    std::map<std::string, std::string> values_;
    std::vector<std::pair<std::string, std::string>> ordered_;
    std::vector<std::string> positional_;
    bool help_ = false;
};

// --threads N checked against 0..kMaxThreads (UsageError "--threads must be between 0 and 256"
// otherwise), or `fallback` when absent.
int threads_option(const Args& args, int fallback);

// "2,17,5" as token ids; UsageError for an empty list or item ("1,,2", "2,"), anything but a
// decimal number, or a number outside 0..2^31-1.
std::vector<int> parse_ids(const std::string& csv);

}  // namespace wp::cli
