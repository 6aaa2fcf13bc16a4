// kiln: train, evaluate, inspect checkpoints, print resolved configs.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "cli.h"
#include "kiln/train/run_config.h"

namespace {

const char* kUsage =
    "usage: kiln <command> [options]\n"
    "\n"
    "commands:\n"
    "  train CONFIG [--set key.path=value ...]     train (or resume) the run a YAML file describes\n"
    "  eval CONFIG --checkpoint PATH [--set ...]   evaluate a checkpoint on the config's eval data\n"
    "  inspect CHECKPOINT                          step, metrics, config and tensors of a checkpoint\n"
    "  config CONFIG [--set ...]                   print the fully resolved config, defaults included\n"
    "\n"
    "'kiln <command> --help' describes each. Exit codes: 0 done, 1 run failed, 2 bad usage or config.\n";

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::fputs(kUsage, stderr);
    return kiln::cli::kExitUsage;
  }
  const std::string command = args.front();
  args.erase(args.begin());
  try {
    if (command == "-h" || command == "--help" || command == "help") {
      std::fputs(kUsage, stdout);
      return kiln::cli::kExitOk;
    }
    if (command == "train") return kiln::cli::train_command(args);
    if (command == "eval") return kiln::cli::eval_command(args);
    if (command == "inspect") return kiln::cli::inspect_command(args);
    if (command == "config") return kiln::cli::config_command(args);
    std::fprintf(stderr, "kiln: unknown command '%s'\n\n%s", command.c_str(), kUsage);
    return kiln::cli::kExitUsage;
  } catch (const kiln::cli::UsageError& e) {
    std::fprintf(stderr, "kiln %s: %s\n(see 'kiln %s --help')\n", command.c_str(), e.message.c_str(),
                 command.c_str());
    return kiln::cli::kExitUsage;
  } catch (const kiln::train::ConfigError& e) {
    std::fprintf(stderr, "kiln %s: config error: %s\n", command.c_str(), e.what());
    return kiln::cli::kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kiln %s: error: %s\n", command.c_str(), e.what());
    return kiln::cli::kExitFailed;
  }
}
