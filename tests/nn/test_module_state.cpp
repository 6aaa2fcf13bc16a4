// Module checkpoints and printing: state_dict() contents and order,
// load_state_dict() (round trip, dtype conversion, torch's error report with
// every problem at once, non-strict results, atomicity), non-persistent
// buffers, and the PyTorch-style repr of modules and containers.
#include <kiln/kiln.h>

#include <sstream>
#include <string>
#include <vector>

#include "test_util.h"

using namespace kiln;
using namespace kiln::nn;
using kiln::testing::make;
using kiln::testing::values;

namespace {

struct BlockImpl : Module {
  BlockImpl() {
    fc = register_module("fc", Linear(4, 3));
    norm = register_module("norm", LayerNorm(LayerNormOptions({3})));
    register_buffer("steps", kiln::zeros({}, kInt64));
    register_buffer("cache", kiln::zeros({2}), /*persistent=*/false);
  }
  Tensor forward(const Tensor& x) { return norm(fc(x)); }
  Linear fc{nullptr};
  LayerNorm norm{nullptr};
};
KILN_MODULE(Block);

struct NetImpl : Module {
  NetImpl() {
    gamma = register_parameter("gamma", kiln::ones({3}));
    blocks = register_module("blocks", ModuleList(Block(), Block()));
    head = register_module("head", Linear(3, 2));
  }
  Tensor gamma;
  ModuleList blocks{nullptr};
  Linear head{nullptr};
};
KILN_MODULE(Net);

std::string str(const Module& m) {
  std::ostringstream os;
  os << m;
  return os.str();
}

}  // namespace

TEST(StateDict, KeysInRegistrationOrderWithPersistentBuffers) {
  Net net;
  std::vector<std::string> expected = {"gamma"};
  for (int i = 0; i < 2; ++i) {
    std::string p = "blocks." + std::to_string(i) + ".";
    // A module's own parameters, then its buffers, then its children.
    for (auto k : {"steps", "fc.weight", "fc.bias", "norm.weight", "norm.bias"}) expected.push_back(p + k);
  }
  expected.push_back("head.weight");
  expected.push_back("head.bias");
  const StateDict sd = net->state_dict();
  EXPECT_EQ(sd.keys(), expected);
  // The non-persistent cache is a buffer but not state.
  EXPECT_TRUE(net->named_buffers().contains("blocks.0.cache"));
  EXPECT_FALSE(sd.contains("blocks.0.cache"));
  // Detached views of the module's memory.
  const Tensor& w = sd["head.weight"];
  EXPECT_FALSE(w.requires_grad());
  EXPECT_EQ(w.data_ptr(), net->head->weight.data_ptr());
  // keep_vars gives the tensors themselves; prefix is prepended.
  EXPECT_TRUE(net->state_dict("", true)["head.weight"].is_same(net->head->weight));
  EXPECT_EQ(net->state_dict("model.").keys()[0], "model.gamma");
}

TEST(StateDict, RoundTripIntoAFreshModel) {
  Net a, b;
  a->blocks->at<BlockImpl>(1).get_buffer("steps").fill_(7);
  ASSERT_NE(values(a->head->weight), values(b->head->weight));
  StateDict sd = a->state_dict();
  LoadStateDictResult r = b->load_state_dict(sd);
  EXPECT_TRUE(r.missing_keys.empty());
  EXPECT_TRUE(r.unexpected_keys.empty());
  for (const auto& item : b->state_dict()) EXPECT_EQ(values(item.value), values(sd[item.key])) << item.key;
  // Copied, not aliased; parameters remain leaves that require grad.
  EXPECT_NE(b->head->weight.data_ptr(), a->head->weight.data_ptr());
  EXPECT_TRUE(b->head->weight.is_leaf());
  EXPECT_TRUE(b->head->weight.requires_grad());
  // Forward passes agree.
  Tensor x = make({2, 4}, {0.1, -0.2, 0.3, 0.4, 1.0, 2.0, -1.0, 0.5}, kFloat32);
  auto run = [&](Net& n) {
    Tensor h = n->blocks->at<BlockImpl>(0).forward(x);
    return values(n->head(h));
  };
  EXPECT_EQ(run(a), run(b));
}

TEST(StateDict, LoadConvertsDtype) {
  Linear fc(2, 2);
  StateDict sd;
  sd.insert("weight", make({2, 2}, {1.0, 2.0, 3.0, 4.0}));  // float64 into float32
  sd.insert("bias", make({2}, {0.5, -0.5}, kFloat16));
  fc->load_state_dict(sd);
  EXPECT_EQ(fc->weight.dtype(), kFloat32);
  EXPECT_EQ(values(fc->weight), (std::vector<double>{1, 2, 3, 4}));
  EXPECT_EQ(values(fc->bias), (std::vector<double>{0.5, -0.5}));
}

