#include "run_dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "kiln/core/error.h"

namespace kiln::train::detail {

RunDirLock::RunDirLock(const std::filesystem::path& dir) {
  const std::string path = (dir / ".lock").string();
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  KILN_CHECK(fd_ >= 0, "cannot open ", path, ": ", std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char holder[32] = {0};
    [[maybe_unused]] ssize_t n = ::pread(fd_, holder, sizeof holder - 1, 0);
    ::close(fd_);
    fd_ = -1;
    KILN_CHECK(err != EWOULDBLOCK, "run directory ", dir.string(), " is in use by another kiln train (pid ",
               std::string(holder).empty() ? "unknown" : std::string(holder),
               "); stop it first, or give this run another run.output_dir");
    KILN_ERROR("cannot lock ", path, ": ", std::strerror(err));
  }
  // Who holds it, for the message above.
  const std::string pid = std::to_string(::getpid());
  if (::ftruncate(fd_, 0) == 0) {
    [[maybe_unused]] ssize_t n = ::pwrite(fd_, pid.data(), pid.size(), 0);
  }
}

RunDirLock::~RunDirLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock
}

}  // namespace kiln::train::detail
