// Hdf5File: tensors of every dtype and shape round-trip bit for bit (f16/bf16
// special values included), attributes on files, groups and datasets,
// nested groups, state dicts in order, and errors that name the file and the
// object without HDF5 printing anything.
#include "kiln/nn/serialize/hdf5.h"

#include <kiln/kiln.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "nn/temp_dir.h"
#include "test_util.h"
#include "tensor_bytes.h"

using namespace kiln;
using kiln::nn::StateDict;
using kiln::testing::make;
using kiln::testing::sample;
using kiln::testing::values;
using H5 = kiln::nn::serialize::Hdf5File;
using kiln::nn::serialize::Hdf5Attr;
using kiln::nn::serialize::Hdf5ObjectKind;
using kiln::testing::bytes_of;
using kiln::testing::from_bits;

namespace {

// n elements of `dtype` with varied bit patterns: every byte of the element
// differs, so a swapped or truncated element would show.
Tensor patterned(DType dtype, std::vector<int64_t> shape) {
  Tensor t = native::empty(shape, TensorOptions().dtype(dtype));
  auto* p = static_cast<unsigned char*>(t.data_ptr());
  for (size_t i = 0; i < t.nbytes(); ++i) p[i] = static_cast<unsigned char>(i * 37 + 11);
  if (dtype == kBool)
    for (size_t i = 0; i < t.nbytes(); ++i) p[i] = (i % 3) == 1;
  return t;
}

void expect_same(const Tensor& got, const Tensor& want, const std::string& what) {
  EXPECT_EQ(got.dtype(), want.dtype()) << what;
  EXPECT_TRUE(got.sizes().equals(want.sizes())) << what << ": " << got.sizes() << " vs " << want.sizes();
  EXPECT_EQ(bytes_of(got), bytes_of(want)) << what;
}

// Names built by appending: GCC 12 warns falsely (-Wrestrict) on "literal" + std::string.
std::string group_of(DType d) {
  std::string g = "g/";
  g += dtype_name(d);
  return g;
}

std::string shape_name(size_t s) {
  std::string n = "s";
  n += std::to_string(s);
  return n;
}

constexpr DType kAllDTypes[] = {kFloat64, kFloat32, kFloat16, kBFloat16, kInt64, kInt32, kUInt8, kBool};

class Hdf5 : public kiln::testing::TempDirTest {
 protected:
  // Runs stmt expecting a kiln::Error that names the file and contains each
  // fragment, and nothing printed to stderr (HDF5's error stack is silenced).
  template <typename F>
  void expect_error(F&& stmt, const std::string& file, std::vector<std::string> fragments) {
    ::testing::internal::CaptureStderr();
    try {
      stmt();
      ADD_FAILURE() << "no error; expected one containing '" << fragments[0] << "'";
    } catch (const Error& e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find("'" + file + "'"), std::string::npos) << msg;
      for (const auto& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << "missing '" << f << "' in: " << msg;
    }
    EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  }
};

}  // namespace

TEST_F(Hdf5, EveryDtypeAndShapeRoundTrips) {
  std::string file = path("t.h5");
  std::vector<std::vector<int64_t>> shapes = {{}, {0}, {2, 0, 3}, {7}, {2, 3, 4}};
  {
    H5 f(file, H5::Mode::Create);
    for (DType d : kAllDTypes)
      for (size_t s = 0; s < shapes.size(); ++s)
        f.write_tensor(group_of(d), shape_name(s), patterned(d, shapes[s]));
    f.close();
    EXPECT_FALSE(f.is_open());
  }
  H5 f(file);
  EXPECT_FALSE(f.writable());
  for (DType d : kAllDTypes) {
    for (size_t s = 0; s < shapes.size(); ++s) {
      std::string what = group_of(d) + "/" + shape_name(s);
      Tensor got = f.read_tensor(group_of(d), shape_name(s));
      expect_same(got, patterned(d, shapes[s]), what);
      auto info = f.dataset_info("/" + what);
      EXPECT_EQ(info.dtype, d) << what;
      EXPECT_EQ(info.shape, shapes[s]) << what;
    }
  }
}

