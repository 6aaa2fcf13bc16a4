#pragma once
// Shared by the BiT suites: the HF fixture cases under tests/fixtures/bit/
// (tools/fixtures/bit.py) and small helpers around them.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "golden.h"
#include "kiln/kiln.h"
#include "kiln/nn/serialize/safetensors.h"
#include "nn/temp_dir.h"
#include "tensor_bytes.h"

namespace kiln::testing::bit {

using kiln::testing::error_of;  // for files that use this namespace

namespace fs = std::filesystem;
namespace km = kiln::models;
namespace st = kiln::nn::serialize;
using kiln::Tensor;
using km::BitConfig;
using km::Json;

inline Json read_json(const fs::path& p) { return km::read_json_file(p); }
inline void write_text(const fs::path& p, const std::string& text) { write_file_bytes(p.string(), text); }
inline std::string read_bytes(const fs::path& p) { return read_file_bytes(p.string()); }

inline fs::path case_dir(const std::string& name) { return fixture_path("bit/" + name); }

// The case directories holding `file` (config.json: every case; golden.safetensors: the golden ones).
inline std::vector<std::string> case_names(const std::string& file = "config.json") {
  std::vector<std::string> names;
  const fs::path root = fixture_path("bit");
  if (!fs::is_directory(root)) return names;
  for (const auto& e : fs::directory_iterator(root))
    if (fs::exists(e.path() / file)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

inline std::string shape_str(IntArrayRef s) {
  std::ostringstream os;
  os << s;
  return os.str();
}

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << "'" << (needle) << "' not in: " << (haystack)

// Bitwise equality of two state dicts (same keys, shapes, dtypes, values).
inline void expect_same_state(const nn::StateDict& a, const nn::StateDict& b) {
  ASSERT_EQ(a.keys(), b.keys());
  for (const auto& item : a) {
    const Tensor& other = b.at(item.key);
    EXPECT_EQ(item.value.dtype(), other.dtype()) << item.key;
    ASSERT_EQ(shape_str(item.value.sizes()), shape_str(other.sizes())) << item.key;
    EXPECT_EQ(values(item.value), values(other)) << item.key;
  }
}

inline nn::StateDict file_tensors(const fs::path& dir) {
  return nn::serialize::load_safetensors((dir / "model.safetensors").string());
}

// A small BiT config.json.
inline models::Json small_config() {
  return models::Json{{"model_type", "bit"}, {"embedding_size", 8}, {"hidden_sizes", {16, 24, 32}},
                      {"depths", {1, 1, 1}}, {"num_groups", 2}};
}

// A fresh directory per test, plus copies of fixture cases to damage.
class CaseDirTest : public TempDirTest {
 protected:
  fs::path copy_case(const std::string& name, const std::string& as) const {
    fs::path to = dir_ / as;
    fs::create_directories(to);
    fs::copy_file(case_dir(name) / "config.json", to / "config.json");
    fs::copy_file(case_dir(name) / "model.safetensors", to / "model.safetensors");
    return to;
  }
};

}  // namespace kiln::testing::bit
