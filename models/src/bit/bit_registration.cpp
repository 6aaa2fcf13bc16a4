#include "builtin_models.h"
#include "kiln/models/bit/bit_model.h"
#include "kiln/models/registry.h"

namespace kiln::models::detail {

void register_bit_models() {
  auto add = [](const char* architecture, auto make) {
    register_model("bit", architecture, [make](const Json& json, const std::string& source) {
      return std::shared_ptr<PreTrainedModel>(make(BitConfig::from_json(json, source)));
    });
  };
  add(BitModelImpl::kArchitecture, [](BitConfig c) { return std::make_shared<BitModelImpl>(std::move(c)); });
  add(BitForImageClassificationImpl::kArchitecture,
      [](BitConfig c) { return std::make_shared<BitForImageClassificationImpl>(std::move(c)); });
  add(BitBackboneImpl::kArchitecture, [](BitConfig c) { return std::make_shared<BitBackboneImpl>(std::move(c)); });
}

}  // namespace kiln::models::detail
