// Checkpoint files: every field round-trips bit for bit (all dtypes, 0-dim
// and empty tensors, a real AdamW state, unicode config text), inspection
// lists the tensors, and every kind of damaged or foreign file is a
// kiln::Error that names it.
#include "kiln/train/checkpoint.h"

#include <kiln/kiln.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "kiln/nn/serialize/hdf5.h"
#include "kiln/train/optim/adam.h"
#include "nn/temp_dir.h"
#include "tensor_bytes.h"
#include "test_util.h"

using namespace kiln;
using kiln::nn::StateDict;
using kiln::testing::bytes_of;
using kiln::testing::error_of;
using kiln::testing::from_bits;
using kiln::testing::make;
using kiln::testing::sample;
using kiln::train::Checkpoint;
using kiln::train::CheckpointSummary;
using kiln::train::inspect_checkpoint;
using kiln::train::load_checkpoint;
using kiln::train::save_checkpoint;
using H5 = kiln::nn::serialize::Hdf5File;

namespace {

// Every byte different, so a swapped, shifted or truncated element shows.
Tensor patterned(DType dtype, std::vector<int64_t> shape, unsigned seed) {
  Tensor t = native::empty(shape, TensorOptions().dtype(dtype));
  auto* p = static_cast<unsigned char*>(t.data_ptr());
  for (size_t i = 0; i < t.nbytes(); ++i) p[i] = static_cast<unsigned char>(i * 37 + 11 + seed * 101);
  if (dtype == kBool)
    for (size_t i = 0; i < t.nbytes(); ++i) p[i] &= 1;
  return t;
}


void expect_same(const StateDict& actual, const StateDict& expected, const std::string& what) {
  ASSERT_EQ(actual.keys(), expected.keys()) << what;
  for (const auto& item : expected) {
    const Tensor& a = actual[item.key];
    EXPECT_EQ(a.dtype(), item.value.dtype()) << what << "/" << item.key;
    EXPECT_EQ(a.sizes(), item.value.sizes()) << what << "/" << item.key;
    EXPECT_EQ(bytes_of(a), bytes_of(item.value)) << what << "/" << item.key;
  }
}

Tensor i64(int64_t v) {
  Tensor t = native::empty({}, TensorOptions().dtype(kInt64));
  *t.data_ptr<int64_t>() = v;
  return t;
}

// A checkpoint using every field, every dtype and the awkward shapes.
Checkpoint full_checkpoint() {
  Checkpoint c;
  c.step = 12345;
  c.epoch = 7;
  c.model.insert("encoder.layer.0.weight", patterned(kFloat32, {3, 4}, 1));
  c.model.insert("encoder.layer.0.bias", patterned(kFloat64, {5}, 2));
  c.model.insert("position_ids", patterned(kInt64, {2, 3}, 3));
  // bf16 specials: NaN with a payload, -0, infinities, the smallest subnormal.
  c.model.insert("bf16", from_bits<uint16_t>(kBFloat16, {6}, {0x7FC1, 0x8000, 0x7F80, 0xFF80, 0x0001, 0x3F80}));
  c.model.insert("f16", patterned(kFloat16, {2, 2}, 4));
  c.model.insert("scalar", from_bits<float>(kFloat32, {}, {-2.5f}));
  c.model.insert("empty", native::empty({0, 3}, TensorOptions().dtype(kFloat32)));
  c.model.insert("mask", patterned(kBool, {5}, 5));
  c.model.insert("bytes", patterned(kUInt8, {9}, 6));
  c.model.insert("int32", patterned(kInt32, {4}, 7));
  c.optimizer.insert("state.0.step", from_bits<float>(kFloat32, {}, {3.0f}));
  c.optimizer.insert("state.0.exp_avg", patterned(kFloat32, {3, 4}, 8));
  c.scheduler.insert("last_epoch", i64(42));
  c.generator_seed = 0xFEDCBA9876543210ull;  // above INT64_MAX: stored bit for bit
  c.generator_offset = std::numeric_limits<uint64_t>::max();
  c.loader_epoch = 3;
  c.loader_batch = -1;
  c.extra.insert("second_loader.epoch", i64(-9));
  c.config_yaml = "run:\n  name: \"démo ✓ 日本語\"\n  note: 'tab\there'\n\nmodel: {dim: 64}\n";
  c.metrics_json = R"({"eval/accuracy": 0.8125, "train/loss": 0.25})";
  c.trainer_json = R"({"best": 0.8125, "bad_evals": 2})";
  return c;
}

void expect_same(const Checkpoint& a, const Checkpoint& b) {
  EXPECT_EQ(a.step, b.step);
  EXPECT_EQ(a.epoch, b.epoch);
  expect_same(a.model, b.model, "model");
  expect_same(a.optimizer, b.optimizer, "optimizer");
  expect_same(a.scheduler, b.scheduler, "scheduler");
  expect_same(a.extra, b.extra, "extra");
  EXPECT_EQ(a.generator_seed, b.generator_seed);
  EXPECT_EQ(a.generator_offset, b.generator_offset);
  EXPECT_EQ(a.loader_epoch, b.loader_epoch);
  EXPECT_EQ(a.loader_batch, b.loader_batch);
  EXPECT_EQ(a.config_yaml, b.config_yaml);
  EXPECT_EQ(a.metrics_json, b.metrics_json);
  EXPECT_EQ(a.trainer_json, b.trainer_json);
}

// Where `needle` first occurs in the file's bytes (it must, exactly once).
size_t find_once(const std::string& haystack, const std::string& needle) {
  size_t at = haystack.find(needle);
  EXPECT_NE(at, std::string::npos) << "pattern not found in the file";
  EXPECT_EQ(haystack.find(needle, at + 1), std::string::npos) << "pattern found twice";
  return at;
}

class CheckpointFile : public kiln::testing::TempDirTest {
 protected:
  // Both load and inspect must fail, naming the file and saying `what`.
  void expect_rejected(const std::string& file, const std::string& what) {
    for (int verify = 0; verify < 2; ++verify) {
      std::string msg = verify ? error_of([&] { inspect_checkpoint(file, true); })
                               : error_of([&] { load_checkpoint(file); });
      EXPECT_NE(msg.find("'" + file + "'"), std::string::npos) << msg;
      EXPECT_NE(msg.find(what), std::string::npos) << msg;
    }
  }
  std::vector<std::string> files_in_dir() const {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir_)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }
};

}  // namespace

