#pragma once
// Everything public in the autograd layer.
#include "kiln/autograd/autocast.h"
#include "kiln/autograd/autograd_meta.h"
#include "kiln/autograd/engine.h"
#include "kiln/autograd/function.h"
#include "kiln/autograd/functions.h"
#include "kiln/autograd/grad_mode.h"
#include "kiln/autograd/gradcheck.h"
#include "kiln/autograd/node.h"
#include "kiln/autograd/saved_variable.h"
