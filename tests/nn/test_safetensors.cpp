// safetensors: reading the Python library's output (every dtype, bit for bit),
// writing files byte-identical to it, round trips through Kiln, and one test
// per kind of corrupt file, each of which must be a kiln::Error naming the
// file and the problem.
#include "kiln/nn/serialize/safetensors.h"

#include <kiln/kiln.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "nn/temp_dir.h"
#include "tensor_bytes.h"
#include "test_util.h"

using namespace kiln;
using kiln::nn::StateDict;
using kiln::testing::make;
using kiln::testing::sample;
using kiln::testing::values;
namespace ser = kiln::nn::serialize;

namespace {

using kiln::testing::bytes_of;
using kiln::testing::from_bits;

const std::string kFixture =
    (std::filesystem::path(__FILE__).parent_path().parent_path() / "fixtures/serialize/sample.safetensors").string();

template <typename U>
std::string bytes_of(const std::vector<U>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(U));
}

// The tensors tools/fixtures/safetensors_sample.py writes, from the same bit patterns.
StateDict fixture_tensors() {
  StateDict sd;
  sd.insert("float64", from_bits<double>(kFloat64, {2, 3}, {-1.25, -0.75, -0.25, 0.25, 0.75, 1.25}));
  sd.insert("float32", from_bits<uint32_t>(kFloat32, {2, 3},
                                           {0x3FC00000, 0x80000000, 0x7F800000, 0x7FC00001, 0x00000001, 0xC0490FDB}));
  sd.insert("float16", from_bits<uint16_t>(kFloat16, {3, 2}, {0x3C00, 0xC000, 0x7BFF, 0x0001, 0x7C00, 0x7E01}));
  sd.insert("bfloat16", from_bits<uint16_t>(kBFloat16, {6}, {0x3F80, 0xC040, 0x7F7F, 0x0001, 0xFF80, 0x7FC1}));
  sd.insert("int64", from_bits<int64_t>(kInt64, {2, 2}, {-(int64_t{1} << 62) - 5, -1, 0, (int64_t{1} << 40) + 3}));
  sd.insert("int32", from_bits<int32_t>(kInt32, {4}, {INT32_MIN, -7, 0, INT32_MAX}));
  sd.insert("uint8", from_bits<uint8_t>(kUInt8, {5}, {0, 1, 127, 128, 255}));
  sd.insert("bool", from_bits<uint8_t>(kBool, {2, 2}, {1, 0, 0, 1}));
  sd.insert("scalar", from_bits<double>(kFloat64, {}, {-2.5}));
  sd.insert("empty", from_bits<float>(kFloat32, {0, 3}, {}));
  sd.insert("layer.0.weight", from_bits<float>(kFloat32, {1, 2}, {0.25f, -0.5f}));
  return sd;
}
const ser::SafetensorsMetadata kFixtureMetadata = {{"note", "kiln \"fixture\" \xc3\xa9\n"}};

void expect_same(const StateDict& actual, const StateDict& expected) {
  ASSERT_EQ(actual.keys(), expected.keys());
  for (const auto& [name, want] : expected) {
    const Tensor& got = actual[name];
    EXPECT_EQ(got.dtype(), want.dtype()) << name;
    EXPECT_TRUE(got.sizes().equals(want.sizes())) << name << ": " << got.sizes() << " vs " << want.sizes();
    EXPECT_EQ(bytes_of(got), bytes_of(want)) << name;
  }
}

// A file made of an explicit header and buffer, for the corrupt-input tests.
std::string st_file(const std::string& header, const std::string& buffer = "") {
  uint64_t n = header.size();
  std::string out(8, '\0');
  std::memcpy(out.data(), &n, 8);
  return out + header + buffer;
}

class Safetensors : public kiln::testing::TempDirTest {
 protected:
  // Expects opening `bytes` as a file to fail with a message naming the file and `fragment`.
  void expect_corrupt(const std::string& bytes, const std::string& fragment) {
    std::string file = path("bad.safetensors");
    write_bytes(file, bytes);
    try {
      ser::SafetensorsFile f(file);
      ADD_FAILURE() << "no error; expected one containing '" << fragment << "'";
    } catch (const Error& e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find(file), std::string::npos) << msg;
      EXPECT_NE(msg.find(fragment), std::string::npos) << msg;
    }
    EXPECT_ANY_THROW(ser::load_safetensors(file));
  }
};

}  // namespace

