// Tensor's core methods: metadata, item(), and PyTorch-style printing.
#include "kiln/core/tensor.h"

#include <cmath>
#include <cstdio>
#include <sstream>

#include "kiln/core/backend.h"
#include "kiln/core/native/shape_util.h"
#include "kiln/core/native/view.h"

namespace kiln {

int64_t Tensor::size(int64_t dim) const {
  return sizes()[native::wrap_dim(dim, this->dim(), "size")];
}

int64_t Tensor::stride(int64_t dim) const {
  return strides()[native::wrap_dim(dim, this->dim(), "stride")];
}

Scalar Tensor::item() const {
  KILN_CHECK(numel() == 1, "item: a Tensor with ", numel(), " elements cannot be converted to Scalar");
  Tensor host = native::to(*this, Device(kCPU));
  const Tensor flat = native::as_strided(host, {}, {}, host.storage_offset());
  return dispatch_all(dtype(), "item", [&]<typename T>() -> Scalar { return Scalar(*flat.data_ptr<T>()); });
}

std::string Tensor::toString() const {
  if (!defined()) return "UndefinedTensor";
  std::ostringstream os;
  os << dtype_name(dtype()) << sizes() << " on " << device();
  return os.str();
}

namespace {

struct Formatter {
  enum class Mode { Integer, IntegralFloat, Fixed, Scientific, Bool };
  Mode mode = Mode::Fixed;
  int width = 1;

  std::string format(double v) const {
    char buf[64];
    if (mode == Mode::Bool) return v != 0 ? "True" : "False";
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    switch (mode) {
      case Mode::Integer: std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v)); break;
      case Mode::IntegralFloat: std::snprintf(buf, sizeof buf, "%.0f.", v); break;
      case Mode::Fixed: std::snprintf(buf, sizeof buf, "%.4f", v); break;
      case Mode::Scientific: std::snprintf(buf, sizeof buf, "%.4e", v); break;
      case Mode::Bool: break;
    }
    return buf;
  }
};

// Values of a (CPU) tensor, read as doubles in row-major order.
std::vector<double> read_values(const Tensor& t) {
  Tensor host = native::contiguous(native::to(native::to(t, Device(kCPU)), kFloat64));
  const double* p = host.data_ptr<double>();
  return std::vector<double>(p, p + host.numel());
}

constexpr int64_t kSummarizeThreshold = 1000;
constexpr int64_t kEdgeItems = 3;

void print_rec(std::ostream& os, const std::vector<double>& vals, IntArrayRef sizes, IntArrayRef strides,
               int64_t offset, size_t dim, int indent, const Formatter& f, bool summarize) {
  if (dim == sizes.size()) {
    std::string s = f.format(vals[offset]);
    os << std::string(std::max<int>(0, f.width - static_cast<int>(s.size())), ' ') << s;
    return;
  }
  os << '[';
  const int64_t n = sizes[dim];
  const bool last = dim + 1 == sizes.size();
  for (int64_t i = 0; i < n; ++i) {
    if (summarize && n > 2 * kEdgeItems && i == kEdgeItems) {
      os << (last ? "..., " : "...,\n" + std::string(indent + dim + 1, ' '));
      i = n - kEdgeItems;
    }
    print_rec(os, vals, sizes, strides, offset + i * strides[dim], dim + 1, indent, f, summarize);
    if (i + 1 < n) {
      if (last) {
        os << ", ";
      } else {
        os << ',' << std::string(sizes.size() - dim - 1, '\n') << std::string(indent + dim + 1, ' ');
      }
    }
  }
  os << ']';
}

}  // namespace

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  if (!t.defined()) return os << "[ Tensor (undefined) ]";
  const std::vector<double> vals = read_values(t);
  Formatter f;
  if (t.dtype() == kBool) {
    f.mode = Formatter::Mode::Bool;
  } else if (!t.is_floating_point()) {
    f.mode = Formatter::Mode::Integer;
  } else {
    bool integral = true;
    double max_abs = 0, min_abs = INFINITY;
    for (double v : vals) {
      if (!std::isfinite(v)) continue;
      integral = integral && v == std::nearbyint(v);
      max_abs = std::max(max_abs, std::fabs(v));
      if (v != 0) min_abs = std::min(min_abs, std::fabs(v));
    }
    if (integral && max_abs < 1e8) {
      f.mode = Formatter::Mode::IntegralFloat;
    } else if (max_abs >= 1e8 || (min_abs < 1e-4 && min_abs != INFINITY) || (max_abs / min_abs > 1000 && !integral)) {
      f.mode = Formatter::Mode::Scientific;
    }
  }
  for (double v : vals) f.width = std::max<int>(f.width, static_cast<int>(f.format(v).size()));
  const bool summarize = t.numel() > kSummarizeThreshold;
  os << "tensor(";
  const DimVector strides = contiguous_strides(t.sizes());
  if (t.numel() == 0) {
    os << "[]";
  } else {
    print_rec(os, vals, t.sizes(), strides, 0, 0, 7, f, summarize);
  }
  if (t.numel() == 0 && t.dim() != 1) os << ", size=" << t.sizes();
  if (!t.is_cpu()) os << ", device='" << t.device() << "'";
  const DType d = t.dtype();
  if (d != default_dtype() && d != kInt64 && d != kBool) os << ", dtype=kiln." << dtype_name(d);
  if (auto* meta = t.impl()->autograd_meta()) os << meta->repr_suffix();
  return os << ')';
}

}  // namespace kiln