TEST_F(Hdf5, FloatSpecialValuesKeepTheirBits) {
  // -0, smallest/largest subnormal, smallest normal, max, inf, -inf, quiet
  // and signalling NaNs with payloads, negative NaN.
  std::vector<uint16_t> bf16 = {0x0000, 0x8000, 0x0001, 0x007F, 0x0080, 0x7F7F, 0x7F80,
                                0xFF80, 0x7FC0, 0x7FC1, 0x7F81, 0xFFFF, 0x3F80, 0xC2F7};
  std::vector<uint16_t> f16 = {0x0000, 0x8000, 0x0001, 0x03FF, 0x0400, 0x7BFF, 0x7C00,
                               0xFC00, 0x7E00, 0x7E01, 0x7C01, 0xFFFF, 0x3C00, 0xD640};
  std::vector<uint32_t> f32 = {0x80000000, 0x00000001, 0x7F800000, 0x7FC00001, 0x7F800001, 0xFFFFFFFF};
  std::vector<uint64_t> f64 = {0x8000000000000000, 0x1, 0x7FF0000000000000, 0x7FF8000000000001, 0x7FF0000000000001};
  std::string file = path("special.h5");
  {
    H5 f(file, H5::Mode::Create);
    f.write_tensor("", "bf16", from_bits(kBFloat16, {14}, bf16));
    f.write_tensor("", "f16", from_bits(kFloat16, {2, 7}, f16));
    f.write_tensor("", "f32", from_bits(kFloat32, {6}, f32));
    f.write_tensor("", "f64", from_bits(kFloat64, {5}, f64));
    f.write_tensor("", "bf16_scalar", from_bits<uint16_t>(kBFloat16, {}, {0x7FC1}));
  }
  H5 f(file);
  expect_same(f.read_tensor("bf16"), from_bits(kBFloat16, {14}, bf16), "bf16");
  expect_same(f.read_tensor("f16"), from_bits(kFloat16, {2, 7}, f16), "f16");
  expect_same(f.read_tensor("f32"), from_bits(kFloat32, {6}, f32), "f32");
  expect_same(f.read_tensor("f64"), from_bits(kFloat64, {5}, f64), "f64");
  expect_same(f.read_tensor("/bf16_scalar"), from_bits<uint16_t>(kBFloat16, {}, {0x7FC1}), "bf16 scalar");
  // Decoded values, against closed forms: 0xC2F7 = -(1 + 119/128) * 2^6, 0xD640 = -(1 + 576/1024) * 2^6.
  EXPECT_EQ(values(f.read_tensor("bf16"))[13], -123.5);
  EXPECT_EQ(values(f.read_tensor("f16"))[13], -100.0);
  EXPECT_EQ(values(f.read_tensor("bf16"))[2], std::ldexp(1.0, -133));
}

TEST_F(Hdf5, NonContiguousAndValueCheckedInputs) {
  auto vals = sample(12, -3, 3, 5);
  Tensor base = make({3, 4}, vals);
  std::string file = path("nc.h5");
  {
    H5 f(file, H5::Mode::Create);
    f.write_tensor("x", "transposed", native::transpose(base, 0, 1));
    f.write_tensor("x", "expanded", native::expand(make({3, 1}, {1, 2, 3}, kInt64), {3, 2}));
    f.write_tensor("x", "f32", make({3, 4}, vals, kFloat32));
  }
  H5 f(file);
  std::vector<double> transposed;
  for (int j = 0; j < 4; ++j)
    for (int i = 0; i < 3; ++i) transposed.push_back(vals[i * 4 + j]);
  EXPECT_EQ(values(f.read_tensor("x/transposed")), transposed);
  EXPECT_EQ(values(f.read_tensor("x", "expanded")), (std::vector<double>{1, 1, 2, 2, 3, 3}));
  std::vector<double> rounded;
  for (double v : vals) rounded.push_back(static_cast<float>(v));
  EXPECT_EQ(values(f.read_tensor("x/f32")), rounded);
}

