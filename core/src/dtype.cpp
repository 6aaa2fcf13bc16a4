#include "kiln/core/dtype.h"

#include <atomic>

#include "kiln/core/scalar.h"

namespace kiln {

size_t element_size(DType t) {
  switch (t) {
    case kFloat64: case kInt64: return 8;
    case kFloat32: case kInt32: return 4;
    case kFloat16: case kBFloat16: return 2;
    case kUInt8: case kBool: return 1;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case kFloat64: return "float64";
    case kFloat32: return "float32";
    case kFloat16: return "float16";
    case kBFloat16: return "bfloat16";
    case kInt64: return "int64";
    case kInt32: return "int32";
    case kUInt8: return "uint8";
    case kBool: return "bool";
  }
  return "?";
}

std::ostream& operator<<(std::ostream& os, DType t) { return os << dtype_name(t); }

DType promote_types(DType a, DType b) {
  if (a == b) return a;
  // torch's table for these eight types: bool < uint8 < int32 < int64 < floats;
  // f16 with bf16 meets at f32.
  auto rank = [](DType t) {
    switch (t) {
      case kBool: return 0;
      case kUInt8: return 1;
      case kInt32: return 2;
      case kInt64: return 3;
      case kFloat16: return 4;
      case kBFloat16: return 4;
      case kFloat32: return 5;
      case kFloat64: return 6;
    }
    return 0;
  };
  if ((a == kFloat16 && b == kBFloat16) || (a == kBFloat16 && b == kFloat16)) return kFloat32;
  return rank(a) >= rank(b) ? a : b;
}

namespace {
std::atomic<DType> g_default_dtype{kFloat32};
}
DType default_dtype() { return g_default_dtype.load(); }
void set_default_dtype(DType t) {
  KILN_CHECK(is_floating_point(t), "set_default_dtype: only floating-point dtypes can be the default, got ",
             dtype_name(t));
  g_default_dtype.store(t);
}

std::ostream& operator<<(std::ostream& os, const Scalar& s) {
  switch (s.kind()) {
    case Scalar::Kind::Double: return os << s.toDouble();
    case Scalar::Kind::Int: return os << s.toLong();
    case Scalar::Kind::Bool: return os << (s.toBool() ? "True" : "False");
  }
  return os;
}

}  // namespace kiln
