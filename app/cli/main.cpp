// windowpane-cli: the engine from the command line, for scripts, tests and benchmarks.
//
// The commands are tables (command.h), one per area; this file finds a command by name, parses its
// arguments, prints the help and turns errors into exit statuses: 2 for usage errors, 3 for a chat
// template that fails to parse or render, 1 for any other error, each with one line on stderr.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "command.h"
#include "wp/chat/chat_template.h"
#include "wp/model/threads.h"
#include "wp/version.h"

namespace {

using wp::cli::Args;
using wp::cli::Command;
using wp::cli::CommandGroup;

std::vector<const CommandGroup*> command_groups() {
    return {&wp::cli::model_commands(), &wp::cli::text_commands(), &wp::cli::head_commands(), &wp::cli::inspect_commands(), &wp::cli::hub_commands(), &wp::cli::serve_commands(), &wp::cli::bench_commands()};
}

const Command* find_command(const std::string& name) {
    for (const CommandGroup* g : command_groups())
        for (const Command& c : g->commands)
            if (c.name == name) return &c;
    return nullptr;
}

// Every command with its summary, by group.
void print_overview(std::FILE* out) {
    std::fputs("usage: windowpane-cli <command> [options]\n", out);
    for (const CommandGroup* g : command_groups()) {
        std::fprintf(out, "\n%s:\n", g->title.c_str());
        for (const Command& c : g->commands) std::fprintf(out, "  %-16s %s\n", c.name.c_str(), c.summary.c_str());
    }
    std::fputs("\n  <command> --help  the command's usage and options\n"
               "  --help            this text\n"
               "  --version         the version\n",
               out);
}

// The command's forms (wrapped lines aligned under the first) and what it does.
void print_usage(const Command& c, std::FILE* out) {
    const std::string lead = "windowpane-cli " + c.name + " ";
    const std::string indent(std::string("usage: ").size() + lead.size(), ' ');
    bool first = true;
    for (const std::string& form : c.synopsis) {
        std::string text = form;
        for (std::size_t nl = text.find('\n'); nl != std::string::npos; nl = text.find('\n', nl + 1))
            text.insert(nl + 1, indent);
        std::fprintf(out, "%s%s%s\n", first ? "usage: " : "       ", lead.c_str(), text.c_str());
        first = false;
    }
    std::fprintf(out, "\n%s", c.details.c_str());
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        print_overview(stderr);
        return 2;
    }
    const std::string name = argv[1];
    if (name == "--help" || name == "-h" || name == "help") {
        print_overview(stdout);
        return 0;
    }
    if (name == "--version") {
        std::printf("windowpane-cli %s\n", WP_VERSION);
        return 0;
    }
    try {
        const Command* command = find_command(name);
        if (!command) throw wp::cli::UsageError("unknown command \"" + name + "\" (see windowpane-cli --help)");
        const Args args(argc, argv, 2, command->args);
        if (args.help_requested()) {
            print_usage(*command, stdout);
            return 0;
        }
        // Once per process, before any model runs: the command's --threads, else one per core.
        wp::set_blas_threads(wp::cli::threads_option(args, 0));
        return command->run(args);
    } catch (const wp::cli::TemplateFailure& e) {
        std::fprintf(stderr, "windowpane-cli: template error: %s\n", e.what());
        return 3;
    } catch (const wp::TemplateError& e) {  // a folder's template that does not parse (chat, generate)
        std::fprintf(stderr, "windowpane-cli: template error: %s\n", e.what());
        return 3;
    } catch (const wp::cli::UsageError& e) {
        std::fprintf(stderr, "windowpane-cli: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "windowpane-cli: error: %s\n", e.what());
        return 1;
    }
}