TEST_F(Hdf5, NestedGroupsAndListing) {
  std::string file = path("g.h5");
  H5 f(file, H5::Mode::Create);
  f.create_group("a/b/c");
  f.create_group("/a//b/c/");  // already there: fine
  f.create_group("a/z");
  f.create_group("a/b2");
  f.write_tensor("a", "w.1", make({1}, {1}));
  f.write_tensor("a", "bias", make({1}, {2}));
  EXPECT_EQ(f.kind("a/b/c"), Hdf5ObjectKind::Group);
  EXPECT_EQ(f.kind(""), Hdf5ObjectKind::Group);
  EXPECT_EQ(f.kind("/"), Hdf5ObjectKind::Group);
  EXPECT_EQ(f.kind("a/w.1"), Hdf5ObjectKind::Dataset);
  EXPECT_EQ(f.kind("a/nope/deeper"), Hdf5ObjectKind::Missing);
  EXPECT_EQ(f.kind("a/w.1/below_a_dataset"), Hdf5ObjectKind::Missing);
  EXPECT_TRUE(f.is_group("a/b"));
  EXPECT_TRUE(f.is_dataset("/a/bias"));
  EXPECT_FALSE(f.exists("b"));
  // Creation order, not name order.
  EXPECT_EQ(f.children("a"), (std::vector<std::string>{"b", "z", "b2", "w.1", "bias"}));
  EXPECT_EQ(f.groups("a"), (std::vector<std::string>{"b", "z", "b2"}));
  EXPECT_EQ(f.datasets("a"), (std::vector<std::string>{"w.1", "bias"}));
  EXPECT_EQ(f.children(""), std::vector<std::string>{"a"});
  EXPECT_TRUE(f.children("a/b/c").empty());
  expect_error([&] { f.create_group("a/w.1/x"); }, file, {"create_group", "'a/w.1' is not a group"});
  expect_error([&] { f.children("a/w.1"); }, file, {"'a/w.1' is a dataset, not a group"});
  expect_error([&] { f.children("q"); }, file, {"no group 'q'"});
  f.close();
  // Still in creation order after reopening.
  H5 r(file);
  EXPECT_EQ(r.children("a"), (std::vector<std::string>{"b", "z", "b2", "w.1", "bias"}));
}

