#pragma once
// kiln::native: every op without autograd. The autograd layer wraps these;
// backends implement what they call.
#include "kiln/core/native/conv.h"
#include "kiln/core/native/elementwise.h"
#include "kiln/core/native/factory.h"
#include "kiln/core/native/foreach.h"
#include "kiln/core/native/indexing.h"
#include "kiln/core/native/interpolate.h"
#include "kiln/core/native/linalg.h"
#include "kiln/core/native/loss.h"
#include "kiln/core/native/norm.h"
#include "kiln/core/native/pool.h"
#include "kiln/core/native/reduce.h"
#include "kiln/core/native/shape_util.h"
#include "kiln/core/native/view.h"
