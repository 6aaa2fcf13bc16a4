// Writing safetensors files: header JSON in the compact form serde_json
// produces (so Python-layout files match the Python library byte for byte),
// padded with spaces to a multiple of 8 so the buffer starts aligned, then
// each tensor's bytes.
#include <algorithm>
#include <bit>
#include <nlohmann/json.hpp>
#include <vector>

#include "kiln/core/error.h"
#include "kiln/core/native.h"
#include "kiln/nn/serialize/safetensors.h"
#include "kiln/nn/serialize/atomic_file.h"
#include "serialize/safetensors_dtype.h"

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; a big-endian host would need byte swaps");

namespace kiln::nn::serialize {

void save_safetensors(const std::string& path, const StateDict& tensors, const SafetensorsMetadata& metadata,
                      SafetensorsLayout layout) {
  struct Item {
    const std::string* name;
    Tensor data;  // contiguous, on the CPU
  };
  std::vector<Item> items;
  items.reserve(tensors.size());
  for (const auto& [name, t] : tensors) {
    KILN_CHECK(name != "__metadata__", "save_safetensors: file '", path,
               "': '__metadata__' is reserved and cannot name a tensor");
    KILN_CHECK(t.defined(), "save_safetensors: file '", path, "': tensor '", name, "' is undefined");
    Tensor host = t.is_cpu() ? t : native::to(t, Device(kCPU));
    items.push_back({&name, native::contiguous(host)});
  }
  if (layout == SafetensorsLayout::Python) {
    std::stable_sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
      int ra = detail::python_rank(a.data.dtype()), rb = detail::python_rank(b.data.dtype());
      return ra != rb ? ra > rb : *a.name < *b.name;
    });
  }

  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    auto& m = header["__metadata__"] = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
  }
  uint64_t offset = 0;
  for (const auto& item : items) {
    const Tensor& t = item.data;
    auto& entry = header[*item.name] = nlohmann::ordered_json::object();
    entry["dtype"] = std::string(detail::safetensors_name(t.dtype()));
    auto shape = nlohmann::ordered_json::array();
    for (int64_t d : t.sizes()) shape.push_back(static_cast<uint64_t>(d));
    entry["shape"] = std::move(shape);
    uint64_t end = offset + t.nbytes();
    entry["data_offsets"] = {offset, end};
    offset = end;
  }

  std::string text;
  try {
    // strict: a name or metadata string that is not UTF-8 cannot be written as JSON.
    text = header.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
  } catch (const nlohmann::json::exception& e) {
    KILN_ERROR("save_safetensors: file '", path, "': tensor names and metadata must be valid UTF-8 (", e.what(), ")");
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  uint64_t header_len = text.size();

  AtomicFileWriter out(path, "save_safetensors");
  out.write(&header_len, 8);
  out.write(text.data(), text.size());
  for (const auto& item : items)
    if (item.data.nbytes() > 0) out.write(item.data.data_ptr(), item.data.nbytes());
  out.commit();
}

}  // namespace kiln::nn::serialize
