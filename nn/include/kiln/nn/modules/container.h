#pragma once
// The containers: Sequential, ModuleList, ModuleDict.
#include "kiln/nn/modules/module_dict.h"
#include "kiln/nn/modules/module_list.h"
#include "kiln/nn/modules/sequential.h"
