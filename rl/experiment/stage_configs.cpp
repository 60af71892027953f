#include "rl/experiment/stage_configs.h"

#include <fmt/core.h>

#include <algorithm>
#include <cstdlib>
#include <stdexcept>

#ifdef GRPO_WITH_HTTP
#include "api/client/openai_client.h"
#endif
#include "rl/experiment/conversation.h"
#include "rl/experiment/stage_options.h"

namespace grpo {
namespace {

// The enum value a script's name stands for; StageOptions has already checked the name is allowed.
template <typename E>
E value_named(const std::vector<std::pair<std::string, E>>& names, const std::string& name) {
  for (const auto& [text, value] : names)
    if (text == name) return value;
  throw std::logic_error("unchecked enum value " + name);
}

}  // namespace

const std::vector<std::pair<std::string, LossAggregation>>& loss_aggregation_names() {
  static const std::vector<std::pair<std::string, LossAggregation>> names = {
      {"token-mean", LossAggregation::TokenMean},
      {"seq-mean-token-mean", LossAggregation::SeqMeanTokenMean},
      {"seq-mean-token-sum", LossAggregation::SeqMeanTokenSum},
      {"seq-mean-token-sum-norm", LossAggregation::SeqMeanTokenSumNorm}};
  return names;
}

const std::vector<std::pair<std::string, AdvantageScaling>>& advantage_scaling_names() {
  static const std::vector<std::pair<std::string, AdvantageScaling>> names = {
      {"group", AdvantageScaling::Group}, {"batch", AdvantageScaling::Batch}, {"none", AdvantageScaling::None}};
  return names;
}

PretrainStageOptions pretrain_stage_options(StageOptions& o) {
  PretrainStageOptions s;
  PretrainConfig& c = s.config;
  s.model = o.string("model");
  s.field = o.string("field");
  c.steps = o.integer("steps");
  c.batch_size = o.integer("batch_size");
  c.seq_len = o.integer("seq_len");
  // Default warm-up: 10% of the steps, at most 20.
  c.lr = {o.number("lr"), o.integer("warmup", std::min<int64_t>(20, c.steps / 10)), LrDecay::Cosine, c.steps,
          o.number("min_lr_ratio")};
  c.adamw.weight_decay = o.number("weight_decay");
  c.seed = static_cast<uint64_t>(o.integer("seed"));
  s.out = o.output("out");
  return s;
}

SftStageOptions sft_stage_options(StageOptions& o) {
  SftStageOptions s;
  SftConfig& c = s.config;
  s.model = o.string("model");
  s.eos = o.boolean("eos");
  c.steps = o.integer("steps");
  c.epochs = o.integer("epochs");
  c.batch_size = o.integer("batch_size");
  c.max_len = o.integer("max_len");
  c.pack = o.boolean("pack");
  c.lr = {o.number("lr"), o.integer("warmup"), LrDecay::Cosine, 0, o.number("min_lr_ratio")};
  c.adamw.weight_decay = o.number("weight_decay");
  c.max_grad_norm = o.number("max_grad_norm");
  c.seed = static_cast<uint64_t>(o.integer("seed"));
  s.out = o.output("out");
  return s;
}

TrainStageOptions train_stage_options(StageOptions& o) {
  TrainStageOptions s;
  GrpoConfig& c = s.config;
  s.model = o.string("model");
  s.rules = o.string("rules");
  s.steps = o.integer("steps");
  s.prompts_per_step = o.integer("prompts_per_step");
  c.group_size = o.integer("group_size");
  c.seed = static_cast<uint64_t>(o.integer("seed"));
  c.sampling.temperature = o.number("temperature");
  c.sampling.top_p = o.number("top_p");
  c.stop.max_new_tokens = o.integer("max_new_tokens");
  if (o.has("stop")) c.stop.stop_strings.push_back(o.string("stop"));
  for (const std::string& stop : stage_template_stop_strings(o)) c.stop.stop_strings.push_back(stop);
  c.objective.policy.kl_coef = o.number("kl_coef");
  c.objective.policy.clip_low = o.number("clip_low");
  c.objective.policy.clip_high = o.number("clip_high");
  c.objective.aggregation = value_named(loss_aggregation_names(), o.string("loss_aggregation"));
  c.advantages.scaling = value_named(advantage_scaling_names(), o.string("advantage_scaling"));
  c.epochs = o.integer("epochs");
  c.minibatches = o.integer("minibatches");
  c.micro_batch_size = o.integer("micro_batch_size");
  c.lr = {o.number("lr"), o.integer("warmup"), LrDecay::Constant, 0, 0.0};
  c.adamw.weight_decay = o.number("weight_decay");
  c.max_grad_norm = o.number("max_grad_norm");
  c.mask_truncated = o.boolean("mask_truncated");
  c.overlong_buffer = o.integer("overlong_buffer");
  c.overlong_penalty = o.number("overlong_penalty");
  c.drop_zero_variance_groups = o.boolean("dynamic_sampling");
  c.routing_replay = o.boolean("routing_replay");
  c.router_bias_update = o.number("router_bias_update");
  c.reference_reset_every = o.integer("reference_reset_every");
  s.sample_every = o.integer("sample_every");
  s.checkpoint_every = o.integer("checkpoint_every");
  s.keep_checkpoints = o.integer("keep_checkpoints");
  s.out = o.output("out");
  return s;
}

namespace {

// The endpoint options of grpo.sample, checked before any request: the URL's shape, the API key's
// variable set, and nothing that only a local checkpoint can use.
EndpointStageOptions endpoint_stage_options(StageOptions& o) {
  EndpointStageOptions e;
  e.url = o.string("endpoint");
  if (o.has("template"))
    o.fail("option \"template\" renders prompts for a local model; an endpoint applies its own chat template (drop one of the two)");
#ifdef GRPO_WITH_HTTP
  try {
    api::parse_endpoint_url(e.url);
  } catch (const api::EndpointError& error) {
    o.fail(fmt::format("option \"endpoint\": {}", error.what()));
  }
#else
  o.fail("option \"endpoint\": this grpo was built without HTTP support (cpp-httplib); install libcpp-httplib-dev and rebuild");
#endif
  if (o.has("api_key_env")) {
    const std::string variable = o.string("api_key_env");
    const char* key = std::getenv(variable.c_str());
    if (!key || !*key)
      o.fail(fmt::format("option \"api_key_env\": the environment variable {} is not set (export {}=... before the run)", variable,
                         variable));
    e.api_key = key;
  }
  e.chat = o.string("api") == "chat";
  e.concurrency = o.integer("concurrency");
  if (e.concurrency < 1) o.fail(fmt::format("option \"concurrency\" must be >= 1, got {}", e.concurrency));
  e.timeout_s = o.number("timeout");
  if (!(e.timeout_s > 0)) o.fail(fmt::format("option \"timeout\" must be > 0 seconds, got {}", e.timeout_s));
  e.max_retries = o.integer("max_retries");
  if (e.max_retries < 0) o.fail(fmt::format("option \"max_retries\" must be >= 0, got {}", e.max_retries));
  e.reasoning_template = o.has("reasoning_template") ? o.string("reasoning_template") : "<think>\n{reasoning}\n</think>\n\n{content}";
  return e;
}

}  // namespace

SampleStageOptions sample_stage_options(StageOptions& o) {
  SampleStageOptions s;
  SampleConfig& c = s.config;
  s.model = o.string("model");
  if (o.has("endpoint")) {
    s.endpoint = endpoint_stage_options(o);
  } else {
    for (const char* key : {"api_key_env", "api", "concurrency", "timeout", "max_retries", "reasoning_template"})
      if (o.has(key)) o.fail(fmt::format("option \"{}\" is for sampling from an endpoint: give \"endpoint\" too, or drop it", key));
  }
  if (o.has("rules")) s.rules = o.string("rules");
  c.samples_per_prompt = o.integer("n");
  c.sampling.temperature = o.number("temperature");
  c.sampling.top_p = o.number("top_p");
  c.sampling.top_k = o.integer("top_k");
  c.stop.max_new_tokens = o.integer("max_new_tokens");
  if (o.has("stop")) c.stop.stop_strings.push_back(o.string("stop"));
  for (const std::string& stop : stage_template_stop_strings(o)) c.stop.stop_strings.push_back(stop);
  c.seed = static_cast<uint64_t>(o.integer("seed"));
  s.out = o.output("out");
  return s;
}

EvalStageOptions eval_stage_options(StageOptions& o) {
  EvalStageOptions s;
  EvalConfig& c = s.config;
  s.model = o.string("model");
  s.rules = o.string("rules");
  c.samples_per_prompt = o.integer("n");
  c.pass_k = {1, c.samples_per_prompt};
  if (o.has("k")) c.pass_k = {1, o.integer("k")};
  c.sampling.temperature = o.number("temperature");
  c.sampling.top_p = o.number("top_p");
  c.stop.max_new_tokens = o.integer("max_new_tokens");
  if (o.has("stop")) c.stop.stop_strings.push_back(o.string("stop"));
  for (const std::string& stop : stage_template_stop_strings(o)) c.stop.stop_strings.push_back(stop);
  c.seed = static_cast<uint64_t>(o.integer("seed"));
  return s;
}

}  // namespace grpo
