// The training loop: see trainer.h for the order of events in a step, which
// is what makes a resumed run identical to an uninterrupted one.
#include "kiln/train/trainer.h"

#include <chrono>
#include <cstdio>
#include <cmath>
#include <filesystem>
#include <sstream>

#include "evaluate.h"
#include "kiln/autograd/autocast.h"
#include "kiln/autograd/grad_mode.h"
#include "kiln/core/backend.h"
#include "kiln/core/math_mode.h"
#include "kiln/core/generator.h"
#include "kiln/core/parallel.h"
#include "kiln/models/registry.h"
#include "kiln/nn/functional/loss.h"
#include "kiln/nn/serialize/atomic_file.h"
#include "kiln/train/checkpoint.h"
#include "kiln/train/optim/clip_grad.h"
#include "run_builder.h"
#include "run_dir_lock.h"
#include "run_log.h"
#include "run_state.h"

namespace kiln::train {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

class Run {
 public:
  Run(const RunConfig& config, const TrainerOptions& options) : config_(config), options_(options) {}
  RunResult fit();

 private:
  void build();
  void resume_or_init();
  // One optimizer step; false when nan_policy stop ended the run.
  bool train_step();
  void after_step(RunResult& result);
  void run_eval();
  Checkpoint snapshot() const;
  fs::path save_checkpoint_now();
  void restore(const Checkpoint& checkpoint);
  bool stop_requested() const { return options_.stop_requested && options_.stop_requested->load(); }
  std::optional<data::Batch> next_micro_batch();

