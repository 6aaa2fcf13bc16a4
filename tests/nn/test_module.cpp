// kiln::nn::Module: registration, dotted names and their order, traversal
// (with PyTorch's de-duplication of shared tensors and modules), train/eval,
// to(), zero_grad, apply, parameter counts and module holders. Checkpoints
// (state_dict/load_state_dict) and printing are in test_module_state.cpp.
#include <kiln/kiln.h>

#include <string>
#include <vector>

#include "test_util.h"

using namespace kiln;
using namespace kiln::nn;
using kiln::testing::make;
using kiln::testing::values;

namespace {

// A BERT-like nesting, to check dotted names: encoder.layer.0.attention.query.weight.
struct AttentionImpl : Module {
  AttentionImpl() {
    query = register_module("query", Linear(4, 4));
    key = register_module("key", Linear(LinearOptions(4, 4).bias(false)));
  }
  Linear query{nullptr}, key{nullptr};
};
KILN_MODULE(Attention);

struct LayerImpl : Module {
  LayerImpl() {
    attention = register_module("attention", Attention());
    output = register_module("output", Linear(4, 2));
    register_buffer("position_ids", kiln::arange(4));
  }
  Attention attention{nullptr};
  Linear output{nullptr};
};
KILN_MODULE(Layer);

struct EncoderImpl : Module {
  explicit EncoderImpl(int n) {
    layer = register_module("layer", ModuleList());
    for (int i = 0; i < n; ++i) layer->push_back(Layer());
  }
  ModuleList layer{nullptr};
};
KILN_MODULE(Encoder);

struct ModelImpl : Module {
  ModelImpl() {
    scale = register_parameter("scale", kiln::ones({1}));
    encoder = register_module("encoder", Encoder(2));
    head = register_module("head", Sequential(Linear(2, 3), ReLU(), Linear(3, 1)));
    heads = register_module("heads", ModuleDict({{"cls", Linear(2, 2)}, {"reg", Linear(2, 1)}}));
  }
  Tensor scale;
  Encoder encoder{nullptr};
  Sequential head{nullptr};
  ModuleDict heads{nullptr};
};
KILN_MODULE(Model);

std::vector<std::string> layer_names(int i) {
  std::string p = "encoder.layer." + std::to_string(i) + ".";
  return {p + "attention.query.weight", p + "attention.query.bias", p + "attention.key.weight", p + "output.weight",
          p + "output.bias"};
}

std::vector<std::string> model_parameter_names() {
  std::vector<std::string> names = {"scale"};
  for (int i = 0; i < 2; ++i)
    for (auto& n : layer_names(i)) names.push_back(n);
  for (auto n : {"head.0.weight", "head.0.bias", "head.2.weight", "head.2.bias", "heads.cls.weight", "heads.cls.bias",
                 "heads.reg.weight", "heads.reg.bias"})
    names.push_back(n);
  return names;
}

// Tied weights and a module registered twice, as a decoder tied to embeddings.
struct TiedImpl : Module {
  TiedImpl() {
    a = register_module("a", Linear(2, 2));
    b = register_module("b", Linear(2, 2));
    c = register_module("c", a);
  }
  Linear a{nullptr}, b{nullptr}, c{nullptr};
};

}  // namespace

TEST(Module, NamedParametersAreDottedInRegistrationOrder) {
  Model model;
  EXPECT_EQ(model->named_parameters().keys(), model_parameter_names());
  EXPECT_EQ(model->parameters().size(), model_parameter_names().size());
  // Values are the registered tensors themselves.
  EXPECT_TRUE(model->named_parameters()["encoder.layer.1.output.weight"].is_same(
      model->encoder->layer->at<LayerImpl>(1).output->weight));
  // recurse = false: only the module's own.
  EXPECT_EQ(model->named_parameters(false).keys(), std::vector<std::string>{"scale"});
  EXPECT_EQ(model->encoder->layer->at<LayerImpl>(0).attention->named_parameters().keys(),
            (std::vector<std::string>{"query.weight", "query.bias", "key.weight"}));
}