TEST_F(Safetensors, ReadsPythonLibraryFileBitForBit) {
  ser::SafetensorsMetadata meta;
  StateDict loaded = ser::load_safetensors(kFixture, &meta);
  EXPECT_EQ(meta, kFixtureMetadata);
  // Header order, which the Python library sorts: widest dtypes first, then names.
  std::vector<std::string> order = {"int64", "float64", "scalar", "empty", "float32", "layer.0.weight",
                                    "int32", "bfloat16", "float16", "uint8", "bool"};
  EXPECT_EQ(loaded.keys(), order);
  StateDict expected;
  StateDict fixture = fixture_tensors();
  for (const auto& name : order) expected.insert(name, fixture[name]);
  expect_same(loaded, expected);
  // One decoded spot check per float type, independent of the bit patterns.
  EXPECT_EQ(values(loaded["float64"])[5], 1.25);
  EXPECT_EQ(values(loaded["float16"])[2], 65504.0);
  EXPECT_EQ(values(loaded["bfloat16"])[1], -3.0);
  EXPECT_EQ(values(loaded["scalar"])[0], -2.5);
  EXPECT_EQ(loaded["scalar"].dim(), 0);
}

TEST_F(Safetensors, PythonLayoutIsByteIdenticalToPythonLibrary) {
  std::string file = path("kiln.safetensors");
  ser::save_safetensors(file, fixture_tensors(), kFixtureMetadata, ser::SafetensorsLayout::Python);
  EXPECT_EQ(read_bytes(file), read_bytes(kFixture));
}

TEST_F(Safetensors, LazyFileListsAndLoadsSingleTensors) {
  ser::SafetensorsFile f(kFixture);
  EXPECT_EQ(f.path(), kFixture);
  EXPECT_EQ(f.size(), 11u);
  EXPECT_TRUE(f.contains("layer.0.weight"));
  EXPECT_FALSE(f.contains("layer.0.bias"));
  const auto& e = f.entry("bfloat16");
  EXPECT_EQ(e.dtype_name, "BF16");
  ASSERT_TRUE(e.dtype.has_value());
  EXPECT_EQ(*e.dtype, kBFloat16);
  EXPECT_EQ(e.shape, std::vector<int64_t>{6});
  EXPECT_EQ(e.end - e.begin, 12u);
  EXPECT_EQ(e.numel(), 6);
  EXPECT_EQ(f.entry("empty").numel(), 0);
  EXPECT_EQ(bytes_of(f.load("int32")), bytes_of(fixture_tensors()["int32"]));
  EXPECT_KILN_ERROR(f.load("nope"), "no tensor named 'nope'");
  EXPECT_KILN_ERROR(f.entry("nope"), kFixture);
  // Loaded tensors own their memory: they outlive the file object.
  Tensor t = f.load("float64");
  ser::SafetensorsFile moved = std::move(f);
  { ser::SafetensorsFile gone = std::move(moved); }
  EXPECT_EQ(values(t), (std::vector<double>{-1.25, -0.75, -0.25, 0.25, 0.75, 1.25}));
}