TEST_F(CheckpointFile, RoundTripsEveryFieldBitForBit) {
  Checkpoint c = full_checkpoint();
  save_checkpoint(path("a.h5"), c);
  Checkpoint back = load_checkpoint(path("a.h5"));
  expect_same(back, c);
  EXPECT_EQ(back.format_version, 1);
  // The CMake project version, "major.minor.patch".
  EXPECT_FALSE(back.kiln_version.empty());
  EXPECT_EQ(std::count(back.kiln_version.begin(), back.kiln_version.end(), '.'), 2) << back.kiln_version;
  // Nothing but the checkpoint is left in the directory.
  EXPECT_EQ(files_in_dir(), std::vector<std::string>{"a.h5"});
}

TEST_F(CheckpointFile, EmptyCheckpointRoundTrips) {
  Checkpoint c;
  save_checkpoint(path("empty.h5"), c);
  Checkpoint back = load_checkpoint(path("empty.h5"));
  expect_same(back, c);
  EXPECT_EQ(back.metrics_json, "{}");
  EXPECT_EQ(back.config_yaml, "");
}

TEST_F(CheckpointFile, NonContiguousTensorsAreSavedByValue) {
  Checkpoint c;
  Tensor base = make({3, 4}, sample(12), kFloat32);
  Tensor t = native::transpose(base, 0, 1);  // 4x3 view, not contiguous
  ASSERT_FALSE(t.is_contiguous());
  c.model.insert("t", t);
  save_checkpoint(path("t.h5"), c);
  Tensor back = load_checkpoint(path("t.h5")).model["t"];
  EXPECT_EQ(back.sizes(), t.sizes());
  EXPECT_EQ(kiln::testing::values(back), kiln::testing::values(t));
}

