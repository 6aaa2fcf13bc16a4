// The backward engine: graph traversal, accumulation, hooks, retain_graph,
// grad(), grad mode, and the errors torch raises in the same situations.
#include <kiln/kiln.h>

#include <cmath>
#include <sstream>
#include <thread>

#include "autograd/gradcheck_util.h"

using namespace kiln;
using kiln::testing::leaf;
using kiln::testing::make;
using kiln::testing::values;

namespace {
std::string repr(const Tensor& t) {
  std::ostringstream os;
  os << t;
  return os.str();
}
}  // namespace

TEST(Engine, ProductRuleMatchesClosedForm) {
  Tensor x = leaf({3}, {1, 2, 3});
  Tensor y = leaf({3}, {4, 5, 6});
  Tensor z = x * y;
  z.backward(make({3}, {1, 1, 1}));
  EXPECT_EQ(values(x.grad()), (std::vector<double>{4, 5, 6}));
  EXPECT_EQ(values(y.grad()), (std::vector<double>{1, 2, 3}));
}

TEST(Engine, ScalarBackwardNeedsNoGradient) {
  Tensor x = leaf({2, 2}, {1, 2, 3, 4});
  Tensor loss = (x * x).sum();
  loss.backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{2, 4, 6, 8}));
}

TEST(Engine, DiamondSumsBothPaths) {
  // d = sum(exp(2x) + 3 * 2x): dd/dx = 2 exp(2x) + 6.
  Tensor x = leaf({3}, {0.1, -0.5, 0.7});
  Tensor a = x * 2.0;
  Tensor b = a.exp();
  Tensor c = a * 3.0;
  (b + c).sum().backward();
  std::vector<double> g = values(x.grad());
  const double xs[] = {0.1, -0.5, 0.7};
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(g[i], 2 * std::exp(2 * xs[i]) + 6, 1e-12);
}

TEST(Engine, LeafUsedTwiceGetsTheSum) {
  Tensor x = leaf({2}, {3, -1});
  int calls = 0;
  x.register_hook([&](const Tensor& g) {
    ++calls;
    return Tensor();
  });
  (x * x + x).sum().backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{7, -1}));
  EXPECT_EQ(calls, 1);  // the hook sees the summed gradient once
}

TEST(Engine, GradientsAccumulateAcrossCalls) {
  Tensor x = leaf({2}, {1, 2});
  (x * 3.0).sum().backward();
  (x * x).sum().backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{3 + 2, 3 + 4}));
  x.set_grad(Tensor());
  EXPECT_FALSE(x.grad().defined());
  (x * 3.0).sum().backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{3, 3}));
}

TEST(Engine, LeafGradDoesNotAliasTheIncomingGradient) {
  Tensor x = leaf({3}, {1, 2, 3});
  Tensor g = make({3}, {1, 1, 1});
  x.backward(g);
  native::fill_(g, 5.0);
  EXPECT_EQ(values(x.grad()), (std::vector<double>{1, 1, 1}));
  EXPECT_NE(x.grad().storage(), g.storage());
}

TEST(Engine, SecondBackwardThroughFreedGraphFails) {
  Tensor x = leaf({2}, {1, 2});
  Tensor loss = (x * x).sum();
  loss.backward();
  EXPECT_KILN_ERROR(loss.backward(), "Trying to backward through the graph a second time");
}

TEST(Engine, RetainGraphAllowsASecondBackward) {
  Tensor x = leaf({2}, {1, 2});
  Tensor loss = (x.exp() * x).sum();
  loss.backward(Tensor(), /*retain_graph=*/true);
  loss.backward();
  const double e1 = std::exp(1.0), e2 = std::exp(2.0);
  // d/dx x e^x = (1 + x) e^x, twice.
  EXPECT_TRUE(kiln::testing::all_close(x.grad(), make({2}, {2 * 2 * e1, 2 * 3 * e2}), 1e-12));
}