TEST_F(Safetensors, RoundTripKeepsOrderValuesAndLayoutOfEveryDtype) {
  auto base_vals = sample(12, -4, 4, 3);
  Tensor base = make({3, 4}, base_vals);
  StateDict sd;
  // Deliberately not in any sorted order: AsGiven keeps it.
  sd.insert("z.transposed", native::transpose(base, 0, 1));                        // non-contiguous
  sd.insert("a.strided", native::slice(make({10}, sample(10)), 0, 1, 10, 3));      // step 3
  sd.insert("m.expanded", native::expand(make({1, 3}, {1, 2, 3}, kInt32), {2, 3}));  // stride 0
  StateDict fixture = fixture_tensors();
  for (const auto& [name, t] : fixture) sd.insert("fx." + name, t);
  std::string file = path("rt.safetensors");
  ser::save_safetensors(file, sd, {{"b", "2"}, {"a", "\xe2\x9c\x93 \"q\""}, {"empty", ""}});

  ser::SafetensorsMetadata meta;
  StateDict loaded = ser::load_safetensors(file, &meta);
  EXPECT_EQ(loaded.keys(), sd.keys());
  EXPECT_EQ(meta, (ser::SafetensorsMetadata{{"b", "2"}, {"a", "\xe2\x9c\x93 \"q\""}, {"empty", ""}}));

  std::vector<double> transposed;
  for (int j = 0; j < 4; ++j)
    for (int i = 0; i < 3; ++i) transposed.push_back(base_vals[i * 4 + j]);
  EXPECT_EQ(values(loaded["z.transposed"]), transposed);
  EXPECT_TRUE(loaded["z.transposed"].sizes().equals({4, 3}));
  auto v10 = sample(10);
  EXPECT_EQ(values(loaded["a.strided"]), (std::vector<double>{v10[1], v10[4], v10[7]}));
  EXPECT_EQ(loaded["m.expanded"].dtype(), kInt32);
  EXPECT_EQ(values(loaded["m.expanded"]), (std::vector<double>{1, 2, 3, 1, 2, 3}));
  for (const auto& [name, t] : fixture) {
    EXPECT_EQ(loaded["fx." + name].dtype(), t.dtype());
    EXPECT_EQ(bytes_of(loaded["fx." + name]), bytes_of(t)) << name;
  }
  // Every data offset starts after a header padded to a multiple of 8.
  std::string raw = read_bytes(file);
  uint64_t n = 0;
  std::memcpy(&n, raw.data(), 8);
  EXPECT_EQ(n % 8, 0u);
}

TEST_F(Safetensors, EmptyDictAndOverwrite) {
  std::string file = path("e.safetensors");
  ser::save_safetensors(file, StateDict{});
  EXPECT_EQ(read_bytes(file), st_file("{}      "));
  EXPECT_TRUE(ser::load_safetensors(file).empty());
  // Saving again replaces the file and leaves no temporary behind.
  StateDict sd;
  sd.insert("x", make({2}, {1, 2}, kFloat32));
  ser::save_safetensors(file, sd);
  EXPECT_EQ(values(ser::load_safetensors(file)["x"]), (std::vector<double>{1, 2}));
  int entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir_)) ++entries;
  EXPECT_EQ(entries, 1);
}

TEST_F(Safetensors, WriteErrors) {
  StateDict sd;
  sd.insert("__metadata__", make({1}, {1}));
  EXPECT_KILN_ERROR(ser::save_safetensors(path("a.safetensors"), sd), "reserved");
  StateDict bad_utf8;
  bad_utf8.insert("w\xff", make({1}, {1}));
  EXPECT_KILN_ERROR(ser::save_safetensors(path("b.safetensors"), bad_utf8), "UTF-8");
  StateDict undefined;
  undefined.insert("u", Tensor());
  EXPECT_KILN_ERROR(ser::save_safetensors(path("c.safetensors"), undefined), "undefined");
  StateDict ok;
  ok.insert("x", make({1}, {1}));
  EXPECT_KILN_ERROR(ser::save_safetensors(path("missing_dir/x.safetensors"), ok), "missing_dir/x.safetensors");
  // Failed writes leave nothing behind, temporary files included.
  EXPECT_TRUE(std::filesystem::is_empty(dir_));
}

