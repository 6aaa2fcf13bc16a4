#include "kiln/nn/serialize/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "kiln/core/error.h"

namespace kiln::nn::serialize {
namespace {

std::atomic<unsigned> temp_counter{0};

int open_temp(const std::string& path, std::string& temp_path) {
  std::filesystem::path p(path);
  std::string dir = p.parent_path().string();
  // Hidden and tagged with pid and a counter, so concurrent writers (threads
  // or processes) never share a temporary; O_EXCL makes a clash a retry
  // instead of two writers in one file. Mode 0666 lets the umask decide the
  // permissions, as for any newly created file.
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::string name(1, '.');  // built by appending: GCC 12 warns falsely on "." + std::string
    name += p.filename().string();
    name += ".tmp." + std::to_string(::getpid()) + "." + std::to_string(temp_counter.fetch_add(1));
    temp_path = dir.empty() ? name : dir + "/" + name;
    int fd = ::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0 || errno != EEXIST) return fd;
  }
  return -1;
}

}  // namespace

AtomicFileWriter::AtomicFileWriter(std::string path, std::string what)
    : path_(std::move(path)), what_(std::move(what)) {
  KILN_CHECK(!path_.empty(), what_, ": empty file name");
  std::string temp;
  fd_ = open_temp(path_, temp);
  // Not recorded before it exists: discard() must never unlink a file we did not create.
  if (fd_ < 0) fail("cannot create a temporary file '" + temp + "' beside it", errno);
  temp_path_ = std::move(temp);
}

AtomicFileWriter::~AtomicFileWriter() {
  if (!committed_) discard();
}

void AtomicFileWriter::discard() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
  temp_path_.clear();
}

void AtomicFileWriter::fail(const std::string& problem, int err) {
  discard();
  KILN_ERROR(what_, ": file '", path_, "': ", problem, err ? ": " : "", err ? std::strerror(err) : "");
}

void AtomicFileWriter::write(const void* data, size_t nbytes) {
  KILN_CHECK(fd_ >= 0 && !committed_, what_, ": file '", path_, "': write after commit or failure");
  const char* p = static_cast<const char*>(data);
  while (nbytes > 0) {
    ssize_t n = ::write(fd_, p, nbytes);  // short writes happen (signals, >2 GiB requests)
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("write failed", errno);
    }
    p += n;
    nbytes -= static_cast<size_t>(n);
  }
}

void AtomicFileWriter::commit() {
  KILN_CHECK(fd_ >= 0 && !committed_, what_, ": file '", path_, "': commit after commit or failure");
  if (::fsync(fd_) != 0) fail("fsync failed", errno);
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail("close failed", errno);  // NFS reports write errors only here
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) fail("cannot rename the temporary file into place", errno);
  committed_ = true;
  temp_path_.clear();
  // The rename is durable only once the directory entry is on disk. Failing
  // here would not make the file any less complete, so errors are ignored.
  std::string dir = std::filesystem::path(path_).parent_path().string();
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

void write_file_atomically(const std::string& path, const std::string& bytes, const std::string& what) {
  AtomicFileWriter writer(path, what);
  writer.write(bytes.data(), bytes.size());
  writer.commit();
}

}  // namespace kiln::nn::serialize