TEST_F(Hdf5, AttributesOnFileGroupAndDataset) {
  std::string file = path("attr.h5");
  {
    H5 f(file, H5::Mode::Create);
    f.write_tensor("model", "encoder.weight", make({2}, {1, 2}));
    f.set_attr("", "config", "{\"lr\": 0.1}");
    f.set_attr("", "step", int64_t{123456789012345});
    f.set_attr("/", "loss", 0.25);
    f.set_attr("model", "name", std::string("bit \xe2\x80\x94 r50"));
    f.set_attr("model", "empty", "");
    f.set_attr("model", "min", std::numeric_limits<int64_t>::min());
    f.set_attr("model", "count", 3);  // an int literal is stored as an integer
    f.set_attr("model/encoder.weight", "inf", -std::numeric_limits<double>::infinity());
    f.set_attr("model/encoder.weight", "neg_zero", -0.0);
    f.set_attr("model", "name", "replaced");  // replaces, keeps one attribute
  }
  H5 f(file);
  EXPECT_EQ(f.string_attr("", "config"), "{\"lr\": 0.1}");
  EXPECT_EQ(f.int_attr("/", "step"), 123456789012345);
  EXPECT_EQ(f.double_attr("", "loss"), 0.25);
  EXPECT_EQ(f.double_attr("", "step"), 123456789012345.0);  // integers read as doubles on request
  EXPECT_EQ(f.string_attr("model", "name"), "replaced");
  EXPECT_EQ(f.string_attr("model", "empty"), "");
  EXPECT_EQ(f.int_attr("model", "min"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(f.attr("model", "count"), Hdf5Attr(int64_t{3}));
  EXPECT_EQ(f.double_attr("model/encoder.weight", "inf"), -std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::signbit(f.double_attr("model/encoder.weight", "neg_zero")));
  EXPECT_TRUE(f.has_attr("model", "min"));
  EXPECT_FALSE(f.has_attr("model", "max"));
  EXPECT_EQ(f.attr_names(""), (std::vector<std::string>{"config", "step", "loss"}));
  // "name" was deleted and re-created, so it is now last.
  EXPECT_EQ(f.attr_names("model"), (std::vector<std::string>{"empty", "min", "count", "name"}));
  EXPECT_EQ(f.attr_names("model/encoder.weight"), (std::vector<std::string>{"inf", "neg_zero"}));
  expect_error([&] { f.attr("model", "max"); }, file, {"attr", "no attribute 'max' on 'model'"});
  expect_error([&] { f.attr("nothing/here", "x"); }, file, {"no object 'nothing/here'"});
  expect_error([&] { f.int_attr("model", "name"); }, file, {"attribute 'name' on 'model' is not an integer"});
  expect_error([&] { f.string_attr("", "step"); }, file, {"is not a string"});
  expect_error([&] { f.double_attr("model", "name"); }, file, {"is not a number"});
  expect_error([&] { f.set_attr("", "x", 1.0); }, file, {"set_attr", "read-only"});
}

TEST_F(Hdf5, AttributeWriteErrors) {
  std::string file = path("attr_err.h5");
  H5 f(file, H5::Mode::Create);
  expect_error([&] { f.set_attr("", "s", std::string("a\0b", 3)); }, file, {"NUL"});
  expect_error([&] { f.set_attr("", "", 1.0); }, file, {"empty attribute name"});
  expect_error([&] { f.set_attr("missing", "x", 1.0); }, file, {"no object 'missing'"});
}

TEST_F(Hdf5, StateDictRoundTripKeepsOrderAndDottedNames) {
  StateDict sd;
  sd.insert("encoder.layer.10.attention.self.query.weight", make({2, 2}, sample(4), kFloat32));
  sd.insert("encoder.layer.2.output.bias", make({3}, sample(3, -1, 1, 2), kBFloat16));
  sd.insert("pooler.dense.weight", make({}, {7}, kFloat16));
  sd.insert("embeddings.position_ids", make({1, 4}, {0, 1, 2, 3}, kInt64));
  sd.insert("b", make({0, 2}, {}, kBool));
  sd.insert("a", make({2}, {1, 0}, kBool));
  std::string file = path("sd.h5");
  {
    H5 f(file, H5::Mode::Create);
    f.write_state_dict("model/state", sd);
    f.create_group("model/state/subgroup");  // read_state_dict skips groups
    f.write_state_dict("", sd);               // at the root too
  }
  H5 f(file);
  for (const char* group : {"model/state", "/"}) {
    StateDict back = f.read_state_dict(group);
    ASSERT_EQ(back.keys(), sd.keys()) << group;
    for (const auto& [name, t] : sd) expect_same(back[name], t, name);
  }
  EXPECT_TRUE(f.read_state_dict("model").empty());
}

TEST_F(Hdf5, NameErrors) {
  std::string file = path("names.h5");
  H5 f(file, H5::Mode::Create);
  Tensor t = make({1}, {1});
  expect_error([&] { f.write_tensor("g", "a/b", t); }, file,
               {"write_tensor", "object name 'a/b' contains '/'"});
  expect_error([&] { f.write_tensor("g", "", t); }, file, {"empty object name"});
  expect_error([&] { f.write_tensor("g", ".", t); }, file, {"'.' cannot name an object"});
  expect_error([&] { f.write_tensor("g", "x", Tensor()); }, file, {"undefined tensor"});
  StateDict sd;
  sd.insert("ok", t);
  sd.insert("model/bad", t);
  expect_error([&] { f.write_state_dict("sd", sd); }, file, {"write_state_dict", "'model/bad' contains '/'"});
  EXPECT_FALSE(f.exists("sd"));  // nothing was written
  f.write_tensor("g", "x", t);
  expect_error([&] { f.write_tensor("g", "x", t); }, file, {"'g/x' already exists"});
  expect_error([&] { f.read_tensor("g", "a/b"); }, file, {"read_tensor", "contains '/'"});
}

TEST_F(Hdf5, MissingObjects) {
  std::string file = path("missing.h5");
  H5 f(file, H5::Mode::Create);
  f.write_tensor("g", "x", make({1}, {1}));
  expect_error([&] { f.read_tensor("g", "y"); }, file, {"read_tensor", "no dataset 'g/y'"});
  expect_error([&] { f.read_tensor("nope/deeper/x"); }, file, {"no dataset 'nope/deeper/x'"});
  expect_error([&] { f.read_tensor("g"); }, file, {"'g' is a group, not a dataset"});
  expect_error([&] { f.read_state_dict("h"); }, file, {"read_state_dict", "no group 'h'"});
  expect_error([&] { f.dataset_info("g/z"); }, file, {"dataset_info", "no dataset 'g/z'"});
  f.close();
  expect_error([&] { f.read_tensor("g/x"); }, file, {"is closed"});
}

TEST_F(Hdf5, OpenErrors) {
  std::string missing = path("missing.h5");
  expect_error([&] { H5 f(missing); }, missing, {"cannot open", "No such file"});
  expect_error([&] { H5 f(missing, H5::Mode::Append); }, missing, {"cannot open"});
  std::string text = path("text.h5");
  write_bytes(text, "this is not an HDF5 file, just some text that is long enough to look at\n");
  expect_error([&] { H5 f(text); }, text, {"not an HDF5 file"});
  std::string empty = path("empty.h5");
  write_bytes(empty, "");
  expect_error([&] { H5 f(empty); }, empty, {"Hdf5File(open)"});
  expect_error([&] { H5 f(dir_.string()); }, dir_.string(), {"not a regular file"});
  std::string nodir = path("no_such_dir/x.h5");
  expect_error([&] { H5 f(nodir, H5::Mode::Create); }, nodir, {"cannot create the file"});
}

TEST_F(Hdf5, TruncatedFiles) {
  std::string file = path("full.h5");
  {
    H5 f(file, H5::Mode::Create);
    f.write_tensor("g", "big", make({64, 64}, sample(4096)));
    f.set_attr("g", "note", "x");
  }
  std::string bytes = read_bytes(file);
  ASSERT_GT(bytes.size(), 32768u);
  for (size_t keep : {bytes.size() - 1, bytes.size() / 2, size_t{1000}, size_t{100}, size_t{7}}) {
    std::string cut = path("cut_" + std::to_string(keep) + ".h5");
    write_bytes(cut, bytes.substr(0, keep));
    // HDF5 compares the end of file it recorded with the real one on open;
    // whatever it reports, it must come back as an error about this file.
    expect_error([&] { H5 f(cut); (void)f.read_tensor("g/big"); }, cut, {"Hdf5File(open)"});
  }
}

TEST_F(Hdf5, AppendModeAndReadOnlyWrites) {
  std::string file = path("app.h5");
  {
    H5 f(file, H5::Mode::Create);
    f.write_tensor("", "a", make({1}, {1}));
  }
  {
    H5 ro(file);
    expect_error([&] { ro.write_tensor("", "b", make({1}, {2})); }, file, {"write_tensor", "read-only"});
    expect_error([&] { ro.create_group("g"); }, file, {"read-only"});
  }
  {
    H5 f(file, H5::Mode::Append);
    EXPECT_TRUE(f.writable());
    f.write_tensor("", "b", make({1}, {2}));
    f.flush();
  }
  H5 f(file);
  EXPECT_EQ(f.datasets(""), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(values(f.read_tensor("b")), std::vector<double>{2});
  // Moving keeps the file open in the new handle; the old one reports misuse.
  H5 moved = std::move(f);
  EXPECT_EQ(values(moved.read_tensor("a")), std::vector<double>{1});
  EXPECT_FALSE(f.is_open());  // NOLINT(bugprone-use-after-move): checking the moved-from state
  EXPECT_KILN_ERROR(f.read_tensor("a"), "moved-from");
}

TEST_F(Hdf5, CreateTruncatesAnExistingFile) {
  std::string file = path("trunc.h5");
  {
    H5 f(file, H5::Mode::Create);
    f.write_tensor("", "old", make({1}, {1}));
  }
  {
    H5 f(file, H5::Mode::Create);
    f.write_tensor("", "new", make({1}, {2}));
  }
  H5 f(file);
  EXPECT_EQ(f.children(""), std::vector<std::string>{"new"});
}

TEST_F(Hdf5, ThreadsWritingAndReadingTheirOwnFiles) {
  // Every call holds the wrapper's lock, so threads sharing the library
  // (and one thread's error state) never interfere.
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 0);
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&, k] {
      std::string file = path("thread" + std::to_string(k) + ".h5");
      StateDict sd;
      for (int i = 0; i < 20; ++i) sd.insert("w." + std::to_string(i), make({3}, sample(3, -1, 1, k * 100 + i)));
      {
        H5 f(file, H5::Mode::Create);
        f.write_state_dict("m", sd);
        f.set_attr("m", "thread", int64_t{k});
      }
      H5 f(file);
      StateDict back = f.read_state_dict("m");
      bool same = back.keys() == sd.keys() && f.int_attr("m", "thread") == k;
      for (const auto& [name, t] : sd) same = same && values(back[name]) == values(t);
      try {
        f.read_tensor("m/missing");
      } catch (const Error&) {
        ok[k] = same ? 1 : 0;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, (std::vector<int>{1, 1, 1, 1}));
}
