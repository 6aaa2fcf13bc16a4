// Ctrl-C and `kill` stop a run cleanly: the handler only sets a flag (the
// one thing a signal handler may safely do); the trainer finishes its step
// and checkpoints. A second signal means "now": _exit without cleanup.
#include <signal.h>
#include <unistd.h>

#include "cli.h"

namespace kiln::cli {

namespace {

std::atomic<bool> g_stop{false};
std::atomic<int> g_signals{0};  // lock-free, so usable in a handler

void on_signal(int sig) {
  if (g_signals.fetch_add(1) > 0) _exit(128 + sig);
  g_stop.store(true);
  static const char kMsg[] = "\nkiln: stopping after this step and writing a checkpoint (signal again to quit now)\n";
  [[maybe_unused]] ssize_t n = write(STDERR_FILENO, kMsg, sizeof kMsg - 1);
}

}  // namespace

const std::atomic<bool>* install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  return &g_stop;
}

}  // namespace kiln::cli