TEST_F(CheckpointFile, RealAdamWStateResumesIdentically) {
  auto params = [] {
    return std::vector<Tensor>{make({3, 4}, sample(12, -1, 1, 1), kFloat32).requires_grad_(true),
                               make({4}, sample(4, -1, 1, 2), kFloat32).requires_grad_(true)};
  };
  auto grads = [](const std::vector<Tensor>& p, unsigned s) {
    p[0].set_grad(make({3, 4}, sample(12, -1, 1, 10 + s), kFloat32));
    p[1].set_grad(make({4}, sample(4, -1, 1, 20 + s), kFloat32));
  };
  std::vector<Tensor> pa = params();
  optim::AdamW a(pa, {.lr = 0.01, .amsgrad = true});
  grads(pa, 0);
  a.step();

  Checkpoint c;
  for (size_t i = 0; i < pa.size(); ++i) c.model.insert("p" + std::to_string(i), pa[i].detach());
  c.optimizer = a.state_dict();
  ASSERT_FALSE(c.optimizer.empty());
  save_checkpoint(path("adam.h5"), c);
  Checkpoint back = load_checkpoint(path("adam.h5"));
  expect_same(back.optimizer, c.optimizer, "optimizer");

  // A fresh optimizer restored from the file takes the same next step as
  // the original.
  std::vector<Tensor> pb = params();
  for (size_t i = 0; i < pb.size(); ++i)
    std::memcpy(pb[i].data_ptr(), back.model["p" + std::to_string(i)].data_ptr(), pb[i].nbytes());
  optim::AdamW b(pb, {.lr = 0.5});
  b.load_state_dict(back.optimizer);
  grads(pa, 1);
  grads(pb, 1);
  a.step();
  b.step();
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_EQ(bytes_of(pa[i].detach()), bytes_of(pb[i].detach()));
}

TEST_F(CheckpointFile, SavingAgainReplacesTheFile) {
  Checkpoint c = full_checkpoint();
  save_checkpoint(path("a.h5"), c);
  c.step = 99;
  c.model.clear();
  c.model.insert("only", patterned(kFloat32, {2}, 9));
  save_checkpoint(path("a.h5"), c);
  expect_same(load_checkpoint(path("a.h5")), c);
  EXPECT_EQ(files_in_dir(), std::vector<std::string>{"a.h5"});
}

TEST_F(CheckpointFile, SaveErrorsNameTheFileAndLeaveNothingBehind) {
  EXPECT_KILN_ERROR(save_checkpoint(path("missing_dir/a.h5"), Checkpoint{}), path("missing_dir/a.h5"));
  Checkpoint good = full_checkpoint();
  save_checkpoint(path("a.h5"), good);
  Checkpoint bad;
  bad.model.insert("undefined", Tensor());
  EXPECT_KILN_ERROR(save_checkpoint(path("a.h5"), bad), path("a.h5"));
  Checkpoint bad_name;
  bad_name.model.insert("a/b", patterned(kFloat32, {1}, 1));
  EXPECT_KILN_ERROR(save_checkpoint(path("a.h5"), bad_name), path("a.h5"));
  // The old checkpoint is intact and no temporary file is left.
  expect_same(load_checkpoint(path("a.h5")), good);
  EXPECT_EQ(files_in_dir(), std::vector<std::string>{"a.h5"});
}

