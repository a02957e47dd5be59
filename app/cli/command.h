// The table of windowpane-cli commands. main() looks a command up by name, parses its arguments
// against its ArgSpec and runs it; `windowpane-cli --help` lists every group with each command's
// summary, `windowpane-cli NAME --help` prints the command's usage.
//
// Adding a command: write `int run(const Args&)` in the file of its area and add an entry to that
// file's group. A command returns the exit status; it throws UsageError for bad arguments (status
// 2), TemplateFailure for a chat template that fails to render (status 3; a wp::TemplateError from
// loading a folder whose template does not parse exits 3 too) and any other exception
// for other errors (status 1); main() prints the message as one line on stderr.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "args.h"

namespace wp::cli {

struct Command {
    std::string name;
    std::string summary;   // one line, for the command list of --help
    std::vector<std::string> synopsis;  // the arguments after the name, one entry per form ("\n" wraps)
    std::string details;   // what it does and what its options mean, for NAME --help
    ArgSpec args;
    int (*run)(const Args&) = nullptr;
};

struct CommandGroup {
    std::string title;  // heading of the group in --help
    std::vector<Command> commands;
};

// The groups, one per file: commands_model.cpp, commands_text.cpp, commands_heads.cpp, commands_hub.cpp,
// commands_bench.cpp, commands_inspect.cpp,
// commands_serve.cpp.
const CommandGroup& model_commands();
const CommandGroup& hub_commands();
const CommandGroup& head_commands();
const CommandGroup& text_commands();
const CommandGroup& bench_commands();
const CommandGroup& inspect_commands();
const CommandGroup& serve_commands();

// A chat template that fails to render: windowpane-cli exits with status 3.
struct TemplateFailure : std::runtime_error {
    using std::runtime_error::runtime_error;
};

}  // namespace wp::cli