TEST(Module, BuffersChildrenAndModules) {
  Model model;
  EXPECT_EQ(model->named_buffers().keys(),
            (std::vector<std::string>{"encoder.layer.0.position_ids", "encoder.layer.1.position_ids"}));
  EXPECT_EQ(model->buffers().size(), 2u);
  EXPECT_EQ(model->named_children().keys(), (std::vector<std::string>{"encoder", "head", "heads"}));
  EXPECT_EQ(model->children().size(), 3u);
  EXPECT_EQ(model->head->named_children().keys(), (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_EQ(model->heads->named_children().keys(), (std::vector<std::string>{"cls", "reg"}));
  const std::vector<std::string> expected = {"",
                                             "encoder",
                                             "encoder.layer",
                                             "encoder.layer.0",
                                             "encoder.layer.0.attention",
                                             "encoder.layer.0.attention.query",
                                             "encoder.layer.0.attention.key",
                                             "encoder.layer.0.output",
                                             "encoder.layer.1",
                                             "encoder.layer.1.attention",
                                             "encoder.layer.1.attention.query",
                                             "encoder.layer.1.attention.key",
                                             "encoder.layer.1.output",
                                             "head",
                                             "head.0",
                                             "head.1",
                                             "head.2",
                                             "heads",
                                             "heads.cls",
                                             "heads.reg"};
  EXPECT_EQ(model->named_modules().keys(), expected);
  EXPECT_TRUE(model->named_modules()[""].get() == model.get());
  EXPECT_EQ(model->modules(false).size(), expected.size() - 1);
  EXPECT_EQ(model->named_modules("model").keys()[1], "model.encoder");
  // A module not owned by a shared_ptr cannot list itself.
  LinearImpl local(2, 2);
  EXPECT_KILN_ERROR(local.named_modules(), "shared_ptr");
  EXPECT_EQ(local.modules(false).size(), 0u);
}

TEST(Module, SharedModulesAreListedOnce) {
  auto tied = std::make_shared<TiedImpl>();
  // c is a: its parameters and itself appear once, under the first name.
  EXPECT_EQ(tied->named_parameters().keys(),
            (std::vector<std::string>{"a.weight", "a.bias", "b.weight", "b.bias"}));
  EXPECT_EQ(tied->named_modules().keys(), (std::vector<std::string>{"", "a", "b"}));
  EXPECT_EQ(tied->named_children().keys(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(tied->num_parameters(), 2 * (4 + 2));
  // state_dict saves the shared module under both names.
  EXPECT_EQ(tied->state_dict().keys(),
            (std::vector<std::string>{"a.weight", "a.bias", "b.weight", "b.bias", "c.weight", "c.bias"}));
  // apply and train reach it through every name (as PyTorch).
  int visits = 0;
  tied->apply([&](Module& m) { visits += m.as<Linear>() == tied->a.get(); });
  EXPECT_EQ(visits, 2);
}

TEST(Module, TiedParametersCountOnce) {
  struct DecoderImpl : Module {
    DecoderImpl() {
      embed = register_module("embed", Embedding(10, 4));
      weight = register_parameter("weight", embed->weight);  // the same leaf, a second name
    }
    Embedding embed{nullptr};
    Tensor weight;
  };
  auto m = std::make_shared<DecoderImpl>();
  EXPECT_TRUE(m->weight.is_same(m->embed->weight));
  EXPECT_EQ(m->named_parameters().keys(), std::vector<std::string>{"weight"});
  EXPECT_EQ(m->num_parameters(), 40);
  // state_dict saves every name.
  EXPECT_EQ(m->state_dict().keys(), (std::vector<std::string>{"weight", "embed.weight"}));
}

TEST(Module, OptionalParametersAreAbsent) {
  Linear fc(LinearOptions(3, 2).bias(false));
  EXPECT_FALSE(fc->bias.defined());
  EXPECT_EQ(fc->named_parameters().keys(), std::vector<std::string>{"weight"});
  EXPECT_EQ(fc->state_dict().keys(), std::vector<std::string>{"weight"});
  // The name is taken all the same.
  EXPECT_KILN_ERROR(fc->register_parameter("bias", kiln::zeros({2})), "already used by a parameter");
}

TEST(Module, RegistrationRulesAndIdentity) {
  Module m;
  Tensor w = kiln::randn({2, 2});
  Tensor& registered = m.register_parameter("w", w);
  // A leaf keeps its identity and gets requires_grad.
  EXPECT_TRUE(registered.is_same(w));
  EXPECT_TRUE(w.requires_grad());
  EXPECT_TRUE(w.is_leaf());
  // A tensor with history is detached (as nn.Parameter), sharing memory.
  Tensor x = kiln::ones({2}, kiln::requires_grad());
  Tensor y = x * 2.0;
  Tensor p = m.register_parameter("p", y);
  EXPECT_FALSE(p.is_same(y));
  EXPECT_TRUE(p.is_leaf());
  EXPECT_TRUE(p.requires_grad());
  EXPECT_EQ(p.data_ptr(), y.data_ptr());
  // requires_grad = false is honoured.
  Tensor frozen = m.register_parameter("frozen", kiln::zeros({3}), false);
  EXPECT_FALSE(frozen.requires_grad());
  EXPECT_EQ(m.num_parameters(), 4 + 2 + 3);
  EXPECT_EQ(m.num_parameters(/*trainable_only=*/true), 4 + 2);

  EXPECT_KILN_ERROR(m.register_parameter("", kiln::zeros({1})), "must not be empty");
  EXPECT_KILN_ERROR(m.register_parameter("a.b", kiln::zeros({1})), "must not contain a dot");
  EXPECT_KILN_ERROR(m.register_buffer("w", kiln::zeros({1})), "already used by a parameter");
  EXPECT_KILN_ERROR(m.register_parameter("ids", kiln::zeros({1}, kInt64)), "only floating-point");
  m.register_buffer("ids", kiln::zeros({1}, kInt64));
  EXPECT_KILN_ERROR(m.register_module("ids", Linear(1, 1)), "already used by a buffer");
  m.register_module("fc", Linear(1, 1));
  EXPECT_KILN_ERROR(m.register_parameter("fc", kiln::zeros({1})), "already used by a submodule");
  EXPECT_KILN_ERROR(m.register_module("empty", Linear(nullptr)), "empty ModuleHolder");
  EXPECT_KILN_ERROR(m.register_module("null", std::shared_ptr<LinearImpl>()), "is null");
}

TEST(Module, ReplaceAndUnregisterModule) {
  Model model;
  auto old_head = model->heads->ptr("cls");
  Linear fresh(2, 5);
  model->heads->insert("cls", fresh);  // replaces, keeping the position
  EXPECT_EQ(model->heads->keys(), (std::vector<std::string>{"cls", "reg"}));
  EXPECT_TRUE(model->get_submodule("heads.cls").get() == fresh.get());
  EXPECT_EQ(model->named_parameters()["heads.cls.weight"].sizes(), IntArrayRef({5, 2}));

  auto id = model->replace_module("head", Identity());
  EXPECT_TRUE(model->get_submodule("head").get() == id.get());
  EXPECT_KILN_ERROR(model->replace_module("nope", Identity()), "no submodule named 'nope'");
  model->unregister_module("head");
  EXPECT_EQ(model->named_children().keys(), (std::vector<std::string>{"encoder", "heads"}));
  EXPECT_KILN_ERROR(model->unregister_module("head"), "no submodule named 'head'");
  EXPECT_TRUE(old_head != nullptr);
}

TEST(Module, GetSubmoduleParameterBuffer) {
  Model model;
  auto q = model->get_submodule("encoder.layer.1.attention.query");
  EXPECT_TRUE(q.get() == model->encoder->layer->at<LayerImpl>(1).attention->query.get());
  EXPECT_TRUE(model->get_submodule("").get() == model.get());
  EXPECT_TRUE(model->get_parameter("encoder.layer.1.attention.query.weight").is_same(q->as<Linear>()->weight));
  EXPECT_TRUE(model->get_parameter("scale").is_same(model->scale));
  EXPECT_EQ(model->get_buffer("encoder.layer.0.position_ids").dtype(), kInt64);
  EXPECT_KILN_ERROR(model->get_submodule("encoder.layer.7"), "no submodule '7'");
  EXPECT_KILN_ERROR(model->get_parameter("encoder.layer.0.attention.key.bias"), "no parameter 'bias'");
  EXPECT_KILN_ERROR(model->get_buffer("scale"), "no buffer 'scale'");
}

TEST(Module, TrainEvalPropagates) {
  Model model;
  for (auto& m : model->modules()) EXPECT_TRUE(m->is_training());
  model->eval();
  for (auto& m : model->modules()) EXPECT_FALSE(m->is_training()) << m->name();
  model->encoder->train();
  EXPECT_FALSE(model->is_training());
  EXPECT_TRUE(model->encoder->layer->at<LayerImpl>(1).attention->query->is_training());
  EXPECT_FALSE(model->head->is_training());
  model->train(true);
  for (auto& m : model->modules()) EXPECT_TRUE(m->is_training());
}

TEST(Module, ToDtypeKeepsIdentityLeavesAndGrads) {
  Model model;
  LayerImpl& layer = model->encoder->layer->at<LayerImpl>(0);
  Tensor w = layer.output->weight;  // a handle held outside the module
  const auto before = values(w);
  // A gradient to convert along.
  kiln::sum(layer.output(kiln::ones({1, 4}))).backward();
  ASSERT_TRUE(w.grad().defined());
  const auto grad_before = values(w.grad());
  const TensorImpl* impl = w.impl();

  model->to(kFloat64);
  for (const auto& item : model->named_parameters()) {
    EXPECT_EQ(item.value.dtype(), kFloat64) << item.key;
    EXPECT_TRUE(item.value.is_leaf()) << item.key;
    EXPECT_TRUE(item.value.requires_grad()) << item.key;
  }
  EXPECT_EQ(w.impl(), impl);
  EXPECT_EQ(w.dtype(), kFloat64);
  EXPECT_EQ(layer.output->weight.dtype(), kFloat64);
  EXPECT_EQ(values(w), before);  // f32 -> f64 is exact
  EXPECT_EQ(w.grad().dtype(), kFloat64);
  EXPECT_EQ(values(w.grad()), grad_before);
  // Integer buffers keep their dtype; the model runs in f64.
  EXPECT_EQ(model->get_buffer("encoder.layer.0.position_ids").dtype(), kInt64);
  EXPECT_EQ(layer.output(kiln::ones({1, 4}, kFloat64)).dtype(), kFloat64);
  // Training continues: gradients accumulate in the new dtype.
  kiln::sum(layer.output(kiln::ones({1, 4}, kFloat64))).backward();
  EXPECT_EQ(w.grad().dtype(), kFloat64);
  std::vector<double> doubled = grad_before;
  for (double& g : doubled) g *= 2;
  EXPECT_EQ(values(w.grad()), doubled);

  // Back down, and to a device (the CPU: a no-op that must keep everything).
  model->to(kFloat32);
  EXPECT_EQ(w.dtype(), kFloat32);
  model->to(Device(kCPU));
  model->to(kCPU);  // a bare DeviceType, as libtorch's model->to(torch::kCPU)
  EXPECT_EQ(w.to(kCPU).impl(), w.impl());  // Tensor::to(DeviceType) too: the same tensor
  model->to(Device(kCPU), kFloat16);
  EXPECT_EQ(w.dtype(), kFloat16);
  EXPECT_EQ(w.impl(), impl);
  EXPECT_KILN_ERROR(model->to(kInt32), "only floating-point dtypes");
}

TEST(Module, ToMovesNonPersistentBuffersToo) {
  Module m;
  Tensor cache = m.register_buffer("cache", kiln::zeros({3}), /*persistent=*/false);
  m.register_buffer("stat", kiln::ones({3}));
  m.to(kFloat64);
  EXPECT_EQ(cache.dtype(), kFloat64);
  EXPECT_EQ(m.get_buffer("stat").dtype(), kFloat64);
  EXPECT_EQ(m.named_buffers().keys(), (std::vector<std::string>{"cache", "stat"}));
  EXPECT_EQ(m.state_dict().keys(), std::vector<std::string>{"stat"});
}

TEST(Module, ZeroGradBothModes) {
  Linear fc(3, 2);
  auto run = [&] { kiln::sum(fc(kiln::ones({4, 3}))).backward(); };
  run();
  ASSERT_TRUE(fc->weight.grad().defined());
  fc->zero_grad();  // set_to_none
  EXPECT_FALSE(fc->weight.grad().defined());
  EXPECT_FALSE(fc->bias.grad().defined());

  run();
  Tensor g = fc->weight.grad();
  fc->zero_grad(/*set_to_none=*/false);
  ASSERT_TRUE(fc->weight.grad().defined());
  EXPECT_TRUE(fc->weight.grad().is_same(g));  // zeroed in place
  EXPECT_EQ(values(fc->weight.grad()), std::vector<double>(6, 0.0));
  EXPECT_EQ(values(fc->bias.grad()), std::vector<double>(2, 0.0));
  // Accumulation restarts from zero: the bias gradient is the batch size.
  run();
  EXPECT_EQ(values(fc->bias.grad()), std::vector<double>(2, 4.0));
  // Parameters without a gradient are fine in both modes.
  Linear unused(2, 2);
  unused->zero_grad(false);
  unused->zero_grad(true);
  EXPECT_FALSE(unused->weight.grad().defined());
}

TEST(Module, ZeroGradDetachesGradientsWithHistory) {
  Linear fc(2, 1);
  Tensor x = kiln::ones({1, 2});
  Tensor loss = kiln::sum(kiln::square(fc(x)));
  loss.backward(Tensor(), true, /*create_graph=*/true);
  ASSERT_TRUE(fc->weight.grad().requires_grad());
  fc->zero_grad(false);
  EXPECT_FALSE(fc->weight.grad().requires_grad());
  EXPECT_EQ(values(fc->weight.grad()), std::vector<double>(2, 0.0));
}

TEST(Module, ApplyVisitsChildrenBeforeParents) {
  Sequential seq(Linear(2, 2), Sequential(ReLU(), Tanh()), Identity());
  std::vector<std::string> order;
  seq->apply([&](Module& m) { order.push_back(m.name()); });
  EXPECT_EQ(order, (std::vector<std::string>{"Linear", "ReLU", "Tanh", "Sequential", "Identity", "Sequential"}));
  std::vector<std::string> names;
  seq->apply([&](const std::string& name, Module&) { names.push_back(name); }, "net");
  EXPECT_EQ(names, (std::vector<std::string>{"net.0", "net.1.0", "net.1.1", "net.1", "net.2", "net"}));
  // The usual use: initialise every Linear.
  seq->apply([](Module& m) {
    if (auto* fc = m.as<Linear>()) init::constant_(fc->weight, 0.5);
  });
  EXPECT_EQ(values(seq->at<LinearImpl>(0).weight), std::vector<double>(4, 0.5));
}

TEST(Module, NumParameters) {
  Model model;
  // scale 1; per layer: query 20, key 16, output 10; head 9 + 4; heads 6 + 3.
  const int64_t expected = 1 + 2 * (20 + 16 + 10) + (6 + 3 + 3 + 1) + (6 + 3);
  EXPECT_EQ(model->num_parameters(), expected);
  model->heads->at<LinearImpl>("cls").weight.requires_grad_(false);
  EXPECT_EQ(model->num_parameters(true), expected - 4);
  EXPECT_EQ(model->num_parameters(false), expected);
}

TEST(ModuleHolder, PointerSemanticsAndForward) {
  Linear a(3, 2);
  Linear b = a;  // copies share the module
  EXPECT_TRUE(a.get() == b.get());
  EXPECT_TRUE(a.ptr() == b.ptr());
  EXPECT_TRUE(&*a == a.get());
  EXPECT_TRUE(static_cast<bool>(a));
  EXPECT_EQ(a->options.in_features(), 3);
  EXPECT_EQ((*a).options.out_features(), 2);
  Tensor x = kiln::ones({1, 3});
  EXPECT_EQ(values(a(x)), values(a->forward(x)));

  Linear empty(nullptr);
  EXPECT_TRUE(empty.is_empty());
  EXPECT_FALSE(static_cast<bool>(empty));
  EXPECT_KILN_ERROR(empty.get(), "empty ModuleHolder");
  EXPECT_KILN_ERROR(empty.ptr(), "empty ModuleHolder");
  EXPECT_KILN_ERROR(*empty, "empty ModuleHolder");
  Linear assigned = nullptr;
  assigned = Linear(std::make_shared<LinearImpl>(2, 2));
  EXPECT_EQ(assigned->options.in_features(), 2);

  // A default-constructible Impl is built by the holder's default constructor.
  ReLU relu;
  EXPECT_FALSE(relu.is_empty());
  Model model;
  EXPECT_EQ(model->name(), "Model");
  EXPECT_EQ(model->encoder->name(), "Encoder");
  // as<> names the Impl or the holder type.
  std::shared_ptr<Module> base = a.ptr();
  EXPECT_TRUE(base->as<Linear>() == a.get());
  EXPECT_TRUE(base->as<LinearImpl>() == a.get());
  EXPECT_TRUE(base->as<Conv2d>() == nullptr);
}

TEST(ModuleHolder, ForwardsAnyArguments) {
  struct ScaleImpl : Module {
    explicit ScaleImpl(double s) : s(s) {}
    Tensor forward(const Tensor& x, double extra = 1.0) { return x * (s * extra); }
    double s;
  };
  struct Scale : ModuleHolder<ScaleImpl> {
    using ModuleHolder<ScaleImpl>::ModuleHolder;
  };
  Scale scale(2.0);
  Tensor x = make({2}, {1.0, 3.0});
  EXPECT_EQ(values(scale(x)), (std::vector<double>{2.0, 6.0}));
  EXPECT_EQ(values(scale(x, 10.0)), (std::vector<double>{20.0, 60.0}));
  // A class local to a function prints without the function's scope.
  EXPECT_EQ(scale->name(), "Scale");
}