TEST(Engine, GraphWithoutSavedTensorsCanBeReplayed) {
  Tensor x = leaf({2}, {1, 2});
  Tensor y = (x + 1.0).sum();
  y.backward();
  y.backward();  // add saves nothing, as in torch
  EXPECT_EQ(values(x.grad()), (std::vector<double>{2, 2}));
}

TEST(Engine, HookReplacesGradient) {
  Tensor x = leaf({2}, {1, 2});
  Tensor y = x * 2.0;
  y.register_hook([](const Tensor& g) { return g * 10.0; });
  y.sum().backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{20, 20}));
}

TEST(Engine, LeafHookReplacesWhatIsAccumulated) {
  Tensor x = leaf({2}, {1, 2});
  unsigned h = x.register_hook([](const Tensor& g) { return g + 1.0; });
  x.sum().backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{2, 2}));
  x.remove_hook(h);
  x.sum().backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{3, 3}));
  EXPECT_KILN_ERROR(x.remove_hook(h), "remove_hook");
}

TEST(Engine, HooksRunInRegistrationOrder) {
  Tensor x = leaf({1}, {1});
  Tensor y = x * 1.0;
  y.register_hook([](const Tensor& g) { return g + 1.0; });  // 1 -> 2
  y.register_hook([](const Tensor& g) { return g * 3.0; });  // 2 -> 6
  y.sum().backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{6}));
}

TEST(Engine, HookReturningWrongShapeIsAnError) {
  Tensor x = leaf({2}, {1, 2});
  Tensor y = x * 1.0;
  y.register_hook([](const Tensor& g) { return kiln::zeros({3}, kFloat64); });
  EXPECT_KILN_ERROR(y.sum().backward(), "hook");
}

TEST(Engine, RetainGradKeepsNonLeafGradient) {
  Tensor x = leaf({2}, {1, 2});
  Tensor y = x * 3.0;
  EXPECT_FALSE(y.retains_grad());
  y.retain_grad();
  EXPECT_TRUE(y.retains_grad());
  y.register_hook([](const Tensor& g) { return g * 2.0; });
  (y * y).sum().backward();
  // dL/dy = 2y = (6, 12), doubled by the hook before it is retained.
  EXPECT_EQ(values(y.grad()), (std::vector<double>{12, 24}));
  EXPECT_EQ(values(x.grad()), (std::vector<double>{36, 72}));
  Tensor z = x * 1.0;
  (z * 2.0).sum().backward();
  EXPECT_FALSE(z.grad().defined());  // not retained
}

TEST(Engine, PostAccumulateHooksRunOnceAfterAccumulation) {
  Tensor w1 = leaf({2}, {1, 2});
  Tensor w2 = leaf({2}, {3, 4});
  std::vector<std::string> order;
  std::vector<std::vector<double>> w1_grads;
  w1.register_post_accumulate_grad_hook([&](const Tensor& p) {
    order.push_back("w1");
    w1_grads.push_back(values(p.grad()));  // already accumulated when the hook runs
  });
  w2.register_post_accumulate_grad_hook([&](const Tensor& p) { order.push_back("w2"); });
  w2.register_post_accumulate_grad_hook([&](const Tensor& p) { order.push_back("w2b"); });
  // w1 is used first and twice; w2 last: w2's gradient is ready first.
  Tensor h = w1 * 2.0;
  Tensor out = (h * w2).sum() + (w1 * 0.0).sum();
  out.backward();
  EXPECT_EQ(order, (std::vector<std::string>{"w2", "w2b", "w1"}));
  out = (w1 * w2).sum();
  out.backward();
  EXPECT_EQ(order.size(), 6u);
  ASSERT_EQ(w1_grads.size(), 2u);
  EXPECT_EQ(w1_grads[0], (std::vector<double>{3 * 2, 4 * 2}));
  EXPECT_EQ(w1_grads[1], (std::vector<double>{6 + 3, 8 + 4}));
  EXPECT_KILN_ERROR((w1 * 2.0).register_post_accumulate_grad_hook([](const Tensor&) {}), "non-leaf");
}

