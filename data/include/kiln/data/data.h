#pragma once
// Image decoding, PIL-compatible resizing and HF's image processors.
#include "kiln/data/image.h"
#include "kiln/data/image_processor.h"
#include "kiln/data/resample.h"
