#pragma once
// Tensors as raw bytes, for tests of files and formats that must round-trip
// bit for bit; and the message of an expected kiln::Error.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "kiln/core/error.h"
#include "kiln/core/native.h"
#include "kiln/core/tensor.h"

namespace kiln::testing {

// A contiguous tensor whose bytes are exactly `raw` (element bit patterns).
template <typename U>
Tensor from_bits(DType dtype, std::vector<int64_t> shape, const std::vector<U>& raw) {
  Tensor t = native::empty(shape, TensorOptions().dtype(dtype));
  EXPECT_EQ(t.nbytes(), raw.size() * sizeof(U));
  if (!raw.empty()) std::memcpy(t.data_ptr(), raw.data(), t.nbytes());
  return t;
}

// The bytes of a tensor's elements in row-major order.
inline std::string bytes_of(const Tensor& t) {
  Tensor c = native::contiguous(t);
  return std::string(static_cast<const char*>(c.data_ptr()), c.nbytes());
}

// The message of the kiln::Error `f` throws ("" and a test failure if none).
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a kiln::Error";
  return "";
}

}  // namespace kiln::testing
