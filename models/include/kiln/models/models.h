#pragma once
// Every model family and the registry.
#include "kiln/models/activation.h"
#include "kiln/models/bit.h"
#include "kiln/models/classification_loss.h"
#include "kiln/models/model_io.h"
#include "kiln/models/registry.h"