  const RunConfig& config_;
  TrainerOptions options_;
  fs::path out_dir_;
  std::unique_ptr<detail::RunDirLock> lock_;
  std::shared_ptr<models::PreTrainedModel> model_;
  std::unique_ptr<data::DataLoader> train_loader_, eval_loader_;
  std::unique_ptr<optim::Optimizer> optimizer_;
  std::unique_ptr<optim::LRScheduler> scheduler_;
  std::unique_ptr<CheckpointManager> checkpoints_;
  std::unique_ptr<detail::RunLog> log_;
  std::vector<Tensor> params_;
  Device device_{kCPU};
  detail::RunState state_;
  int64_t total_steps_ = 0;
  int64_t resumed_from_ = -1;
  // Per step, reset each step.
  bool epoch_ended_ = false, evaluated_ = false;
  double last_grad_norm_ = 0.0, last_lr_ = 0.0;
  int64_t last_checkpoint_step_ = -1;
  // Throughput over the current log window (not checkpointed: wall-clock).
  int64_t window_images_ = 0;
  double window_seconds_ = 0.0;
  Clock::time_point run_start_;
};

void Run::build() {
  const RunSection& run = config_.run;
  device_ = Device(run.device);
  KILN_CHECK(device_.is_cpu() || has_backend(kCUDA), "run.device: '", run.device,
             "' is not available: this build of Kiln has no CUDA backend, or no GPU was found");
  // precision: tf32 lets f32 matmuls and convolutions use TF32 tensor cores;
  // bf16 runs the forward pass under autocast (parameters stay f32).
  set_float32_matmul_precision(config_.train.precision == "tf32" ? "high" : "highest");
  if (run.threads > 0) set_num_threads(run.threads);
  out_dir_ = run.output_dir;
  fs::create_directories(out_dir_);
  lock_ = std::make_unique<detail::RunDirLock>(out_dir_);
  nn::serialize::write_file_atomically((out_dir_ / "config.yaml").string(), to_yaml(config_), "kiln train");

  auto train_set = detail::build_dataset(config_.data.train);
  // Weights are initialised from the run's seed, so a resumed run builds
  // the same model before loading the checkpoint over it.
  manual_seed(run.seed);
  model_ = detail::build_model(config_, train_set->classes());
  // Before the optimizer is built, so its state lives beside the parameters.
  if (!device_.is_cpu()) model_->to(device_);
  train_loader_ = detail::build_loader(config_, train_set, /*train=*/true);
  if (config_.data.eval) eval_loader_ = detail::build_loader(config_, detail::build_dataset(*config_.data.eval), false);

  const int64_t micro_per_epoch = train_loader_->batches_per_epoch();
  total_steps_ = config_.train.max_steps > 0
                     ? config_.train.max_steps
                     : std::max<int64_t>(1, config_.train.epochs * micro_per_epoch / config_.train.grad_accum);
  optimizer_ = detail::build_optimizer(*model_, config_.optim);
  for (const auto& group : optimizer_->param_groups())
    for (const auto& p : group.params) params_.push_back(p);
  scheduler_ = detail::build_scheduler(*optimizer_, config_.schedule, total_steps_);

  CheckpointPolicy policy;
  policy.keep_last = config_.checkpoint.keep_last;
  policy.best_metric = config_.checkpoint.keep_best;
  policy.best_higher = config_.checkpoint.best_mode != "min";
  checkpoints_ = std::make_unique<CheckpointManager>(out_dir_ / "checkpoints", policy);
}

void Run::resume_or_init() {
  const CheckpointSection& c = config_.checkpoint;
  std::optional<fs::path> from;
  if (c.resume == "auto")
    from = checkpoints_->latest();
  else if (c.resume != "never")
    from = fs::path(c.resume);
  if (from) {
    Checkpoint checkpoint = load_checkpoint(*from);
    detail::check_same_model(checkpoint, config_, from->string());
    restore(checkpoint);
    resumed_from_ = state_.step;
    last_checkpoint_step_ = state_.step;
  } else if (!c.init_from.empty()) {
    Checkpoint checkpoint = load_checkpoint(c.init_from);
    NoGradGuard no_grad;
    model_->load_state_dict(checkpoint.model);
  }
  log_ = std::make_unique<detail::RunLog>(out_dir_ / "metrics.jsonl", total_steps_, options_.quiet, resumed_from_);
  if (from)
    log_->message("resumed from " + from->string() + " at step " + std::to_string(state_.step) + "/" +
                  std::to_string(total_steps_));
}

void Run::restore(const Checkpoint& checkpoint) {
  NoGradGuard no_grad;
  model_->load_state_dict(checkpoint.model);
  optimizer_->load_state_dict(checkpoint.optimizer);
  scheduler_->load_state_dict(checkpoint.scheduler);
  default_generator().set_state(checkpoint.generator_seed, checkpoint.generator_offset);
  train_loader_->seek({checkpoint.loader_epoch, checkpoint.loader_batch});
  state_ = detail::RunState::from_json(checkpoint.trainer_json, checkpoint.step);
}

Checkpoint Run::snapshot() const {
  Checkpoint c;
  c.step = state_.step;
  c.epoch = train_loader_->cursor().epoch;
  c.model = model_->state_dict();
  c.optimizer = optimizer_->state_dict();
  c.scheduler = scheduler_->state_dict();
  c.generator_seed = default_generator().seed();
  c.generator_offset = default_generator().offset();
  c.loader_epoch = train_loader_->cursor().epoch;
  c.loader_batch = train_loader_->cursor().batch;
  c.config_yaml = to_yaml(config_);
  c.metrics_json = json(state_.last_eval).dump();
  c.trainer_json = state_.to_json();
  return c;
}

fs::path Run::save_checkpoint_now() {
  std::optional<double> metric;
  if (!config_.checkpoint.keep_best.empty() && evaluated_) {
    auto it = state_.last_eval.find(config_.checkpoint.keep_best);
    if (it != state_.last_eval.end()) metric = it->second;
  }
  fs::path path = checkpoints_->save(snapshot(), metric);
  last_checkpoint_step_ = state_.step;
  return path;
}

std::optional<data::Batch> Run::next_micro_batch() {
  // The cursor never rests at an epoch's end (see below), so a batch follows.
  auto batch = train_loader_->next();
  KILN_CHECK(batch.has_value(), "train: the loader ended an epoch unexpectedly");
  // Close the epoch as soon as its last batch is out, so a checkpoint after
  // this step already points into the next epoch.
  if (train_loader_->cursor().batch == train_loader_->batches_per_epoch()) {
    KILN_CHECK(!train_loader_->next().has_value(), "train: loader went past the end of an epoch");
    epoch_ended_ = true;
  }
  return batch;
}

bool Run::train_step() {
  const auto start = Clock::now();
  const int64_t accum = config_.train.grad_accum;
  double step_loss = 0.0;
  bool finite = true;
  int64_t images = 0;
  last_lr_ = optimizer_->param_groups().front().lr();
  for (int64_t micro = 0; micro < accum; ++micro) {
    data::Batch batch = *next_micro_batch();
    if (!device_.is_cpu()) {
      batch.inputs = batch.inputs.to(device_, /*non_blocking=*/true);
      batch.labels = batch.labels.to(device_, /*non_blocking=*/true);
    }
    models::ModelInputs inputs;
    inputs.pixel_values = batch.inputs;
    Tensor loss;
    {
      // Forward and loss only: backward runs outside autocast, as torch recommends.
      AutocastGuard autocast(device_.type(), kBFloat16, config_.train.precision == "bf16");
      if (config_.train.label_smoothing > 0) {
        loss = nn::functional::cross_entropy(
            model_->forward(inputs).logits, batch.labels,
            nn::functional::CrossEntropyFuncOptions().label_smoothing(config_.train.label_smoothing));
      } else {
        inputs.labels = batch.labels;  // the head's own loss (HF's problem_type rules)
        loss = model_->forward(inputs).loss;
      }
    }
    KILN_CHECK(loss.defined(), "train: model '", model_->architecture(), "' computed no loss from labels");
    const double value = loss.item<double>();
    finite = finite && std::isfinite(value);
    step_loss += value / static_cast<double>(accum);
    if (accum > 1) loss = loss / static_cast<double>(accum);
    loss.backward();
    images += batch.labels.size(0);
  }
  std::vector<Tensor> grads;
  for (const auto& p : params_)
    if (p.grad().defined()) grads.push_back(p.grad());
  Tensor norm = optim::get_total_norm(grads);
  last_grad_norm_ = norm.item<double>();
  finite = finite && std::isfinite(last_grad_norm_);
  const int64_t step_number = state_.step + 1;  // 1-based, as the log shows it
  if (!finite) {
    optimizer_->zero_grad();
    if (config_.train.nan_policy == "stop") return false;
    ++state_.nan_skips;
    log_->warning("step " + std::to_string(step_number) + ": non-finite loss or gradient (loss " +
                  std::to_string(step_loss) + ", gradient norm " + std::to_string(last_grad_norm_) +
                  "); update skipped (" + std::to_string(state_.nan_skips) + " so far)");
  } else {
    if (config_.train.clip_norm > 0) optim::clip_grads_with_norm_(params_, config_.train.clip_norm, norm);
    optimizer_->step();
    optimizer_->zero_grad();
    state_.loss_sum += step_loss;
    state_.loss_count += 1;
  }
  scheduler_->step();
  state_.step = step_number;
  window_images_ += images;
  window_seconds_ += std::chrono::duration<double>(Clock::now() - start).count();
  log_->progress(state_.step, step_loss, last_lr_,
                 window_seconds_ > 0 ? static_cast<double>(window_images_) / window_seconds_ : 0.0);
  return true;
}

void Run::run_eval() {
  if (!eval_loader_ || evaluated_) return;
  state_.last_eval = detail::evaluate(*model_, *eval_loader_, device_, config_.train.precision == "bf16");
  evaluated_ = true;
  json line = {{"event", "eval"}, {"step", state_.step}, {"epoch", train_loader_->cursor().epoch}};
  for (const auto& [k, v] : state_.last_eval) line[k] = k == "eval/examples" ? json(static_cast<int64_t>(v)) : json(v);
  log_->event(line);
  const EarlyStoppingSection& es = config_.early_stopping;
  if (!es.metric.empty()) state_.update_early_stopping(es, state_.last_eval);
}

void Run::after_step(RunResult& result) {
  const TrainSection& t = config_.train;
  const int64_t step = state_.step;
  const bool last = step >= total_steps_;
  if (step % t.log_every == 0 || last) {
    json line = {{"event", "train"},
                 {"step", step},
                 {"epoch", train_loader_->cursor().epoch},
                 {"loss", state_.loss_count ? state_.loss_sum / static_cast<double>(state_.loss_count) : NAN},
                 {"lr", last_lr_},
                 {"grad_norm", last_grad_norm_}};
    if (state_.nan_skips) line["nan_skips"] = state_.nan_skips;
    line["images_per_sec"] = window_seconds_ > 0 ? static_cast<double>(window_images_) / window_seconds_ : 0.0;
    line["elapsed_s"] = std::chrono::duration<double>(Clock::now() - run_start_).count();
    log_->event(line);
    state_.loss_sum = 0.0;
    state_.loss_count = 0;
    window_images_ = 0;
    window_seconds_ = 0.0;
  }
  if ((t.eval_every == 0 && epoch_ended_) || (t.eval_every > 0 && step % t.eval_every == 0) || last) run_eval();
  const bool stop_early = state_.should_stop(config_.early_stopping);
  const CheckpointSection& c = config_.checkpoint;
  const bool periodic = c.every > 0 && step % c.every == 0;
  const bool best = evaluated_ && !c.keep_best.empty();
  if (periodic || best || last || stop_early) save_checkpoint_now();
  if (stop_early) {
    result.status = RunStatus::Completed;
    result.message = "early stopping at step " + std::to_string(step) + ": " + config_.early_stopping.metric +
                     " did not improve for " + std::to_string(config_.early_stopping.patience) + " evaluations";
    state_.stopped_early = true;
  }
}

RunResult Run::fit() {
  run_start_ = Clock::now();
  build();
  resume_or_init();
  RunResult result;
  if (state_.step >= total_steps_ || state_.stopped_early) {
    result.step = state_.step;
    result.last_eval = state_.last_eval;
    result.message = "run already complete at step " + std::to_string(state_.step) + " (" + out_dir_.string() + ")";
    return result;
  }
  while (state_.step < total_steps_) {
    if (stop_requested()) {
      if (last_checkpoint_step_ != state_.step) save_checkpoint_now();
      result.status = RunStatus::Interrupted;
      result.message = "stopped at step " + std::to_string(state_.step) + "/" + std::to_string(total_steps_) +
                       "; checkpoint written, run the same command again to resume";
      break;
    }
    epoch_ended_ = evaluated_ = false;
    if (!train_step()) {
      if (last_checkpoint_step_ != state_.step) save_checkpoint_now();
      result.status = RunStatus::Failed;
      result.message = "non-finite loss or gradient at step " + std::to_string(state_.step + 1) +
                       " (nan_policy: stop); the last good state (step " + std::to_string(state_.step) +
                       ") is checkpointed";
      break;
    }
    after_step(result);
    if (state_.stopped_early) break;
  }
  if (result.status == RunStatus::Completed) {
    models::save_pretrained(*model_, out_dir_ / "model");
    if (result.message.empty())
      result.message = "finished " + std::to_string(state_.step) + " steps; final weights in " +
                       (out_dir_ / "model").string();
  }
  result.step = state_.step;
  result.last_eval = state_.last_eval;
  // Whether the loader kept up: the time the trainer spent waiting for it.
  const data::LoaderStats stats = train_loader_->stats();
  char line[160];
  std::snprintf(line, sizeof line, "\ndata: %lld training images prepared this session, trainer waited %.1f s for them",
                static_cast<long long>(stats.images), stats.wait_seconds);
  result.message += line;
  if (stats.skipped > 0) result.message += ", " + std::to_string(stats.skipped) + " unreadable images skipped";
  return result;
}

}  // namespace

RunResult train(const RunConfig& config, const TrainerOptions& options) {
  Run run(config, options);
  return run.fit();
}

std::map<std::string, double> evaluate_checkpoint(const RunConfig& config, const std::string& checkpoint_path) {
  KILN_CHECK(config.data.eval.has_value(), config.source, ": data.eval is needed to evaluate");
  Checkpoint checkpoint = load_checkpoint(checkpoint_path);
  auto eval_set = detail::build_dataset(*config.data.eval);
  manual_seed(config.run.seed);
  auto model = detail::build_model(config, eval_set->classes());
  {
    NoGradGuard no_grad;
    model->load_state_dict(checkpoint.model);
  }
  const Device device(config.run.device);
  KILN_CHECK(device.is_cpu() || has_backend(kCUDA), "run.device: '", config.run.device,
             "' is not available: this build of Kiln has no CUDA backend, or no GPU was found");
  if (!device.is_cpu()) model->to(device);
  auto loader = detail::build_loader(config, eval_set, /*train=*/false);
  return detail::evaluate(*model, *loader, device, config.train.precision == "bf16");
}

}  // namespace kiln::train
