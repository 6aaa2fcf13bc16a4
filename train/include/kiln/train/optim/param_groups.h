#pragma once
// Building parameter groups from named parameters, the way the BEiT and
// timm recipes do: no weight decay for biases and norm weights, and
// layer-wise lr decay for fine-tuning. Named parameters come as
// Module::named_parameters() gives them (dotted names in registration
// order); parameters that do not require grad (frozen) are left out, as in
// both references. Groups appear in the order their first parameter does,
// and a group is never empty.
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "kiln/core/tensor.h"
#include "kiln/nn/ordered_dict.h"
#include "kiln/train/optim/param_group.h"

namespace kiln::optim {

using NamedParameters = std::vector<std::pair<std::string, Tensor>>;

NamedParameters to_named_parameters(const nn::OrderedDict<Tensor>& params);

// True for the parameters the recipes exempt from weight decay: tensors of
// at most one dim (biases, norm weights, layer scales), names ending in
// ".bias", and names in `skip` (exact matches, e.g. a model's cls_token).
bool no_weight_decay(const std::string& name, const Tensor& param, const std::set<std::string>& skip = {});

// timm's param_groups_weight_decay: one group with weight_decay 0 for the
// exempt parameters, one with `weight_decay` for the rest.
std::vector<ParamGroup> param_groups_weight_decay(const NamedParameters& params, double weight_decay,
                                                  const std::set<std::string>& skip = {});
std::vector<ParamGroup> param_groups_weight_decay(const nn::OrderedDict<Tensor>& params, double weight_decay,
                                                  const std::set<std::string>& skip = {});

// Maps a parameter name to its layer id in [0, num_layers + 1].
using LayerIdFn = std::function<int64_t(const std::string& name, int64_t num_layers)>;

// BEiT's rule (get_layer_id_for_vit), on Hugging Face or timm names:
//   embeddings: a name with a component "embeddings", "cls_token",
//     "mask_token", "pos_embed" or starting "patch_embed"       -> 0
//   transformer block i: components "layer.<i>" or "blocks.<i>" -> i + 1
//   anything else (shared relative position bias, pooler, head) -> num_layers + 1
int64_t beit_layer_id(const std::string& name, int64_t num_layers);

// BEiT's get_parameter_groups with a LayerDecayValueAssigner: a group per
// (layer id, decay or not), each with weight_decay (0 for the exempt
// parameters) and lr_scale = layer_decay ^ (num_layers + 1 - layer_id), so
// the head trains at the full lr and earlier layers progressively slower.
// The scale acts through an LRScheduler, which multiplies it into the lr.
std::vector<ParamGroup> param_groups_layer_decay(const NamedParameters& params, double weight_decay,
                                                 int64_t num_layers, double layer_decay,
                                                 const std::set<std::string>& skip = {},
                                                 const LayerIdFn& layer_id = beit_layer_id);
std::vector<ParamGroup> param_groups_layer_decay(const nn::OrderedDict<Tensor>& params, double weight_decay,
                                                 int64_t num_layers, double layer_decay,
                                                 const std::set<std::string>& skip = {},
                                                 const LayerIdFn& layer_id = beit_layer_id);

}  // namespace kiln::optim
