#pragma once
// What a Tensor handle points to: a strided view (sizes, strides, offset,
// dtype) of a shared Storage, plus an opaque slot the autograd layer fills.
#include <memory>
#include <string>

#include "kiln/core/dtype.h"
#include "kiln/core/int_array_ref.h"
#include "kiln/core/small_vector.h"
#include "kiln/core/storage.h"

namespace kiln {

// The autograd layer derives from this; core only asks the two questions
// printing and requires_grad() need.
class AutogradMetaBase {
 public:
  virtual ~AutogradMetaBase() = default;
  virtual bool requires_grad() const = 0;
  // ", requires_grad=True" or ", grad_fn=<MulBackward0>" or "".
  virtual std::string repr_suffix() const = 0;
};

class TensorImpl {
 public:
  TensorImpl(Storage storage, DType dtype, DimVector sizes, DimVector strides, int64_t offset);

  const Storage& storage() const { return storage_; }
  DType dtype() const { return dtype_; }
  Device device() const { return storage_->device(); }
  IntArrayRef sizes() const { return sizes_; }
  IntArrayRef strides() const { return strides_; }
  int64_t storage_offset() const { return offset_; }
  int64_t numel() const { return numel_; }
  int64_t dim() const { return static_cast<int64_t>(sizes_.size()); }
  bool is_contiguous() const { return contiguous_; }
  // Start of this view's elements, in bytes.
  void* data() const {
    return static_cast<char*>(storage_->data()) + offset_ * static_cast<int64_t>(element_size(dtype_));
  }

  AutogradMetaBase* autograd_meta() const { return autograd_meta_.get(); }
  void set_autograd_meta(std::unique_ptr<AutogradMetaBase> meta) { autograd_meta_ = std::move(meta); }

  // Only for ops that restride an impl they own exclusively (never a shared view).
  void set_sizes_and_strides(DimVector sizes, DimVector strides, int64_t offset);
  // Points this impl at other's data (storage, dtype, sizes, strides,
  // offset) and keeps its own autograd meta, as libtorch's set_data: how
  // Module::to() converts a parameter while every handle to it (a layer's
  // `weight` member, an optimizer's list) stays valid.
  void set_data(const TensorImpl& other);

 private:
  void refresh();

  Storage storage_;
  DType dtype_;
  DimVector sizes_;
  DimVector strides_;
  int64_t offset_;
  int64_t numel_ = 1;
  bool contiguous_ = true;
  std::unique_ptr<AutogradMetaBase> autograd_meta_;
};

// Row-major strides for sizes.
DimVector contiguous_strides(IntArrayRef sizes);
int64_t numel_of(IntArrayRef sizes);

}  // namespace kiln
