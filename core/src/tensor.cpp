// Tensor's core methods: metadata, item(), and PyTorch-style printing.
#include "kiln/core/tensor.h"

#include <cmath>
#include <algorithm>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

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

// torch's print options (torch.set_printoptions defaults).
constexpr int64_t kSummarizeThreshold = 1000;
constexpr int64_t kEdgeItems = 3;
constexpr int64_t kLineWidth = 80;

std::string printf_double(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

// A tensor's values on the host: exact int64 for integer and bool dtypes, doubles otherwise.
struct HostValues {
  bool floating;
  std::vector<double> f;
  std::vector<int64_t> i;
  explicit HostValues(const Tensor& t) : floating(t.is_floating_point()) {
    Tensor host = native::contiguous(native::to(native::to(t, Device(kCPU)), floating ? kFloat64 : kInt64));
    if (floating) {
      const double* p = host.data_ptr<double>();
      f.assign(p, p + host.numel());
    } else {
      const int64_t* p = host.data_ptr<int64_t>();
      i.assign(p, p + host.numel());
    }
  }
};

// torch's _Formatter: one style (integer, integral float, fixed or
// scientific) and one width for every element shown; floats decide both from
// their nonzero finite values only.
class Formatter {
 public:
  Formatter(DType dtype, const HostValues& vals, const std::vector<int64_t>& shown)
      : floating_(vals.floating), bool_(dtype == kBool) {
    if (!floating_) {
      for (int64_t k : shown) width_ = std::max(width_, raw_int(vals.i[k]).size());
      return;
    }
    std::vector<double> nz;
    for (int64_t k : shown) {
      const double v = vals.f[k];
      if (std::isfinite(v) && v != 0.0) nz.push_back(v);
    }
    if (nz.empty()) return;
    double lo = INFINITY, hi = 0.0;
    for (double v : nz) {
      lo = std::min(lo, std::fabs(v));
      hi = std::max(hi, std::fabs(v));
      if (v != std::ceil(v)) int_mode_ = false;
    }
    sci_ = hi / lo > 1000.0 || hi > 1.0e8 || (!int_mode_ && lo < 1.0e-4);
    for (double v : nz) width_ = std::max(width_, raw_float(v).size());
  }

  size_t width() const { return width_; }

  std::string format_float(double v) const { return pad(raw_float(v)); }
  std::string format_int(int64_t v) const { return pad(raw_int(v)); }

 private:
  std::string pad(std::string s) const { return s.size() >= width_ ? s : std::string(width_ - s.size(), ' ') + s; }
  std::string raw_int(int64_t v) const { return bool_ ? (v ? "True" : "False") : std::to_string(v); }
  std::string raw_float(double v) const {
    // Python spells non-finite values nan/inf/-inf in every style.
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    if (sci_) return printf_double("%.4e", v);
    if (int_mode_) return printf_double("%.0f", v) + ".";
    return printf_double("%.4f", v);
  }

  bool floating_, bool_;
  bool int_mode_ = true, sci_ = false;
  size_t width_ = 1;
};

// Indices along a dim that are printed: all, or the edges around "...".
std::vector<int64_t> shown_indices(int64_t size, bool summarize) {
  std::vector<int64_t> idx;
  if (summarize && size > 2 * kEdgeItems) {
    for (int64_t i = 0; i < kEdgeItems; ++i) idx.push_back(i);
    for (int64_t i = size - kEdgeItems; i < size; ++i) idx.push_back(i);
  } else {
    for (int64_t i = 0; i < size; ++i) idx.push_back(i);
  }
  return idx;
}

class Printer {
 public:
  Printer(const Tensor& t, const HostValues& vals)
      : vals_(vals), sizes_(t.sizes().dims()), strides_(contiguous_strides(t.sizes())),
        summarize_(t.numel() > kSummarizeThreshold), fmt_(t.dtype(), vals, shown_offsets()) {}

  std::string str(size_t dim, int64_t offset, int64_t indent) const {
    if (dim == sizes_.size()) return element(offset);
    if (dim + 1 == sizes_.size()) return vector_str(offset, indent);
    const int64_t size = sizes_[dim];
    const bool cut = summarize_ && size > 2 * kEdgeItems;
    std::string sep = "," + std::string(sizes_.size() - dim - 1, '\n') + std::string(indent + 1, ' ');
    std::string out = "[";
    const std::vector<int64_t> idx = shown_indices(size, summarize_);
    for (size_t k = 0; k < idx.size(); ++k) {
      if (k > 0) out += sep;
      if (cut && k == static_cast<size_t>(kEdgeItems)) out += "..." + sep;
      out += str(dim + 1, offset + idx[k] * strides_[dim], indent + 1);
    }
    return out + "]";
  }

 private:
  std::string element(int64_t offset) const {
    return vals_.floating ? fmt_.format_float(vals_.f[offset]) : fmt_.format_int(vals_.i[offset]);
  }

  // The last dim: elements wrapped to the line width, as torch's _vector_str.
  std::string vector_str(int64_t offset, int64_t indent) const {
    const int64_t size = sizes_.back();
    const int64_t per_line = std::max<int64_t>(1, (kLineWidth - indent) / (static_cast<int64_t>(fmt_.width()) + 2));
    std::vector<std::string> items;
    const std::vector<int64_t> idx = shown_indices(size, summarize_);
    for (size_t k = 0; k < idx.size(); ++k) {
      if (summarize_ && size > 2 * kEdgeItems && k == static_cast<size_t>(kEdgeItems)) items.push_back(" ...");
      items.push_back(element(offset + idx[k] * strides_.back()));
    }
    std::string out = "[";
    for (size_t k = 0; k < items.size(); ++k) {
      if (k > 0) out += k % per_line == 0 ? ",\n" + std::string(indent + 1, ' ') : ", ";
      out += items[k];
    }
    return out + "]";
  }

  // Offsets of the elements that will be printed (torch sizes the format
  // from the summarized data only).
  std::vector<int64_t> shown_offsets() const {
    std::vector<int64_t> out;
    collect(0, 0, out);
    return out;
  }
  void collect(size_t dim, int64_t offset, std::vector<int64_t>& out) const {
    if (dim == sizes_.size()) {
      out.push_back(offset);
      return;
    }
    for (int64_t i : shown_indices(sizes_[dim], summarize_)) collect(dim + 1, offset + i * strides_[dim], out);
  }

  const HostValues& vals_;
  DimVector sizes_, strides_;
  bool summarize_;
  Formatter fmt_;
};

// torch's _add_suffixes: ", suffix" on the same line while it fits in the
// line width, else on a new line at the indent.
std::string add_suffixes(std::string body, const std::vector<std::string>& suffixes, int64_t indent) {
  const size_t nl = body.rfind('\n');
  // Same arithmetic as torch (len - rfind + 1, rfind being -1 without a newline).
  int64_t last_line = static_cast<int64_t>(body.size()) - (nl == std::string::npos ? -1 : static_cast<int64_t>(nl)) + 1;
  for (const std::string& s : suffixes) {
    const auto len = static_cast<int64_t>(s.size());
    if (last_line + len + 2 > kLineWidth) {
      body += ",\n" + std::string(indent, ' ') + s;
      last_line = indent + len;
    } else {
      body += ", " + s;
      last_line += len + 2;
    }
  }
  return body + ")";
}

}  // namespace

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  if (!t.defined()) return os << "[ Tensor (undefined) ]";
  const std::string prefix = "tensor(";
  const auto indent = static_cast<int64_t>(prefix.size());
  std::vector<std::string> suffixes;
  if (!t.is_cpu()) suffixes.push_back("device='" + t.device().str() + "'");
  const DType d = t.dtype();
  std::string body;
  if (t.numel() == 0) {
    // Shape is shown unless it is (0,); the dtype unless it is the default
    // float dtype (an empty tensor gives no other hint of it).
    if (t.dim() != 1) {
      std::string size = "size=(";
      for (int64_t k = 0; k < t.dim(); ++k) size += (k ? ", " : "") + std::to_string(t.size(k));
      suffixes.push_back(size + ")");
    }
    if (d != default_dtype()) suffixes.push_back(std::string("dtype=kiln.") + dtype_name(d));
    body = "[]";
  } else {
    const HostValues vals(t);
    body = Printer(t, vals).str(0, 0, indent);
    if (d != default_dtype() && d != kInt64 && d != kBool) suffixes.push_back(std::string("dtype=kiln.") + dtype_name(d));
  }
  if (auto* meta = t.impl()->autograd_meta()) {
    std::string s = meta->repr_suffix();
    if (s.rfind(", ", 0) == 0) s = s.substr(2);
    if (!s.empty()) suffixes.push_back(s);
  }
  return os << add_suffixes(prefix + body, suffixes, indent);
}

}  // namespace kiln
