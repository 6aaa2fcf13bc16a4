#pragma once
// kiln::optim: optimizers, LR schedules, gradient clipping and the
// parameter-group helpers.
#include "kiln/train/optim/adam.h"
#include "kiln/train/optim/clip_grad.h"
#include "kiln/train/optim/grad_scaler.h"
#include "kiln/train/optim/lr_scheduler.h"
#include "kiln/train/optim/lr_schedules.h"
#include "kiln/train/optim/optimizer.h"
#include "kiln/train/optim/param_group.h"
#include "kiln/train/optim/param_groups.h"
#include "kiln/train/optim/sgd.h"