TEST(StateDict, StrictErrorListsEveryProblemAtOnce) {
  Net net, source;
  StateDict sd = source->state_dict();
  sd.erase("head.bias");
  sd.erase("blocks.1.steps");
  sd.insert("extra.weight", kiln::zeros({1}));
  sd.insert("blocks.0.cache", kiln::zeros({2}));  // non-persistent: not expected
  sd.insert_or_assign("head.weight", kiln::zeros({2, 5}));
  sd.insert_or_assign("blocks.0.fc.weight", kiln::zeros({4, 3}));
  const auto before = values(net->blocks->at<BlockImpl>(0).fc->bias);
  ASSERT_NE(before, values(sd["blocks.0.fc.bias"]));
  const std::string expected =
      "Error(s) in loading state_dict for Net:\n"
      "\tMissing key(s) in state_dict: \"blocks.1.steps\", \"head.bias\". \n"
      "\tUnexpected key(s) in state_dict: \"extra.weight\", \"blocks.0.cache\". \n"
      "\tsize mismatch for blocks.0.fc.weight: copying a param with shape [4, 3] from checkpoint, the shape in "
      "current model is [3, 4].\n"
      "\tsize mismatch for head.weight: copying a param with shape [2, 5] from checkpoint, the shape in current "
      "model is [2, 3].";
  try {
    net->load_state_dict(sd);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), expected);
  }
  // Nothing was loaded, not even the keys that matched.
  EXPECT_EQ(values(net->blocks->at<BlockImpl>(0).fc->bias), before);
}

TEST(StateDict, NonStrictReturnsKeysButShapeMismatchStillFails) {
  Net net;
  StateDict sd = net->state_dict();
  sd.erase("head.bias");
  sd.insert("extra", kiln::zeros({1}));
  Net other;
  LoadStateDictResult r = other->load_state_dict(sd, /*strict=*/false);
  EXPECT_EQ(r.missing_keys, std::vector<std::string>{"head.bias"});
  EXPECT_EQ(r.unexpected_keys, std::vector<std::string>{"extra"});
  EXPECT_EQ(values(other->head->weight), values(net->head->weight));
  EXPECT_NE(values(other->head->bias), values(net->head->bias));

  sd.insert_or_assign("head.weight", kiln::zeros({3, 3}));
  EXPECT_KILN_ERROR(other->load_state_dict(sd, false),
                    "size mismatch for head.weight: copying a param with shape [3, 3] from checkpoint, the shape in "
                    "current model is [2, 3].");
  // Strict load of a state dict with only unexpected keys reports them.
  StateDict full = net->state_dict();
  full.insert("x", kiln::zeros({1}));
  EXPECT_KILN_ERROR(other->load_state_dict(full), "Unexpected key(s) in state_dict: \"x\". ");
}

TEST(StateDict, OptionalAndUndefinedEntries) {
  Linear fc(LinearOptions(2, 2).bias(false));
  StateDict sd;
  sd.insert("weight", kiln::zeros({2, 2}));
  sd.insert("bias", kiln::zeros({2}));  // the model has no bias
  EXPECT_KILN_ERROR(fc->load_state_dict(sd), "Unexpected key(s) in state_dict: \"bias\". ");
  StateDict undefined;
  undefined.insert("weight", Tensor());
  EXPECT_KILN_ERROR(fc->load_state_dict(undefined), "undefined tensor for weight");
  // Loading a module's own state dict into itself is a no-op.
  Linear g(2, 2);
  const auto w = values(g->weight);
  g->load_state_dict(g->state_dict());
  EXPECT_EQ(values(g->weight), w);
}

TEST(StateDict, LoadWithoutRecordingGradients) {
  Linear fc(2, 1);
  StateDict sd;
  sd.insert("weight", kiln::ones({1, 2}, kiln::requires_grad()));
  sd.insert("bias", kiln::zeros({1}));
  fc->load_state_dict(sd);
  EXPECT_TRUE(fc->weight.is_leaf());
  EXPECT_EQ(fc->weight.grad_fn(), nullptr);
}

TEST(Printing, LayersAndNestedModules) {
  EXPECT_EQ(str(*Linear(4, 3)), "Linear(in_features=4, out_features=3, bias=true)");
  EXPECT_EQ(str(*Linear(LinearOptions(4, 3).bias(false))), "Linear(in_features=4, out_features=3, bias=false)");
  Net net;
  const std::string expected =
      "Net(\n"
      "  (blocks): ModuleList(\n"
      "    (0-1): 2 x Block(\n"
      "      (fc): Linear(in_features=4, out_features=3, bias=true)\n"
      "      (norm): LayerNorm((3,), eps=1e-05, elementwise_affine=true, bias=true)\n"
      "    )\n"
      "  )\n"
      "  (head): Linear(in_features=3, out_features=2, bias=true)\n"
      ")";
  EXPECT_EQ(str(*net), expected);
  std::ostringstream via_holder;
  via_holder << net;
  EXPECT_EQ(via_holder.str(), expected);
  // A module without children or settings prints empty parentheses.
  EXPECT_EQ(str(Module()), "Module()");
}

