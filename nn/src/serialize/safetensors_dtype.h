#pragma once
// The safetensors dtype names, their sizes, and the Kiln dtype each maps to.
#include <cstdint>
#include <optional>
#include <string_view>

#include "kiln/core/dtype.h"

namespace kiln::nn::serialize::detail {

struct SafetensorsDType {
  std::string_view name;
  uint32_t size;               // bytes per element; 0 for the sub-byte formats (F4, F6_*)
  std::optional<DType> kiln;   // empty where Kiln has no such type
};

// Every dtype the format defines, so a file holding, say, an I8 tensor still
// opens and lists (only loading that tensor fails), while a name outside
// this list marks the header as corrupt.
inline constexpr SafetensorsDType kSafetensorsDTypes[] = {
    {"BOOL", 1, kBool},      {"U8", 1, kUInt8},        {"I8", 1, std::nullopt},      {"F8_E5M2", 1, std::nullopt},
    {"F8_E4M3", 1, std::nullopt}, {"F8_E8M0", 1, std::nullopt}, {"I16", 2, std::nullopt}, {"U16", 2, std::nullopt},
    {"F16", 2, kFloat16},    {"BF16", 2, kBFloat16},   {"I32", 4, kInt32},           {"U32", 4, std::nullopt},
    {"F32", 4, kFloat32},    {"F64", 8, kFloat64},     {"I64", 8, kInt64},           {"U64", 8, std::nullopt},
    {"C64", 8, std::nullopt}, {"F4", 0, std::nullopt}, {"F6_E2M3", 0, std::nullopt}, {"F6_E3M2", 0, std::nullopt},
};

inline const SafetensorsDType* find_safetensors_dtype(std::string_view name) {
  for (const auto& d : kSafetensorsDTypes)
    if (d.name == name) return &d;
  return nullptr;
}

inline std::string_view safetensors_name(DType t) {
  switch (t) {
    case kFloat64: return "F64";
    case kFloat32: return "F32";
    case kFloat16: return "F16";
    case kBFloat16: return "BF16";
    case kInt64: return "I64";
    case kInt32: return "I32";
    case kUInt8: return "U8";
    case kBool: return "BOOL";
  }
  return "";
}

// The position of t in the Python library's dtype enum, which its writer
// sorts by (descending) before names: I64 > F64 > F32 > I32 > BF16 > F16 > U8 > BOOL.
inline int python_rank(DType t) {
  switch (t) {
    case kBool: return 0;
    case kUInt8: return 1;
    case kFloat16: return 2;
    case kBFloat16: return 3;
    case kInt32: return 4;
    case kFloat32: return 5;
    case kFloat64: return 6;
    case kInt64: return 7;
  }
  return -1;
}

}  // namespace kiln::nn::serialize::detail
