#pragma once
// The `kiln` program's subcommands. Exit codes: 0 done, 1 the run failed,
// 2 bad usage or a bad config.
#include <atomic>
#include <string>
#include <vector>

namespace kiln::cli {

constexpr int kExitOk = 0, kExitFailed = 1, kExitUsage = 2;

int train_command(const std::vector<std::string>& args);
int eval_command(const std::vector<std::string>& args);
int inspect_command(const std::vector<std::string>& args);
int config_command(const std::vector<std::string>& args);

// A usage error: message + "see 'kiln CMD --help'", exit code 2.
struct UsageError {
  std::string message;
};

// CONFIG plus --set key=value (repeatable; also --set=key=value) and the
// flags a command accepts (--flag VALUE or --flag=VALUE); anything else is a
// UsageError.
struct ParsedArgs {
  std::vector<std::string> positional;
  std::vector<std::string> overrides;
  std::vector<std::pair<std::string, std::string>> flags;
  bool help = false;
  bool quiet = false;
  std::string flag(const std::string& name) const;
};
ParsedArgs parse_args(const std::vector<std::string>& args, const std::vector<std::string>& value_flags);

// SIGINT/SIGTERM: the first sets the flag the trainer polls between steps;
// a second exits at once (status 128 + signal).
const std::atomic<bool>* install_stop_handlers();

}  // namespace kiln::cli
