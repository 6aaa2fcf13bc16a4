#pragma once
// Reading golden files from tools/fixtures/ (safetensors written by PyTorch)
// and comparing against them with a scale-relative tolerance.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

#include "kiln/nn/serialize/safetensors.h"
#include "test_util.h"

namespace kiln::testing {

inline std::string fixture_path(const std::string& relative) { return std::string(KILN_FIXTURES_DIR) + "/" + relative; }

// A fixture file and the JSON object stored as its "cases" metadata.
struct GoldenFile {
  explicit GoldenFile(const std::string& relative)
      : file(fixture_path(relative)), cases(nlohmann::json::parse(file.metadata().at("cases"))) {}
  Tensor get(const std::string& name) const { return file.load(name); }
  bool has(const std::string& name) const { return file.contains(name); }
  nn::serialize::SafetensorsFile file;
  nlohmann::json cases;
};

// max |actual - expected| <= rel * max |expected| (plus a floor for all-zero
// references): error relative to the tensor's scale, so elements near zero
// are not held to a tighter bound than the arithmetic allows.
inline ::testing::AssertionResult golden_close(const Tensor& actual, const Tensor& expected, double rel) {
  if (!actual.defined()) return ::testing::AssertionFailure() << "result undefined";
  if (actual.sizes() != expected.sizes())
    return ::testing::AssertionFailure() << "shape " << actual.sizes() << " vs expected " << expected.sizes();
  auto a = values(actual), e = values(expected);
  double scale = 0.0, worst = 0.0;
  size_t at = 0;
  for (size_t i = 0; i < e.size(); ++i) scale = std::max(scale, std::abs(e[i]));
  for (size_t i = 0; i < e.size(); ++i) {
    double d = std::abs(a[i] - e[i]);
    if (!(d <= worst)) {  // also catches NaN
      worst = d;
      at = i;
    }
  }
  double bound = rel * std::max(scale, 1e-30);
  if (worst <= bound) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "max |diff| " << worst << " at flat index " << at << " (got " << a[at]
                                       << ", expected " << e[at] << "), bound " << bound << " = " << rel
                                       << " x max|expected| " << scale;
}

}  // namespace kiln::testing