TEST_F(Safetensors, HeaderPaddingAndUnsupportedDtypes) {
  // Spaces and a newline after the JSON are padding, not garbage.
  std::string file = path("pad.safetensors");
  write_bytes(file, st_file(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}  )" "\n  ", "\x05\x07"));
  EXPECT_EQ(values(ser::load_safetensors(file)["a"]), (std::vector<double>{5, 7}));
  // I8 is valid safetensors but has no Kiln dtype: the file opens and
  // lists, only loading that tensor fails.
  write_bytes(file, st_file(R"({"q":{"dtype":"I8","shape":[1],"data_offsets":[0,1]},)"
                            R"("b":{"dtype":"U8","shape":[],"data_offsets":[1,2]}})",
                            "\xff\x09"));
  ser::SafetensorsFile f(file);
  EXPECT_EQ(f.entry("q").dtype_name, "I8");
  EXPECT_FALSE(f.entry("q").dtype.has_value());
  EXPECT_EQ(values(f.load("b")), std::vector<double>{9});
  EXPECT_KILN_ERROR(f.load("q"), "I8, which Kiln has no type for");
  // Bool bytes other than 0/1 become true, never an invalid bool.
  write_bytes(file, st_file(R"({"m":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]}})", std::string("\x00\x02\x01", 3)));
  Tensor m = ser::load_safetensors(file)["m"];
  EXPECT_EQ(bytes_of(m), std::string("\x00\x01\x01", 3));
}

TEST_F(Safetensors, FileErrors) {
  EXPECT_KILN_ERROR(ser::SafetensorsFile(path("absent.safetensors")), "cannot open");
  EXPECT_KILN_ERROR(ser::SafetensorsFile(dir_.string()), "not a regular file");
}

TEST_F(Safetensors, CorruptTooShort) {
  expect_corrupt("", "0 bytes, too short");
  expect_corrupt(std::string("\x02\x00\x00", 3), "3 bytes, too short");
}

TEST_F(Safetensors, CorruptHeaderLength) {
  std::string f = st_file("{}");
  f[0] = 100;
  expect_corrupt(f, "header length 100 exceeds the 2 bytes");
  std::string huge(8, '\xff');
  expect_corrupt(huge + "{}", "header length 18446744073709551615 exceeds");
}

TEST_F(Safetensors, CorruptJson) {
  expect_corrupt(st_file(R"({"a":{"dtype":"F32",)"), "invalid JSON header");
  expect_corrupt(st_file("{} x"), "invalid JSON header");
  expect_corrupt(st_file(std::string("{}\0\0", 4)), "invalid JSON header: NUL byte at header offset 2");
  expect_corrupt(st_file(std::string("{\"a\0\":1}", 8)), "NUL byte at header offset 3");
  expect_corrupt(st_file("[1, 2]"), "header is not a JSON object");
  expect_corrupt(st_file(R"({"a": 3})"), "tensor 'a': entry is not a JSON object");
  expect_corrupt(st_file("{\"\xff\": 1}"), "invalid JSON header");  // not UTF-8
}

TEST_F(Safetensors, CorruptMissingOrMistypedFields) {
  expect_corrupt(st_file(R"({"a":{"shape":[1],"data_offsets":[0,4]}})", "abcd"), "tensor 'a': missing field 'dtype'");
  expect_corrupt(st_file(R"({"a":{"dtype":"F32","data_offsets":[0,4]}})", "abcd"), "tensor 'a': missing field 'shape'");
  expect_corrupt(st_file(R"({"a":{"dtype":"F32","shape":[1]}})", "abcd"), "tensor 'a': missing field 'data_offsets'");
  expect_corrupt(st_file(R"({"a":{"dtype":32,"shape":[1],"data_offsets":[0,4]}})", "abcd"), "'dtype' is not a string");
  expect_corrupt(st_file(R"({"a":{"dtype":"F32","shape":4,"data_offsets":[0,4]}})", "abcd"), "'shape' is not an array");
  expect_corrupt(st_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}})", "abcd"), "[begin, end] pair");
  expect_corrupt(st_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,"4"]}})", "abcd"),
                 "offset \"4\" is not a non-negative integer");
  expect_corrupt(st_file(R"({"__metadata__":{"k":1}})"), "metadata value for 'k' is not a string");
  expect_corrupt(st_file(R"({"__metadata__":[]})"), "'__metadata__' is not a JSON object");
}

