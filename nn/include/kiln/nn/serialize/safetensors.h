#pragma once
// safetensors files: the format Hugging Face checkpoints ship in.
//
// Layout: an 8-byte little-endian header length N, N bytes of JSON
//   {"__metadata__": {str: str}, "name": {"dtype": "F32", "shape": [..],
//    "data_offsets": [begin, end]}, ...}
// (possibly padded with spaces), then the tensor bytes, row-major and
// little-endian, offsets relative to the end of the header.
//
// Reading is strict in the same places the Python `safetensors` library is
// (every byte of the buffer belongs to exactly one tensor, no holes, no
// overlaps, sizes match shapes) so a file Kiln accepts loads in Python too;
// every malformed file is a kiln::Error naming the file and the problem.
//
// Loaded tensors are copies into ordinary Kiln memory, not views of the
// mapping: they stay valid after the file is closed, replaced or deleted,
// are aligned for vector kernels whatever the offsets in the file, and a
// file truncated behind our back cannot fault a later kernel (SIGBUS; only
// a truncation racing the copy itself can, as for any mmap reader). The
// file is read through mmap, so the copy is the only one made, and
// SafetensorsFile reads one tensor at a time so a large checkpoint never
// needs to be resident at once.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kiln/core/tensor.h"
#include "kiln/nn/ordered_dict.h"

namespace kiln::nn::serialize {

// The free-form string map stored under "__metadata__" (HF puts
// {"format": "pt"} there). Sorted, so writing it is deterministic.
using SafetensorsMetadata = std::map<std::string, std::string>;

// Where tensors go in a written file.
enum class SafetensorsLayout {
  // Header and data in the StateDict's order, so a load gives back the same
  // order (a module's registration order).
  AsGiven,
  // What the Python library writes: widest dtypes first (in its dtype
  // order), then by name. Byte-identical to safetensors.torch.save_file when
  // the metadata has at most one entry (Python orders metadata by hash).
  Python,
};

// Writes `tensors` to `path` atomically: the bytes go to a temporary file in
// the same directory, which is fsynced and renamed over `path`, so a crash
// never leaves a half-written file under the final name. Non-contiguous and
// non-CPU tensors are copied first. Names must not be "__metadata__";
// tensors sharing storage are written as independent copies.
void save_safetensors(const std::string& path, const StateDict& tensors, const SafetensorsMetadata& metadata = {},
                      SafetensorsLayout layout = SafetensorsLayout::AsGiven);

// All tensors of a file, in header order; the file's metadata goes to
// *metadata when given.
StateDict load_safetensors(const std::string& path, SafetensorsMetadata* metadata = nullptr);

// One tensor's header entry.
struct SafetensorsEntry {
  std::string name;
  std::string dtype_name;       // as in the file: "F32", "BF16", "I8", ...
  std::optional<DType> dtype;   // empty for valid safetensors dtypes Kiln has no type for (I8, U16, F8_*, ...)
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte range within the data buffer
  int64_t numel() const;
};

// An open, validated file. The header is checked completely on open; tensor
// bytes are copied out only when asked for. Move-only; closing unmaps.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(SafetensorsFile&&) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const;
  const SafetensorsMetadata& metadata() const;
  // Header order.
  const std::vector<SafetensorsEntry>& entries() const;
  std::vector<std::string> names() const;
  size_t size() const { return entries().size(); }
  bool contains(const std::string& name) const;
  // The entry for `name`; an unknown name is an error naming the file.
  const SafetensorsEntry& entry(const std::string& name) const;

  // A fresh contiguous CPU tensor holding `name`'s bytes. Errors for a name
  // that is not there and for dtypes Kiln cannot represent.
  Tensor load(const std::string& name) const;
  StateDict load_all() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::nn::serialize
