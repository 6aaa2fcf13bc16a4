#pragma once
// The data layer: image decoding, PIL-compatible resizing, HF's image
// processors, data sets, training transforms and the threaded loader.
#include "kiln/data/dataset.h"
#include "kiln/data/image.h"
#include "kiln/data/image_processor.h"
#include "kiln/data/loader.h"
#include "kiln/data/resample.h"
#include "kiln/data/sample_rng.h"
#include "kiln/data/transforms.h"
