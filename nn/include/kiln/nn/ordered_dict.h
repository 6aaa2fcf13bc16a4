#pragma once
// A string-keyed map that remembers insertion order: named parameters,
// state dicts and tensor files keep the order a model registered things in,
// as PyTorch's OrderedDict does.
#include <cstddef>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kiln/core/error.h"
#include "kiln/core/tensor.h"

namespace kiln::nn {

template <typename V>
class OrderedDict {
 public:
  struct Item {
    std::string key;
    V value;
  };
  using iterator = typename std::vector<Item>::iterator;
  using const_iterator = typename std::vector<Item>::const_iterator;

  OrderedDict() = default;
  OrderedDict(std::initializer_list<Item> items) {
    for (const auto& item : items) insert(item.key, item.value);
  }

  // Adds a new key; a key that is already there is an error naming it.
  V& insert(std::string key, V value) {
    KILN_CHECK(!index_.count(key), "OrderedDict: key '", key, "' already present");
    index_.emplace(key, items_.size());
    items_.push_back(Item{std::move(key), std::move(value)});
    return items_.back().value;
  }
  // Adds or replaces (keeping the original position).
  V& insert_or_assign(const std::string& key, V value) {
    if (V* v = find(key)) return *v = std::move(value);
    return insert(key, std::move(value));
  }
  V* find(const std::string& key) {
    auto it = index_.find(key);
    return it == index_.end() ? nullptr : &items_[it->second].value;
  }
  const V* find(const std::string& key) const {
    auto it = index_.find(key);
    return it == index_.end() ? nullptr : &items_[it->second].value;
  }
  bool contains(const std::string& key) const { return index_.count(key) != 0; }
  V& at(const std::string& key) {
    V* v = find(key);
    KILN_CHECK(v, "OrderedDict: no key '", key, "'");
    return *v;
  }
  const V& at(const std::string& key) const {
    const V* v = find(key);
    KILN_CHECK(v, "OrderedDict: no key '", key, "'");
    return *v;
  }
  V& operator[](const std::string& key) { return at(key); }
  const V& operator[](const std::string& key) const { return at(key); }
  // Removes a key if present (O(n): reindexes the later items).
  bool erase(const std::string& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return false;
    size_t pos = it->second;
    items_.erase(items_.begin() + static_cast<std::ptrdiff_t>(pos));
    index_.erase(it);
    for (auto& [k, i] : index_)
      if (i > pos) --i;
    return true;
  }
  void clear() {
    items_.clear();
    index_.clear();
  }

  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  iterator begin() { return items_.begin(); }
  iterator end() { return items_.end(); }
  const_iterator begin() const { return items_.begin(); }
  const_iterator end() const { return items_.end(); }
  const std::vector<Item>& items() const { return items_; }
  std::vector<std::string> keys() const {
    std::vector<std::string> out;
    out.reserve(items_.size());
    for (const auto& item : items_) out.push_back(item.key);
    return out;
  }
  std::vector<V> values() const {
    std::vector<V> out;
    out.reserve(items_.size());
    for (const auto& item : items_) out.push_back(item.value);
    return out;
  }

 private:
  std::vector<Item> items_;
  std::unordered_map<std::string, size_t> index_;
};

// Tensors by dotted name: what state_dict() returns, load_state_dict() takes,
// and tensor files (safetensors, HDF5) read and write.
using StateDict = OrderedDict<Tensor>;

}  // namespace kiln::nn
