#pragma once
// Element types, their C++ types, PyTorch's promotion lattice and the
// dispatch helper that turns a runtime dtype into a template argument.
#include <cstdint>
#include <ostream>

#include "kiln/core/error.h"
#include "kiln/core/half.h"

namespace kiln {

enum class DType : int8_t { Float64, Float32, Float16, BFloat16, Int64, Int32, UInt8, Bool };
using ScalarType = DType;

inline constexpr DType kFloat64 = DType::Float64;
inline constexpr DType kFloat32 = DType::Float32;
inline constexpr DType kFloat16 = DType::Float16;
inline constexpr DType kBFloat16 = DType::BFloat16;
inline constexpr DType kInt64 = DType::Int64;
inline constexpr DType kInt32 = DType::Int32;
inline constexpr DType kUInt8 = DType::UInt8;
inline constexpr DType kBool = DType::Bool;
// libtorch's aliases.
inline constexpr DType kDouble = kFloat64;
inline constexpr DType kFloat = kFloat32;
inline constexpr DType kHalf = kFloat16;
inline constexpr DType kLong = kInt64;
inline constexpr DType kInt = kInt32;
inline constexpr DType kByte = kUInt8;

size_t element_size(DType t);
// "float32", "int64", ... as torch prints them after "torch.".
const char* dtype_name(DType t);
std::ostream& operator<<(std::ostream& os, DType t);

inline bool is_floating_point(DType t) {
  return t == kFloat64 || t == kFloat32 || t == kFloat16 || t == kBFloat16;
}
inline bool is_integral(DType t, bool include_bool) {
  return t == kInt64 || t == kInt32 || t == kUInt8 || (include_bool && t == kBool);
}
inline bool is_reduced_float(DType t) { return t == kFloat16 || t == kBFloat16; }

// torch.promote_types.
DType promote_types(DType a, DType b);

// The dtype floating-point factories use when none is given (torch.get_default_dtype).
DType default_dtype();
void set_default_dtype(DType t);

template <typename T> struct dtype_of;
template <> struct dtype_of<double> { static constexpr DType value = kFloat64; };
template <> struct dtype_of<float> { static constexpr DType value = kFloat32; };
template <> struct dtype_of<Half> { static constexpr DType value = kFloat16; };
template <> struct dtype_of<BFloat16> { static constexpr DType value = kBFloat16; };
template <> struct dtype_of<int64_t> { static constexpr DType value = kInt64; };
template <> struct dtype_of<int32_t> { static constexpr DType value = kInt32; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = kUInt8; };
template <> struct dtype_of<bool> { static constexpr DType value = kBool; };
template <typename T> inline constexpr DType dtype_v = dtype_of<T>::value;

// The type arithmetic on T is done in: float for the 16-bit floats.
template <typename T> struct compute_type { using type = T; };
template <> struct compute_type<Half> { using type = float; };
template <> struct compute_type<BFloat16> { using type = float; };
template <typename T> using compute_t = typename compute_type<T>::type;

// dispatch(dtype, "op", [&]<typename T>() { ... }) calls the lambda with the
// C++ type of dtype; the *_floating variants reject other dtypes with an error
// naming the op.
template <typename F>
decltype(auto) dispatch_all(DType t, const char* op, F&& f) {
  switch (t) {
    case kFloat64: return f.template operator()<double>();
    case kFloat32: return f.template operator()<float>();
    case kFloat16: return f.template operator()<Half>();
    case kBFloat16: return f.template operator()<BFloat16>();
    case kInt64: return f.template operator()<int64_t>();
    case kInt32: return f.template operator()<int32_t>();
    case kUInt8: return f.template operator()<uint8_t>();
    case kBool: return f.template operator()<bool>();
  }
  KILN_ERROR(op, ": unsupported dtype ", dtype_name(t));
}

template <typename F>
decltype(auto) dispatch_floating(DType t, const char* op, F&& f) {
  switch (t) {
    case kFloat64: return f.template operator()<double>();
    case kFloat32: return f.template operator()<float>();
    case kFloat16: return f.template operator()<Half>();
    case kBFloat16: return f.template operator()<BFloat16>();
    default: break;
  }
  KILN_ERROR(op, ": expected a floating-point tensor but got dtype ", dtype_name(t));
}

// Types a CPU kernel computes in natively (16-bit floats are upcast first).
template <typename F>
decltype(auto) dispatch_native(DType t, const char* op, F&& f) {
  switch (t) {
    case kFloat64: return f.template operator()<double>();
    case kFloat32: return f.template operator()<float>();
    case kInt64: return f.template operator()<int64_t>();
    case kInt32: return f.template operator()<int32_t>();
    case kUInt8: return f.template operator()<uint8_t>();
    case kBool: return f.template operator()<bool>();
    default: break;
  }
  KILN_ERROR(op, ": dtype ", dtype_name(t), " has no native kernel here");
}

}  // namespace kiln