TEST_F(CheckpointFile, InspectListsTensorsAndAttributes) {
  Checkpoint c = full_checkpoint();
  save_checkpoint(path("a.h5"), c);
  for (bool verify : {false, true}) {
    CheckpointSummary s = inspect_checkpoint(path("a.h5"), verify);
    EXPECT_EQ(s.step, 12345);
    EXPECT_EQ(s.epoch, 7);
    EXPECT_EQ(s.format_version, 1);
    EXPECT_FALSE(s.kiln_version.empty());
    EXPECT_EQ(s.config_yaml, c.config_yaml);
    EXPECT_EQ(s.metrics_json, c.metrics_json);
    EXPECT_EQ(s.trainer_json, c.trainer_json);
    using Entry = std::pair<std::string, std::pair<std::string, std::vector<int64_t>>>;
    std::vector<Entry> expected = {
        {"model/encoder.layer.0.weight", {"float32", {3, 4}}},
        {"model/encoder.layer.0.bias", {"float64", {5}}},
        {"model/position_ids", {"int64", {2, 3}}},
        {"model/bf16", {"bfloat16", {6}}},
        {"model/f16", {"float16", {2, 2}}},
        {"model/scalar", {"float32", {}}},
        {"model/empty", {"float32", {0, 3}}},
        {"model/mask", {"bool", {5}}},
        {"model/bytes", {"uint8", {9}}},
        {"model/int32", {"int32", {4}}},
        {"optimizer/state.0.step", {"float32", {}}},
        {"optimizer/state.0.exp_avg", {"float32", {3, 4}}},
        {"scheduler/last_epoch", {"int64", {}}},
        {"rng/generator_seed", {"int64", {}}},
        {"rng/generator_offset", {"int64", {}}},
        {"rng/loader_epoch", {"int64", {}}},
        {"rng/loader_batch", {"int64", {}}},
        {"extra/second_loader.epoch", {"int64", {}}},
    };
    EXPECT_EQ(s.tensors, expected) << "verify " << verify;
  }
}

// ---- damaged and foreign files ----

TEST_F(CheckpointFile, MissingFile) {
  expect_rejected(path("nope.h5"), "does not exist");
}

TEST_F(CheckpointFile, NotAnHdf5File) {
  write_bytes(path("text.h5"), "step: 3\nthis is not HDF5 at all, just some text that is long enough\n");
  expect_rejected(path("text.h5"), "not an HDF5 file");
  write_bytes(path("zero.h5"), "");
  expect_rejected(path("zero.h5"), "not a readable HDF5 file");
}

TEST_F(CheckpointFile, TruncatedAtAnyLength) {
  save_checkpoint(path("a.h5"), full_checkpoint());
  const std::string bytes = read_bytes(path("a.h5"));
  ASSERT_GT(bytes.size(), 2000u);
  for (size_t len : {size_t{0}, size_t{7}, size_t{100}, size_t{512}, bytes.size() / 3, bytes.size() / 2,
                     bytes.size() - 1000, bytes.size() - 1}) {
    SCOPED_TRACE("truncated to " + std::to_string(len) + " of " + std::to_string(bytes.size()));
    write_bytes(path("cut.h5"), bytes.substr(0, len));
    // Past the superblock HDF5 itself sees the file is shorter than it says.
    expect_rejected(path("cut.h5"), len >= 512 ? "truncated" : "not a readable HDF5 file");
  }
}

TEST_F(CheckpointFile, BitFlipInTensorDataIsAChecksumMismatch) {
  Checkpoint c = full_checkpoint();
  // A pattern that appears nowhere else in the file.
  std::string marker(64, '\0');
  for (size_t i = 0; i < marker.size(); ++i) marker[i] = static_cast<char>(0xA5 ^ (i * 29));
  c.model.insert("marked", from_bits(kUInt8, {64}, std::vector<char>(marker.begin(), marker.end())));
  save_checkpoint(path("a.h5"), c);
  std::string bytes = read_bytes(path("a.h5"));
  size_t at = find_once(bytes, marker);
  bytes[at + 33] ^= 0x10;
  write_bytes(path("a.h5"), bytes);
  expect_rejected(path("a.h5"), "is corrupted: checksum mismatch");
  // Without verification the attributes and the tensor list still read.
  EXPECT_EQ(inspect_checkpoint(path("a.h5"), false).step, c.step);
}

TEST_F(CheckpointFile, BitFlipInFloatWeightsIsAChecksumMismatch) {
  Checkpoint c;
  Tensor w = native::empty({256}, TensorOptions().dtype(kFloat32));
  for (int i = 0; i < 256; ++i) w.data_ptr<float>()[i] = 1.0f + static_cast<float>(i) / 1024.0f;
  c.model.insert("w", w);
  save_checkpoint(path("a.h5"), c);
  std::string bytes = read_bytes(path("a.h5"));
  size_t at = find_once(bytes, bytes_of(w));
  bytes[at + 4 * 100] ^= 0x01;  // the lowest mantissa bit of w[100]: a plausible value
  write_bytes(path("a.h5"), bytes);
  expect_rejected(path("a.h5"), "is corrupted: checksum mismatch");
}

