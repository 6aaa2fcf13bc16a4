#include "kiln/core/native.h"
#include "test_util.h"

using namespace kiln;
using kiln::testing::values;

TEST(View, TransposeSharesStorageAndSwapsStrides) {
  Tensor x = native::reshape(native::arange(6, dtype(kFloat64)), {2, 3});
  Tensor y = native::transpose(x, 0, 1);
  EXPECT_EQ(y.sizes(), IntArrayRef({3, 2}));
  EXPECT_EQ(y.strides(), IntArrayRef({1, 3}));
  EXPECT_EQ(y.storage(), x.storage());
  EXPECT_FALSE(y.is_contiguous());
  EXPECT_EQ(values(native::contiguous(y)), (std::vector<double>{0, 3, 1, 4, 2, 5}));
}
