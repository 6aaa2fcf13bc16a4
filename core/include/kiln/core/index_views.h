#pragma once
// Helpers the index kernels of every backend share (core/src/cpu/cpu_index.cpp,
// cuda/src/kernels/index*.cu). An indexed tensor is "restrided": its stride
// along `dim` becomes 0, so a strided walk gives the start of the indexed
// line, to which the kernel adds index * stride. These views may have zero or
// negative strides, so they are for kernels only and never reach users.
#include <cstdint>
#include <memory>

#include "kiln/core/error.h"
#include "kiln/core/tensor.h"
#include "kiln/core/tensor_impl.h"

namespace kiln::index_views {

// A view of t's storage with other sizes, strides and offset.
inline Tensor restride(const Tensor& t, IntArrayRef sizes, IntArrayRef strides, int64_t offset) {
  return Tensor(std::make_shared<TensorImpl>(t.storage(), t.dtype(), sizes.dims(), strides.dims(), offset));
}
inline Tensor restride(const Tensor& t, IntArrayRef sizes, IntArrayRef strides) {
  return restride(t, sizes, strides, t.storage_offset());
}

// v with v[dim] = value.
inline DimVector with(IntArrayRef v, int64_t dim, int64_t value) {
  DimVector out = v.dims();
  out[dim] = value;
  return out;
}

// Strides that walk a 1-D index along `dim` of a rank-`rank` shape.
inline DimVector along(int64_t rank, int64_t dim, int64_t stride) {
  DimVector s(static_cast<size_t>(rank), 0);
  s[dim] = stride;
  return s;
}

// Calls f with a same-sized unsigned integer type: moving elements of any
// dtype bit for bit needs no per-dtype code.
template <typename F>
void dispatch_bits(size_t size, F&& f) {
  switch (size) {
    case 1: return f.template operator()<uint8_t>();
    case 2: return f.template operator()<uint16_t>();
    case 4: return f.template operator()<uint32_t>();
    case 8: return f.template operator()<uint64_t>();
  }
  KILN_ERROR("index kernel: unsupported element size ", size);
}

}  // namespace kiln::index_views
