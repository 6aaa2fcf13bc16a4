#pragma once
// The run config's section readers and the YAML writing helpers they share.
// Each reader checks its own keys and values; one that depends on an earlier
// section (train.precision on run.device, schedule on optim.lr, ...) reads
// it from the config filled so far, so sections are read in header order.
#include <string>
#include <vector>

#include "kiln/train/run_config.h"
#include "yaml_reader.h"

namespace kiln::train::config {

// Each takes the section's node (absent: all defaults) and the position of
// the top-level map, for errors about a missing section.
void read_run_section(const Context& ctx, const YAML::Node& node, YAML::Mark parent, RunConfig& config);
void read_model_section(const Context& ctx, const YAML::Node& node, YAML::Mark parent, RunConfig& config);
void read_data_section(const Context& ctx, const YAML::Node& node, YAML::Mark parent, RunConfig& config);
void read_optim_section(const Context& ctx, const YAML::Node& node, YAML::Mark parent, RunConfig& config);
void read_schedule_section(const Context& ctx, const YAML::Node& node, YAML::Mark parent, RunConfig& config);
void read_train_section(const Context& ctx, const YAML::Node& node, YAML::Mark parent, RunConfig& config);
void read_checkpoint_section(const Context& ctx, const YAML::Node& node, YAML::Mark parent, RunConfig& config);
void read_early_stopping_section(const Context& ctx, const YAML::Node& node, YAML::Mark parent, RunConfig& config);

// A transform list (`path` is "data.train.transforms"); absent or null:
// [to_tensor]. Built once as data::Transforms so its checks run here too.
// channels (the dataset's, 0 if unknown): normalize's mean and std must
// have 1 or that many values.
std::vector<data::TransformSpec> read_transforms(const Context& ctx, const YAML::Node& node, const std::string& path,
                                                 YAML::Mark parent, int channels = 0);

// ---- writing ----

// A string as a YAML scalar: plain when it reads back as the same string,
// double-quoted (JSON escapes, which YAML shares) otherwise.
std::string yaml_string(const std::string& s);
// The shortest text that reads back as the same double ("0.1", "1e-08", "2.0").
std::string yaml_double(double v);
std::string yaml_list(const std::vector<int64_t>& v);
std::string yaml_list(const std::vector<double>& v);
// JSON as YAML flow (JSON is YAML; numbers keep their int/float kind).
std::string yaml_flow(const nlohmann::json& v);

// One transform as a single-line list entry's content ("horizontal_flip: {p: 0.5}").
std::string transform_to_yaml(const data::TransformSpec& spec);

}  // namespace kiln::train::config
