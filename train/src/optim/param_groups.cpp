// Parameter-group helpers: weight-decay exemptions and BEiT's layer-wise lr
// decay, grouping named parameters in first-appearance order.
#include "kiln/train/optim/param_groups.h"

#include <charconv>
#include <cmath>
#include <map>

#include "kiln/core/error.h"

namespace kiln::optim {

namespace {

std::vector<std::string> components(const std::string& name) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t dot = name.find('.', start);
    parts.push_back(name.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) return parts;
    start = dot + 1;
  }
}

bool parse_index(const std::string& s, int64_t& out) {
  if (s.empty()) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size() && out >= 0;
}

bool trainable(const Tensor& p) { return p.defined() && p.requires_grad(); }

// Groups keyed by whatever distinguishes them, in first-appearance order.
template <typename Key>
class GroupBuilder {
 public:
  ParamGroup& group(const Key& key, std::initializer_list<ParamGroup::Option> options) {
    auto it = index_.find(key);
    if (it != index_.end()) return groups_[it->second];
    index_.emplace(key, groups_.size());
    groups_.emplace_back(std::vector<Tensor>{}, options);
    return groups_.back();
  }
  std::vector<ParamGroup> take() { return std::move(groups_); }

 private:
  std::map<Key, size_t> index_;
  std::vector<ParamGroup> groups_;
};

void add(ParamGroup& g, const std::string& name, const Tensor& p) {
  g.params.push_back(p);
  g.param_names.push_back(name);
}

}  // namespace

NamedParameters to_named_parameters(const nn::OrderedDict<Tensor>& params) {
  NamedParameters out;
  out.reserve(params.size());
  for (const auto& item : params) out.emplace_back(item.key, item.value);
  return out;
}

bool no_weight_decay(const std::string& name, const Tensor& param, const std::set<std::string>& skip) {
  const std::string suffix = ".bias";
  const bool is_bias = name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  return param.dim() <= 1 || is_bias || skip.count(name) != 0;
}

std::vector<ParamGroup> param_groups_weight_decay(const NamedParameters& params, double weight_decay,
                                                  const std::set<std::string>& skip) {
  // timm lists the exempt group first.
  ParamGroup exempt({}, {{"weight_decay", 0.0}});
  ParamGroup decayed({}, {{"weight_decay", weight_decay}});
  for (const auto& [name, p] : params) {
    if (!trainable(p)) continue;
    add(no_weight_decay(name, p, skip) ? exempt : decayed, name, p);
  }
  std::vector<ParamGroup> groups;
  if (!exempt.params.empty()) groups.push_back(std::move(exempt));
  if (!decayed.params.empty()) groups.push_back(std::move(decayed));
  return groups;
}

std::vector<ParamGroup> param_groups_weight_decay(const nn::OrderedDict<Tensor>& params, double weight_decay,
                                                  const std::set<std::string>& skip) {
  return param_groups_weight_decay(to_named_parameters(params), weight_decay, skip);
}

int64_t beit_layer_id(const std::string& name, int64_t num_layers) {
  const std::vector<std::string> parts = components(name);
  for (const auto& c : parts) {
    if (c == "embeddings" || c == "cls_token" || c == "mask_token" || c == "pos_embed" || c.rfind("patch_embed", 0) == 0)
      return 0;
  }
  for (size_t k = 0; k + 1 < parts.size(); ++k) {
    int64_t i = 0;
    if ((parts[k] == "layer" || parts[k] == "blocks") && parse_index(parts[k + 1], i)) return i + 1;
  }
  return num_layers + 1;
}

std::vector<ParamGroup> param_groups_layer_decay(const NamedParameters& params, double weight_decay,
                                                 int64_t num_layers, double layer_decay,
                                                 const std::set<std::string>& skip, const LayerIdFn& layer_id) {
  KILN_CHECK(num_layers >= 0, "param_groups_layer_decay: num_layers must be non-negative, got ", num_layers);
  KILN_CHECK(layer_decay > 0.0, "param_groups_layer_decay: layer_decay must be positive, got ", layer_decay);
  KILN_CHECK(static_cast<bool>(layer_id), "param_groups_layer_decay: layer_id function is empty");
  GroupBuilder<std::pair<int64_t, bool>> builder;
  for (const auto& [name, p] : params) {
    if (!trainable(p)) continue;
    const int64_t id = layer_id(name, num_layers);
    KILN_CHECK(id >= 0 && id <= num_layers + 1, "param_groups_layer_decay: layer id ", id, " of '", name,
               "' is outside [0, ", num_layers + 1, "]");
    const bool decay = !no_weight_decay(name, p, skip);
    // BEiT: layer_decay ** (num_layers + 1 - i), a Python float to an int power.
    const double scale = std::pow(layer_decay, static_cast<double>(num_layers + 1 - id));
    add(builder.group({id, decay}, {{"weight_decay", decay ? weight_decay : 0.0}, {"lr_scale", scale}}), name, p);
  }
  return builder.take();
}

std::vector<ParamGroup> param_groups_layer_decay(const nn::OrderedDict<Tensor>& params, double weight_decay,
                                                 int64_t num_layers, double layer_decay,
                                                 const std::set<std::string>& skip, const LayerIdFn& layer_id) {
  return param_groups_layer_decay(to_named_parameters(params), weight_decay, num_layers, layer_decay, skip,
                                  layer_id);
}

}  // namespace kiln::optim
