#include "kiln/core/native/shape_util.h"

#include <algorithm>

namespace kiln::native {

int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op) {
  const int64_t n = std::max<int64_t>(ndim, 1);  // 0-dim tensors accept dim 0 and -1, as torch
  KILN_CHECK(dim >= -n && dim < n, op, ": dimension out of range (expected to be in range of [", -n, ", ", n - 1,
             "], but got ", dim, ")");
  return dim < 0 ? dim + n : dim;
}

DimVector wrap_dims(IntArrayRef dims, int64_t ndim, const char* op, bool empty_means_all) {
  DimVector out;
  if (dims.empty() && empty_means_all) {
    for (int64_t d = 0; d < ndim; ++d) out.push_back(d);
    return out;
  }
  for (int64_t d : dims) {
    int64_t w = wrap_dim(d, ndim, op);
    KILN_CHECK(std::find(out.begin(), out.end(), w) == out.end(), op, ": dim ", w, " appears multiple times in ",
               dims);
    out.push_back(w);
  }
  std::sort(out.begin(), out.end());
  return out;
}

DimVector broadcast_shapes(IntArrayRef a, IntArrayRef b, const char* op) {
  const size_t n = std::max(a.size(), b.size());
  DimVector out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t sa = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t sb = i < n - b.size() ? 1 : b[i - (n - b.size())];
    KILN_CHECK(sa == sb || sa == 1 || sb == 1, op, ": shapes ", a, " and ", b,
               " cannot be broadcast together (size ", sa, " vs ", sb, " at dim ", i, ")");
    out[i] = sa == 1 ? sb : sa;
  }
  return out;
}

DimVector infer_size(IntArrayRef shape, int64_t numel, const char* op) {
  DimVector out = shape.dims();
  int64_t known = 1;
  int64_t infer_at = -1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      KILN_CHECK(infer_at < 0, op, ": only one dimension can be inferred in shape ", shape);
      infer_at = static_cast<int64_t>(i);
    } else {
      KILN_CHECK(out[i] >= 0, op, ": invalid shape dimension ", out[i], " in ", shape);
      known *= out[i];
    }
  }
  if (infer_at >= 0) {
    KILN_CHECK(known != 0 && numel % known == 0, op, ": shape ", shape, " is invalid for input of size ", numel);
    out[infer_at] = numel / known;
  } else {
    KILN_CHECK(known == numel, op, ": shape ", shape, " is invalid for input of size ", numel);
  }
  return out;
}

namespace {
int category(DType t) { return t == kBool ? 0 : is_integral(t, false) ? 1 : 2; }

// torch's three priority tiers: dimensioned tensors, 0-dim tensors, numbers.
struct Promoter {
  std::optional<DType> dimensioned, zero_dim, wrapped;
  void add(const Tensor& t) {
    auto& slot = t.dim() > 0 ? dimensioned : zero_dim;
    slot = slot ? promote_types(*slot, t.dtype()) : t.dtype();
  }
  void add(const Scalar& s) {
    DType d = s.is_floating_point() ? kFloat64 : s.is_integral() ? kInt64 : kBool;  // marks the category only
    wrapped = wrapped ? promote_types(*wrapped, d) : d;
  }
  DType result() const {
    DType r = dimensioned ? *dimensioned : zero_dim ? *zero_dim : kBool;
    if (!dimensioned && !zero_dim) {
      // Numbers alone: the dtype a tensor of them would have.
      return wrapped ? (*wrapped == kFloat64 ? default_dtype() : *wrapped) : default_dtype();
    }
    if (zero_dim && dimensioned && category(*zero_dim) > category(r)) r = *zero_dim;
    if (wrapped && category(*wrapped) > category(r)) {
      r = *wrapped == kFloat64 ? default_dtype() : *wrapped;
    }
    return r;
  }
};
}  // namespace

DType result_type(const Tensor& a, const Tensor& b) {
  Promoter p;
  p.add(a);
  p.add(b);
  return p.result();
}

DType result_type(const Tensor& a, const Scalar& b) {
  Promoter p;
  p.add(a);
  p.add(b);
  return p.result();
}

DType result_type(std::initializer_list<Tensor> tensors) {
  Promoter p;
  for (const Tensor& t : tensors) p.add(t);
  return p.result();
}

}  // namespace kiln::native
