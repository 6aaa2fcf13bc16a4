// Sequential, ModuleList, ModuleDict: construction (positional and named),
// child names, forward chaining against the modules called one by one,
// indexing (negative from the end), typed access, extend/insert/pop, errors.
#include <kiln/kiln.h>

#include <string>
#include <vector>

#include "test_util.h"

using namespace kiln;
using namespace kiln::nn;
using kiln::testing::make;
using kiln::testing::sample;
using kiln::testing::values;

TEST(SequentialContainer, ForwardChainsModules) {
  Sequential seq(Linear(4, 8), ReLU(), Linear(8, 2), Tanh());
  EXPECT_EQ(seq->size(), 4u);
  EXPECT_EQ(seq->named_children().keys(), (std::vector<std::string>{"0", "1", "2", "3"}));
  EXPECT_EQ(seq->named_parameters().keys(),
            (std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"}));
  Tensor x = make({3, 4}, sample(12, -1, 1, 4), kFloat32);
  Tensor manual = kiln::tanh(seq->at<LinearImpl>(2).forward(kiln::relu(seq->at<LinearImpl>(0).forward(x))));
  EXPECT_EQ(values(seq(x)), values(manual));
  EXPECT_EQ(values(seq->forward(x)), values(manual));
}

TEST(SequentialContainer, NamedPushBackAndIndexing) {
  Sequential named({{"fc", Linear(2, 3)}, {"act", GELU()}});
  EXPECT_EQ(named->named_children().keys(), (std::vector<std::string>{"fc", "act"}));
  named->push_back("out", Linear(3, 1));
  named->push_back(Identity());  // next index: "3"
  EXPECT_EQ(named->named_children().keys(), (std::vector<std::string>{"fc", "act", "out", "3"}));
  EXPECT_TRUE(named[0].get() == named->ptr<LinearImpl>(0).get());
  EXPECT_TRUE(named[-1]->as<Identity>() != nullptr);
  EXPECT_EQ(named->at<LinearImpl>(-2).options.out_features(), 1);
  EXPECT_EQ(named(kiln::ones({5, 2})).sizes(), IntArrayRef({5, 1}));
  EXPECT_KILN_ERROR(named[4], "index 4 is out of range for 4 modules");
  EXPECT_KILN_ERROR(named[-5], "out of range");
  EXPECT_KILN_ERROR(named->at<Conv2dImpl>(0), "module 0 is a Linear, not the type requested");
  EXPECT_KILN_ERROR(named->push_back("fc", ReLU()), "already used by a submodule");
  // Iteration visits the modules in order.
  std::vector<std::string> kinds;
  for (const auto& m : *named) kinds.push_back(m->name());
  EXPECT_EQ(kinds, (std::vector<std::string>{"Linear", "GELU", "Linear", "Identity"}));
}

TEST(SequentialContainer, EmptyExtendAndNesting) {
  Sequential empty;
  EXPECT_TRUE(empty->is_empty());
  Tensor x = kiln::ones({2});
  EXPECT_TRUE(empty(x).is_same(x));  // as torch: the input unchanged
  Sequential a(Linear(2, 2), ReLU());
  Sequential b{Sigmoid()};
  a->extend(*b);
  a->extend(*a);  // extending with itself appends a snapshot
  EXPECT_EQ(a->size(), 6u);
  // "3".."5" name the same modules as "0".."2": listed once, saved twice.
  EXPECT_TRUE(a[0].get() == a[3].get());
  EXPECT_EQ(a->named_children().keys(), (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_EQ(a->state_dict().keys(), (std::vector<std::string>{"0.weight", "0.bias", "3.weight", "3.bias"}));
  Sequential outer(a, Sequential(Identity()));
  EXPECT_EQ(outer->named_parameters().keys(), (std::vector<std::string>{"0.0.weight", "0.0.bias"}));
  // shared_ptr arguments work too.
  Sequential from_ptrs(std::make_shared<LinearImpl>(2, 2), std::make_shared<ReLUImpl>());
  EXPECT_EQ(from_ptrs->size(), 2u);
}

TEST(ModuleListContainer, PushBackIndexInsertExtend) {
  ModuleList list(Linear(2, 2), ReLU());
  list->push_back(Linear(2, 3));
  list->push_back(std::make_shared<TanhImpl>());
  EXPECT_EQ(list->size(), 4u);
  EXPECT_EQ(list->named_children().keys(), (std::vector<std::string>{"0", "1", "2", "3"}));
  EXPECT_EQ(list->at<LinearImpl>(2).options.out_features(), 3);
  EXPECT_TRUE(list[-1]->as<TanhImpl>() != nullptr);
  EXPECT_KILN_ERROR(list[4], "index 4 is out of range for 4 modules");
  EXPECT_KILN_ERROR(list->at<LinearImpl>(1), "module 1 is a ReLU, not the type requested");

  // insert renames the later modules, keeping list order in named_children.
  Identity id;
  list->insert(1, id.ptr());
  EXPECT_EQ(list->size(), 5u);
  EXPECT_TRUE(list[1].get() == id.get());
  EXPECT_EQ(list->named_children().keys(), (std::vector<std::string>{"0", "1", "2", "3", "4"}));
  EXPECT_TRUE(list->named_children()["2"]->as<ReLUImpl>() != nullptr);
  EXPECT_EQ(list->named_parameters().keys(),
            (std::vector<std::string>{"0.weight", "0.bias", "3.weight", "3.bias"}));
  list->insert(-1, std::make_shared<SigmoidImpl>());
  EXPECT_TRUE(list[4]->as<SigmoidImpl>() != nullptr);
  EXPECT_TRUE(list[5]->as<TanhImpl>() != nullptr);

  ModuleList other;
  other->extend(*list);
  EXPECT_EQ(other->size(), 6u);
  EXPECT_TRUE(other[0].get() == list[0].get());
  std::vector<std::string> kinds;
  for (const auto& m : *other) kinds.push_back(m->name());
  EXPECT_EQ(kinds, (std::vector<std::string>{"Linear", "Identity", "ReLU", "Linear", "Sigmoid", "Tanh"}));
  // Calling the modules is the model's job: a loop over typed access.
  ModuleList layers;
  for (int i = 0; i < 3; ++i) layers->push_back(Linear(2, 2));
  Tensor x = kiln::ones({1, 2});
  Tensor y = x;
  for (size_t i = 0; i < layers->size(); ++i) y = layers->at<LinearImpl>(int64_t(i)).forward(y);
  EXPECT_EQ(y.sizes(), IntArrayRef({1, 2}));
}

TEST(ModuleDictContainer, InsertReplacePopAndOrder) {
  ModuleDict dict({{"b", Linear(2, 2)}, {"a", ReLU()}});
  EXPECT_EQ(dict->keys(), (std::vector<std::string>{"b", "a"}));  // insertion order, not sorted
  EXPECT_EQ(dict->named_children().keys(), (std::vector<std::string>{"b", "a"}));
  EXPECT_TRUE(dict->contains("a"));
  EXPECT_EQ(dict->size(), 2u);
  dict->insert("c", Tanh());
  dict->insert("b", Linear(2, 5));  // replaces in place
  EXPECT_EQ(dict->keys(), (std::vector<std::string>{"b", "a", "c"}));
  EXPECT_EQ(dict->at<LinearImpl>("b").options.out_features(), 5);
  EXPECT_EQ(dict->named_parameters()["b.weight"].sizes(), IntArrayRef({5, 2}));
  EXPECT_TRUE(dict["c"]->as<Tanh>() != nullptr);
  auto popped = dict->pop("a");
  EXPECT_TRUE(popped->as<ReLU>() != nullptr);
  EXPECT_EQ(dict->keys(), (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(dict->named_children().keys(), (std::vector<std::string>{"b", "c"}));
  EXPECT_KILN_ERROR(dict->pop("a"), "no module named 'a'");
  EXPECT_KILN_ERROR(dict->at<Conv2dImpl>("b"), "module 'b' is a Linear, not the type requested");
  dict->update({{"d", std::make_shared<IdentityImpl>()}});
  std::vector<std::string> keys;
  for (const auto& item : *dict) keys.push_back(item.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"b", "c", "d"}));
  EXPECT_EQ(dict->values().size(), 3u);
  dict->clear();
  EXPECT_TRUE(dict->is_empty());
  EXPECT_TRUE(dict->named_children().empty());
}