TEST(Printing, Containers) {
  Sequential seq(Linear(4, 3), ReLU(), Sequential(Linear(3, 3)));
  EXPECT_EQ(str(*seq),
            "Sequential(\n"
            "  (0): Linear(in_features=4, out_features=3, bias=true)\n"
            "  (1): ReLU()\n"
            "  (2): Sequential(\n"
            "    (0): Linear(in_features=3, out_features=3, bias=true)\n"
            "  )\n"
            ")");
  ModuleList list(Linear(2, 2), Linear(2, 2), Linear(2, 2), ReLU(), Linear(2, 2));
  EXPECT_EQ(str(*list),
            "ModuleList(\n"
            "  (0-2): 3 x Linear(in_features=2, out_features=2, bias=true)\n"
            "  (3): ReLU()\n"
            "  (4): Linear(in_features=2, out_features=2, bias=true)\n"
            ")");
  ModuleDict dict({{"a", Linear(2, 2)}, {"b", Tanh()}});
  EXPECT_EQ(str(*dict),
            "ModuleDict(\n"
            "  (a): Linear(in_features=2, out_features=2, bias=true)\n"
            "  (b): Tanh()\n"
            ")");
  EXPECT_EQ(str(*Sequential()), "Sequential()");
  EXPECT_EQ(str(*ModuleList()), "ModuleList()");
  EXPECT_EQ(str(*ModuleDict()), "ModuleDict()");
}

TEST(Printing, ExtraReprAndPrettyPrintOverrides) {
  struct CustomImpl : Module {
    CustomImpl() { register_module("fc", Linear(1, 1)); }
    std::string extra_repr() const override { return "k=3\nmode=fast"; }
  };
  auto custom = std::make_shared<CustomImpl>();
  EXPECT_EQ(str(*custom),
            "Custom(\n"
            "  k=3\n"
            "  mode=fast\n"
            "  (fc): Linear(in_features=1, out_features=1, bias=true)\n"
            ")");
  struct LeafImpl : Module {
    std::string extra_repr() const override { return "dim=8"; }
  };
  EXPECT_EQ(str(LeafImpl()), "Leaf(dim=8)");
  struct OwnImpl : Module {
    void pretty_print(std::ostream& os) const override { os << "Own<\nline>"; }
  };
  auto parent = std::make_shared<Module>("Parent");
  parent->register_module("own", std::make_shared<OwnImpl>());
  EXPECT_EQ(str(*parent), "Parent(\n  (own): Own<\n  line>\n)");
  EXPECT_EQ(indent_lines("a\nb\nc", 4), "a\n    b\n    c");
  EXPECT_EQ(indent_lines("single", 4), "single");
}

TEST(Printing, NumbersAsPython) {
  EXPECT_EQ(repr::number(1e-5), "1e-05");
  EXPECT_EQ(repr::number(1e-12), "1e-12");
  EXPECT_EQ(repr::number(0.1), "0.1");
  EXPECT_EQ(repr::number(1.0), "1.0");
  EXPECT_EQ(repr::number(0.0), "0.0");
  EXPECT_EQ(repr::number(-0.0), "-0.0");
  EXPECT_EQ(repr::number(0.0001), "0.0001");
  EXPECT_EQ(repr::number(1e16), "1e+16");
  EXPECT_EQ(repr::number(1e22), "1e+22");
  EXPECT_EQ(repr::number(123456.0), "123456.0");
  EXPECT_EQ(repr::number(2.5e-7), "2.5e-07");
  EXPECT_EQ(repr::number(-3.25), "-3.25");
  EXPECT_EQ(repr::number(1.0 / 3.0), "0.3333333333333333");
  EXPECT_EQ(repr::number(1e15 + 0.5), "1000000000000000.5");
  EXPECT_EQ(repr::number(int64_t{-7}), "-7");
  EXPECT_EQ(repr::tuple({768}), "(768,)");
  EXPECT_EQ(repr::tuple({3, 4}), "(3, 4)");
  EXPECT_EQ(repr::tuple({}), "()");
  EXPECT_EQ(repr::int_or_tuple({2, 2}), "2");
  EXPECT_EQ(repr::int_or_tuple({2, 3}), "(2, 3)");
}
