#pragma once
// The C++ configs the stages run with, built from their options (stage_option_specs.h declares them,
// StageOptions reads them): one function per stage, so that each stage's body is its work alone.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "rl/evaluation.h"
#include "rl/grpo_trainer.h"
#include "rl/pretrain.h"
#include "rl/sample_dataset.h"
#include "rl/sft.h"

namespace grpo {

class StageOptions;  // rl/experiment/stage_options.h

// The names scripts give these C++ enums, one table each: the options' allowed values, their declared
// default (the name of a default-constructed config's value) and the parse all come from it.
const std::vector<std::pair<std::string, LossAggregation>>& loss_aggregation_names();
const std::vector<std::pair<std::string, AdvantageScaling>>& advantage_scaling_names();

struct PretrainStageOptions {
  PretrainConfig config;
  std::string model, field, out;
};
PretrainStageOptions pretrain_stage_options(StageOptions& o);

struct SftStageOptions {
  SftConfig config;
  std::string model, out;
  bool eos = true;  // append EOS to each completion
};
SftStageOptions sft_stage_options(StageOptions& o);

struct TrainStageOptions {
  GrpoConfig config;  // stop ids and the process group are the stage's to add
  std::string model, rules, out;
  int64_t steps = 0, prompts_per_step = 0;
  int64_t sample_every = 0, checkpoint_every = 0, keep_checkpoints = 0;
};
TrainStageOptions train_stage_options(StageOptions& o);

// grpo.sample's teacher behind an OpenAI-compatible endpoint (option "endpoint"; api/client/endpoint_sampler.h).
struct EndpointStageOptions {
  std::string url;
  std::string api_key;  // from the environment variable named by api_key_env; empty without it
  bool chat = true;     // option api: "chat" or "completions"
  int64_t concurrency = 8, max_retries = 5;
  double timeout_s = 600;
  std::string reasoning_template;
};

struct SampleStageOptions {
  SampleConfig config;
  std::string model, rules, out;  // rules empty: nothing is scored; model: the served name with an endpoint
  std::optional<EndpointStageOptions> endpoint;
};
SampleStageOptions sample_stage_options(StageOptions& o);

struct EvalStageOptions {
  EvalConfig config;
  std::string model, rules;
};
EvalStageOptions eval_stage_options(StageOptions& o);

}  // namespace grpo
