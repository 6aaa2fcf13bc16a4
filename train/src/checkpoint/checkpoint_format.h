#pragma once
// What the checkpoint reader and writer agree on beyond checkpoint.h: the
// format constants, the group order the checksum walks, and the checksum's
// byte encoding.
#include <array>
#include <cstdint>
#include <string>

#include "kiln/core/error.h"
#include "kiln/core/tensor.h"
#include "kiln/nn/serialize/hdf5.h"

namespace kiln::train::detail {

inline constexpr const char* kFormat = "kiln-checkpoint";
inline constexpr int64_t kFormatVersion = 1;
inline constexpr const char* kChecksumAttr = "checksum";
// The checksum covers the groups' datasets in this order, each group's in
// creation order.
inline constexpr std::array<const char*, 5> kGroups{"model", "optimizer", "scheduler", "rng", "extra"};
inline constexpr std::array<const char*, 4> kRngEntries{"generator_seed", "generator_offset", "loader_epoch",
                                                        "loader_batch"};

// An error already worded for the user (naming the file); the loaders let it
// through as it is, while errors from the HDF5 layer get wrapped with what
// they mean for the checkpoint.
class CheckpointError : public Error {
 public:
  using Error::Error;
};

template <typename... Args>
[[noreturn]] void checkpoint_error(const Args&... args) {
  throw CheckpointError(kiln::detail::str(args...));
}

// Running CRC-32 (zlib's polynomial) over a self-delimiting encoding: every
// string and byte block is preceded by its length, so no two different
// checkpoints feed the same byte stream.
class Checksum {
 public:
  Checksum();
  // A tensor as "group/name", dtype name, rank, sizes, byte count, bytes.
  // `host` must be a contiguous CPU tensor (what is written / what was read).
  void add_tensor(const std::string& group, const std::string& name, const Tensor& host);
  // An attribute as name, a type tag and its value.
  void add_attr(const std::string& name, const nn::serialize::Hdf5Attr& value);
  uint32_t value() const { return crc_; }
  // Eight lower-case hex digits.
  std::string hex() const;

 private:
  void bytes(const void* data, size_t n);
  void u64(uint64_t v);
  void str(const std::string& s);

  uint32_t crc_;
};

}  // namespace kiln::train::detail