TEST(Engine, NoGradGuardRecordsNothing) {
  Tensor x = leaf({2}, {1, 2});
  {
    NoGradGuard no_grad;
    EXPECT_FALSE(GradMode::is_enabled());
    Tensor y = x * 2.0;
    EXPECT_FALSE(y.requires_grad());
    EXPECT_EQ(y.grad_fn(), nullptr);
    {
      EnableGradGuard enable;
      EXPECT_TRUE((x * 2.0).requires_grad());
    }
    EXPECT_FALSE((x * 2.0).requires_grad());
  }
  EXPECT_TRUE(GradMode::is_enabled());
  EXPECT_TRUE((x * 2.0).requires_grad());
}

TEST(Engine, GradModeIsPerThread) {
  NoGradGuard no_grad;
  bool other_thread_enabled = false;
  std::thread t([&] { other_thread_enabled = GradMode::is_enabled(); });
  t.join();
  EXPECT_TRUE(other_thread_enabled);
  EXPECT_FALSE(GradMode::is_enabled());
}

TEST(Engine, DetachSharesMemoryButNotHistory) {
  Tensor x = leaf({2}, {1, 2});
  Tensor y = x * 2.0;
  Tensor d = y.detach();
  EXPECT_FALSE(d.requires_grad());
  EXPECT_TRUE(d.is_leaf());
  EXPECT_EQ(d.storage(), y.storage());
  const uint32_t v = y._version();
  native::fill_(d, 0.0);
  EXPECT_EQ(y._version(), v + 1);  // one version counter per storage
  EXPECT_EQ(values(y), (std::vector<double>{0, 0}));
  Tensor e = x * 2.0;
  e.detach_();
  EXPECT_FALSE(e.requires_grad());
  EXPECT_TRUE(e.is_leaf());
}

