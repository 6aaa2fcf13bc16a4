#pragma once
// Each family's registration, called once by the registry on first use (no
// static-initialisation order to depend on).
namespace kiln::models::detail {
void register_bit_models();
}  // namespace kiln::models::detail
