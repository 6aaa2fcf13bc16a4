#pragma once
// Writing a file so that readers only ever see the old file or the complete
// new one: bytes go to a temporary file beside the target (same directory,
// hence same filesystem, so rename is atomic), which is fsynced, renamed over
// the target, and the directory fsynced so the rename itself survives a
// crash. Anything short of commit() removes the temporary file.
#include <cstddef>
#include <string>

namespace kiln::nn::serialize {

class AtomicFileWriter {
 public:
  // `what` prefixes error messages ("save_safetensors").
  AtomicFileWriter(std::string path, std::string what);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(const void* data, size_t nbytes);
  void commit();

 private:
  [[noreturn]] void fail(const std::string& problem, int err);
  void discard() noexcept;

  std::string path_, what_, temp_path_;
  int fd_ = -1;
  bool committed_ = false;
};

// The whole of `bytes` as the new content of `path`, atomically.
void write_file_atomically(const std::string& path, const std::string& bytes, const std::string& what);

}  // namespace kiln::nn::serialize