TEST(Engine, LeavesAndGradFnNames) {
  Tensor x = leaf({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor c = make({2, 3}, {1, 1, 1, 1, 1, 1});
  EXPECT_TRUE(x.is_leaf());
  EXPECT_TRUE(c.is_leaf());
  EXPECT_FALSE(c.requires_grad());
  EXPECT_EQ(x.grad_fn(), nullptr);
  EXPECT_EQ((x * c).grad_fn()->name(), "MulBackward0");
  EXPECT_EQ((x + c).grad_fn()->name(), "AddBackward0");
  EXPECT_EQ((x - 1.0).grad_fn()->name(), "SubBackward0");
  EXPECT_EQ((1.0 - x).grad_fn()->name(), "RsubBackward1");
  EXPECT_EQ((x / 2.0).grad_fn()->name(), "DivBackward0");
  EXPECT_EQ((-x).grad_fn()->name(), "NegBackward0");
  EXPECT_EQ(x.exp().grad_fn()->name(), "ExpBackward0");
  EXPECT_EQ(x.pow(2).grad_fn()->name(), "PowBackward0");
  EXPECT_EQ(x.square().grad_fn()->name(), "PowBackward0");
  EXPECT_EQ(x.view({3, 2}).grad_fn()->name(), "ViewBackward0");
  EXPECT_EQ(x.t().grad_fn()->name(), "TBackward0");
  EXPECT_EQ(x.transpose(0, 1).grad_fn()->name(), "TransposeBackward0");
  EXPECT_EQ(x.permute({1, 0}).grad_fn()->name(), "PermuteBackward0");
  EXPECT_EQ(x[0].grad_fn()->name(), "SelectBackward0");
  EXPECT_EQ(x.slice(1, 1).grad_fn()->name(), "SliceBackward0");
  EXPECT_EQ(x.narrow(1, 0, 2).grad_fn()->name(), "SliceBackward0");
  EXPECT_EQ(x.unsqueeze(0).grad_fn()->name(), "UnsqueezeBackward0");
  EXPECT_EQ(x.expand({4, 2, 3}).grad_fn()->name(), "ExpandBackward0");
  EXPECT_EQ(x.t().contiguous().grad_fn()->name(), "CloneBackward0");
  EXPECT_EQ(x.to(kFloat32).grad_fn()->name(), "ToCopyBackward0");
  EXPECT_EQ(x.sum().grad_fn()->name(), "SumBackward0");
  EXPECT_EQ(x.sum({1}).grad_fn()->name(), "SumBackward1");
  EXPECT_EQ(x.relu().grad_fn()->name(), "ReluBackward0");
  // The next edges lead back to the inputs' nodes.
  Tensor y = x.exp() * c;
  ASSERT_EQ(y.grad_fn()->next_edges().size(), 2u);
  EXPECT_EQ(y.grad_fn()->next_edge(0).function->name(), "ExpBackward0");
  EXPECT_FALSE(y.grad_fn()->next_edge(1).is_valid());  // c does not require grad
  EXPECT_EQ(y.grad_fn()->next_edge(0).function->next_edge(0).function->name(), "AccumulateGrad");
}

TEST(Engine, ReprShowsRequiresGradOrGradFn) {
  Tensor x = leaf({2}, {1, 2});
  EXPECT_NE(repr(x).find(", requires_grad=True)"), std::string::npos) << repr(x);
  EXPECT_NE(repr(x * 2.0).find(", grad_fn=<MulBackward0>)"), std::string::npos) << repr(x * 2.0);
  EXPECT_EQ(repr(make({2}, {1, 2})).find("grad"), std::string::npos);
}

TEST(Engine, IntegerAndBoolResultsNeverRequireGrad) {
  Tensor x = leaf({3}, {-1, 0, 2});
  EXPECT_FALSE((x > 0.0).requires_grad());
  EXPECT_FALSE(x.eq(x).requires_grad());
  EXPECT_FALSE(x.to(kInt64).requires_grad());
  EXPECT_FALSE(x.sign().to(kInt32).requires_grad());
  EXPECT_TRUE(x.sign().requires_grad());  // float sign is differentiable (zero gradient)
}

TEST(Engine, ErrorsMatchTorch) {
  Tensor x = leaf({3}, {1, 2, 3});
  EXPECT_KILN_ERROR((x * 2.0).backward(), "grad can be implicitly created only for scalar outputs");
  EXPECT_KILN_ERROR(make({1}, {1}).backward(), "element 0 of tensors does not require grad and does not have a grad_fn");
  Tensor i = native::arange(3);
  EXPECT_KILN_ERROR(i.requires_grad_(), "only Tensors of floating point dtype can require gradients");
  EXPECT_KILN_ERROR((x * 2.0).requires_grad_(false), "you can only change requires_grad flags of leaf variables");
  EXPECT_KILN_ERROR((x * 2.0).backward(make({2}, {1, 1})), "Mismatch in shape");
  EXPECT_KILN_ERROR(x.add_(1.0), "a leaf Variable that requires grad is being used in an in-place operation");
  EXPECT_KILN_ERROR(x[0].mul_(2.0), "a view of a leaf Variable that requires grad is being used in an in-place operation");
  Tensor y = x * 2.0;
  Tensor v = y.view({3, 1});
  EXPECT_KILN_ERROR(v.add_(1.0), "in-place operation on a view");
  EXPECT_KILN_ERROR(make({1}, {1}).retain_grad(), "requires_grad=False");
  EXPECT_KILN_ERROR(make({1}, {1}).register_hook([](const Tensor& g) { return g; }), "doesn't require gradient");
}

TEST(Engine, InPlaceOnLeafIsFineWithoutGrad) {
  Tensor x = leaf({2}, {1, 2});
  {
    NoGradGuard no_grad;
    x.mul_(2.0);      // what an optimizer step does
    x[0].add_(1.0);   // views too
  }
  EXPECT_EQ(values(x), (std::vector<double>{3, 4}));
  EXPECT_TRUE(x.is_leaf());
  EXPECT_TRUE(x.requires_grad());
}

TEST(Engine, ModifiedSavedTensorIsDetected) {
  Tensor x = leaf({3}, {1, 2, 3});
  Tensor a = x * 1.0;            // version 0
  Tensor b = a * a;              // saves a at version 0
  a.add_(1.0);                   // version 1
  EXPECT_EQ(a._version(), 1u);
  EXPECT_KILN_ERROR(b.sum().backward(), "one of the variables needed for gradient computation has been modified by an "
                                        "inplace operation: [float64 [3]] is at version 1; expected version 0");
  // A saved output is checked too.
  Tensor c = x * 1.0;
  Tensor e = c.exp();            // saves its result
  e.mul_(2.0);
  EXPECT_KILN_ERROR(e.sum().backward(), "is at version 1; expected version 0");
}

TEST(Engine, VersionCounterCountsInPlaceWrites) {
  Tensor t = make({3}, {1, 2, 3});
  EXPECT_EQ(t._version(), 0u);
  t.add_(1.0);
  t.mul_(2.0);
  EXPECT_EQ(t._version(), 2u);
  Tensor v = t.view({3});
  v.zero_();
  EXPECT_EQ(t._version(), 3u);  // views share the counter
}

TEST(Engine, InPlaceOnNonLeafRebasesHistory) {
  Tensor x = leaf({3}, {1, -2, 3});
  Tensor y = x * 2.0;
  y.add_(1.0);
  EXPECT_EQ(y.grad_fn()->name(), "AddBackward0");
  y.mul_(3.0);
  EXPECT_EQ(y.grad_fn()->name(), "MulBackward0");
  y.relu_();
  EXPECT_EQ(y.grad_fn()->name(), "ReluBackward0");
  y.sum().backward();
  // y = 3 relu(2x + 1): 6 where 2x + 1 > 0.
  EXPECT_EQ(values(x.grad()), (std::vector<double>{6, 0, 6}));
}

TEST(Engine, InPlaceWithDifferentiableOperand) {
  Tensor x = leaf({2}, {1, 2});
  Tensor w = leaf({2}, {3, 5});
  Tensor buf = make({2}, {10, 20});  // a plain tensor becomes a non-leaf
  buf.mul_(w);
  EXPECT_FALSE(buf.is_leaf());
  buf.add_(x, 2.0);
  buf.sum().backward();
  EXPECT_EQ(values(w.grad()), (std::vector<double>{10, 20}));
  EXPECT_EQ(values(x.grad()), (std::vector<double>{2, 2}));
  // mul_ with a differentiable operand reads self's value from before the write.
  Tensor a = x * 1.0;
  a.mul_(w);
  w.set_grad(Tensor());
  a.sum().backward();
  EXPECT_EQ(values(w.grad()), (std::vector<double>{1, 2}));
}

TEST(Engine, ViewUsedAfterBaseWasRebasedIsAnError) {
  Tensor x = leaf({2, 2}, {1, 2, 3, 4});
  Tensor y = x * 1.0;
  Tensor row = y[0];
  y.mul_(2.0);
  EXPECT_KILN_ERROR(row * 2.0, "modified by an in-place operation");
}

TEST(Engine, GradReturnsWithoutAccumulating) {
  Tensor x = leaf({2}, {1, 2});
  Tensor y = leaf({2}, {3, 4});
  Tensor z = (x * y).sum();
  autograd::variable_list g = autograd::grad({z}, {x});
  EXPECT_EQ(values(g[0]), (std::vector<double>{3, 4}));
  EXPECT_FALSE(x.grad().defined());
  EXPECT_FALSE(y.grad().defined());
  // Only the needed part of the graph runs: w's accumulator is untouched.
  Tensor w = leaf({2}, {1, 1});
  Tensor u = (x * w).sum() + (x * 2.0).sum();
  g = autograd::grad({u}, {x}, {}, true);
  EXPECT_EQ(values(g[0]), (std::vector<double>{3, 3}));
  EXPECT_FALSE(w.grad().defined());
  EXPECT_KILN_ERROR(autograd::grad({u}, {y}), "appears to not have been used in the graph");
  g = autograd::grad({(x * 2.0).sum()}, {x, y}, {}, std::nullopt, false, /*allow_unused=*/true);
  EXPECT_FALSE(g[1].defined());
  EXPECT_KILN_ERROR(autograd::grad({z}, {make({1}, {1})}), "does not require grad");
}

TEST(Engine, GradOfNonLeafInput) {
  Tensor x = leaf({2}, {1, 2});
  Tensor h = x * 3.0;
  Tensor out = (h * h).sum();
  autograd::variable_list g = autograd::grad({out}, {h, x});
  EXPECT_EQ(values(g[0]), (std::vector<double>{6, 12}));   // 2h
  EXPECT_EQ(values(g[1]), (std::vector<double>{18, 36}));  // 2h * 3
}

TEST(Engine, CreateGraphGivesHigherDerivatives) {
  Tensor x = leaf({3}, {1, -2, 0.5});
  Tensor y = (x * x * x).sum();
  autograd::variable_list g = autograd::grad({y}, {x}, {}, std::nullopt, /*create_graph=*/true);
  EXPECT_TRUE(g[0].requires_grad());
  EXPECT_TRUE(kiln::testing::all_close(g[0], make({3}, {3, 12, 0.75}), 1e-12));
  autograd::variable_list gg = autograd::grad({g[0].sum()}, {x});
  EXPECT_TRUE(kiln::testing::all_close(gg[0], make({3}, {6, -12, 3}), 1e-12));
  // backward(create_graph) leaves a differentiable .grad().
  Tensor z = leaf({1}, {2});
  (z.exp() * z).sum().backward(Tensor(), std::nullopt, /*create_graph=*/true);
  EXPECT_TRUE(z.grad().requires_grad());
  Tensor dz = z.grad();
  z.set_grad(Tensor());
  dz.sum().backward();
  // d2/dz2 z e^z = (2 + z) e^z
  EXPECT_NEAR(values(z.grad())[0], 4 * std::exp(2.0), 1e-10);
}

TEST(Engine, MixedPrecisionGradientsKeepInputDtypes) {
  Tensor x = native::ones({2}, kFloat32).requires_grad_();
  Tensor y = leaf({2}, {2, 3});
  Tensor z = x * y;  // promoted to float64
  EXPECT_EQ(z.dtype(), kFloat64);
  z.sum().backward();
  EXPECT_EQ(x.grad().dtype(), kFloat32);
  EXPECT_EQ(values(x.grad()), (std::vector<double>{2, 3}));
  EXPECT_EQ(y.grad().dtype(), kFloat64);
}

TEST(Engine, NodeHooks) {
  Tensor x = leaf({2}, {1, 2});
  Tensor y = x * 2.0;
  int post_calls = 0;
  y.grad_fn()->add_pre_hook([](const autograd::variable_list& grads) {
    return autograd::variable_list{grads[0] * 0.5};
  });
  y.grad_fn()->add_post_hook([&](const autograd::variable_list& in, const autograd::variable_list& out) {
    ++post_calls;
    EXPECT_EQ(values(in[0]), (std::vector<double>{1, 1}));  // 0.5 * 2
    EXPECT_EQ(values(out[0]), (std::vector<double>{0.5, 0.5}));
  });
  y.sum().backward();
  EXPECT_EQ(post_calls, 1);
  EXPECT_EQ(values(x.grad()), (std::vector<double>{1, 1}));
}

TEST(Engine, LongChainsDoNotOverflowTheStack) {
  Tensor x = leaf({1}, {1});
  Tensor y = x;
  for (int i = 0; i < 20000; ++i) y = y * 1.0;
  y.sum().backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{1}));
  y = Tensor();  // frees the chain iteratively
}

TEST(Engine, BackwardFromSeveralRoots) {
  Tensor x = leaf({2}, {1, 2});
  Tensor a = x * 2.0;
  Tensor b = x * x;
  autograd::backward({a, b}, {make({2}, {1, 1}), make({2}, {1, 10})});
  EXPECT_EQ(values(x.grad()), (std::vector<double>{2 + 2, 2 + 40}));
}