TEST_F(CheckpointFile, FlippedAttributeIsAChecksumMismatch) {
  Checkpoint c = full_checkpoint();
  c.config_yaml = "optimizer:\n  lr: 0.001 # MARKER-config-QUIRKYWORD\n";
  save_checkpoint(path("a.h5"), c);
  std::string bytes = read_bytes(path("a.h5"));
  size_t at = find_once(bytes, "QUIRKYWORD");
  bytes[at + 3] ^= 0x01;  // 'R' -> 'S': still valid text
  write_bytes(path("a.h5"), bytes);
  expect_rejected(path("a.h5"), "is corrupted: checksum mismatch");
}

TEST_F(CheckpointFile, EditedThroughHdf5IsAChecksumMismatch) {
  save_checkpoint(path("a.h5"), full_checkpoint());
  std::string original = read_bytes(path("a.h5"));
  {
    H5 f(path("a.h5"), H5::Mode::Append);
    f.set_attr("", "step", int64_t{1});
    f.close();
  }
  expect_rejected(path("a.h5"), "checksum mismatch");
  write_bytes(path("a.h5"), original);
  {
    H5 f(path("a.h5"), H5::Mode::Append);
    f.write_tensor("extra", "smuggled", patterned(kFloat32, {2}, 3));
    f.close();
  }
  expect_rejected(path("a.h5"), "checksum mismatch");
  write_bytes(path("a.h5"), original);
  {
    H5 f(path("a.h5"), H5::Mode::Append);
    f.set_attr("", "surprise", "attribute");
    f.close();
  }
  expect_rejected(path("a.h5"), "checksum mismatch");
}

TEST_F(CheckpointFile, Hdf5FileThatIsNotACheckpoint) {
  {
    H5 f(path("weights.h5"), H5::Mode::Create);
    f.write_tensor("model", "w", patterned(kFloat32, {3}, 1));
    f.close();
  }
  expect_rejected(path("weights.h5"), "is not a Kiln checkpoint");
  {
    H5 f(path("other.h5"), H5::Mode::Create);
    f.set_attr("", "format", "something-else");
    f.close();
  }
  expect_rejected(path("other.h5"), "is not a Kiln checkpoint");
}

TEST_F(CheckpointFile, NewerFormatVersionIsRefused) {
  save_checkpoint(path("a.h5"), full_checkpoint());
  {
    H5 f(path("a.h5"), H5::Mode::Append);
    f.set_attr("", "format_version", int64_t{2});
    f.close();
  }
  expect_rejected(path("a.h5"), "format_version 2, newer than this Kiln reads");
}

TEST_F(CheckpointFile, MissingGroupsAndAttributes) {
  {
    H5 f(path("no_groups.h5"), H5::Mode::Create);
    f.set_attr("", "format", "kiln-checkpoint");
    f.set_attr("", "format_version", int64_t{1});
    f.close();
  }
  expect_rejected(path("no_groups.h5"), "has no group 'model'");
  {
    H5 f(path("no_attrs.h5"), H5::Mode::Create);
    f.set_attr("", "format", "kiln-checkpoint");
    f.set_attr("", "format_version", int64_t{1});
    for (const char* g : {"model", "optimizer", "scheduler", "rng", "extra"}) f.create_group(g);
    f.close();
  }
  expect_rejected(path("no_attrs.h5"), "has no attribute 'checksum'");
  {
    H5 f(path("no_version.h5"), H5::Mode::Create);
    f.set_attr("", "format", "kiln-checkpoint");
    f.close();
  }
  expect_rejected(path("no_version.h5"), "has no attribute 'format_version'");
}

TEST_F(CheckpointFile, DirectoryIsNotACheckpoint) {
  std::filesystem::create_directories(path("dir.h5"));
  expect_rejected(path("dir.h5"), "not a regular file");
}