TEST_F(Safetensors, CorruptDtypeAndShape) {
  expect_corrupt(st_file(R"({"a":{"dtype":"F17","shape":[1],"data_offsets":[0,4]}})", "abcd"),
                 "tensor 'a': unknown dtype 'F17'");
  expect_corrupt(st_file(R"({"a":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}})", "abcd"), "unknown dtype 'f32'");
  expect_corrupt(st_file(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", "abcd"),
                 "tensor 'a': negative dimension -1");
  expect_corrupt(st_file(R"({"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,4]}})", "abcd"),
                 "dimension 2.5 is not a non-negative integer");
  expect_corrupt(st_file(R"({"a":{"dtype":"F32","shape":[0,4294967296,4294967296],"data_offsets":[0,0]}})"),
                 "is too large");
  expect_corrupt(st_file(R"({"a":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}})", "a"), "sub-byte dtype F4");
}

TEST_F(Safetensors, CorruptOffsets) {
  // Shape says 8 bytes, offsets span 4.
  expect_corrupt(st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", "abcd"),
                 "tensor 'a': size mismatch: shape [2] of F32 needs 2 x 4 bytes but data_offsets [0, 4] span 4");
  // numel * size overflowing u64 is a mismatch too, not a wrapped-around match.
  expect_corrupt(
      st_file(R"({"a":{"dtype":"F64","shape":[2305843009213693952, 2],"data_offsets":[0,0]}})"), "size mismatch");
  expect_corrupt(st_file(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}})", "abcd"),
                 "data_offsets [2, 6] out of range: the data buffer holds 4 bytes");
  expect_corrupt(st_file(R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[3,2]}})", "abcd"), "end before they begin");
  expect_corrupt(st_file(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,-1]}})", "a"), "negative offset -1");
}

TEST_F(Safetensors, CorruptCoverage) {
  expect_corrupt(st_file(R"({"a":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},)"
                         R"("b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})",
                         "abcd"),
                 "tensors 'a' [0, 3) and 'b' [2, 4) overlap");
  // An empty tensor inside another's bytes overlaps too.
  expect_corrupt(st_file(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                         R"("e":{"dtype":"U8","shape":[0],"data_offsets":[2,2]}})",
                         "abcd"),
                 "overlap");
  expect_corrupt(st_file(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                         R"("b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})",
                         "abcd"),
                 "hole in the data buffer: bytes [1, 2) belong to no tensor");
  expect_corrupt(st_file(R"({"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})", "abcd"), "bytes [0, 2)");
  expect_corrupt(st_file(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})", "abcd"),
                 "bytes [2, 4) at its end belong to no tensor");
  expect_corrupt(st_file("{}", "x"), "bytes [0, 1) at its end");
  // Empty tensors at the very end and in the middle are fine.
  std::string file = path("ok.safetensors");
  write_bytes(file, st_file(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                            R"("e":{"dtype":"F32","shape":[0,5],"data_offsets":[2,2]},)"
                            R"("b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]},)"
                            R"("z":{"dtype":"I64","shape":[3,0],"data_offsets":[4,4]}})",
                            "abcd"));
  StateDict sd = ser::load_safetensors(file);
  EXPECT_EQ(sd.keys(), (std::vector<std::string>{"a", "e", "b", "z"}));
  EXPECT_TRUE(sd["z"].sizes().equals({3, 0}));
}

TEST_F(Safetensors, CorruptDuplicates) {
  expect_corrupt(st_file(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                         R"("a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                         "ab"),
                 "duplicate key 'a'");
  expect_corrupt(st_file(R"({"a":{"dtype":"U8","dtype":"I8","shape":[1],"data_offsets":[0,1]}})", "a"),
                 "duplicate key 'dtype'");
  expect_corrupt(st_file(R"({"__metadata__":{},"__metadata__":{}})"), "duplicate key '__metadata__'");
  // The same key in different objects is not a duplicate.
  std::string file = path("ok.safetensors");
  write_bytes(file, st_file(R"({"__metadata__":{"shape":"x"},"shape":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})",
                            "a"));
  EXPECT_EQ(ser::load_safetensors(file).keys(), std::vector<std::string>{"shape"});
}
