#pragma once
#include "kiln/models/bit/bit_config.h"
#include "kiln/models/bit/bit_layers.h"
#include "kiln/models/bit/bit_model.h"
