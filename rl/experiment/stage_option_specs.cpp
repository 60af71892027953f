#include "rl/experiment/stage_option_specs.h"

#include <fmt/core.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <stdexcept>

#include "rl/experiment/stage_configs.h"
#include "rl/logit_distillation.h"

namespace grpo {
namespace {

using nlohmann::json;

OptionSpec required_option(std::string name, unsigned types, std::string doc) {
  return {std::move(name), types, nullptr, "required", {}, std::move(doc)};
}
OptionSpec option(std::string name, unsigned types, json default_value, std::string doc) {
  return {std::move(name), types, std::move(default_value), "", {}, std::move(doc)};
}
// An option whose default is not a value: absent ("none"), or computed from other options.
OptionSpec computed_option(std::string name, unsigned types, std::string default_text, std::string doc) {
  return {std::move(name), types, nullptr, std::move(default_text), {}, std::move(doc)};
}
template <typename E>
OptionSpec enum_option(std::string name, const std::vector<std::pair<std::string, E>>& names, E default_value,
                       std::string doc) {
  OptionSpec spec{std::move(name), kEnum, nullptr, "", {}, std::move(doc)};
  for (const auto& [text, value] : names) {
    spec.allowed.push_back(text);
    if (value == default_value) spec.default_value = text;
  }
  if (spec.default_value.is_null()) throw std::logic_error("option " + spec.name + ": its default has no name");
  return spec;
}

// Options several stages share, with the same meaning.
OptionSpec prompt_option() {
  return computed_option("prompt", kTemplate | kFunction, "record's `prompt`",
                         "a template with {field} placeholders or a function of the record");
}
OptionSpec data_option() { return required_option("data", kPath | kTable, "a JSONL path or a Lua list of records"); }
OptionSpec stop_option() { return computed_option("stop", kString, "none", "a stop string; EOS always stops"); }

OptionSpec template_option() {
  return computed_option("template", kString, "model's chat template",
                         "chat template for conversational records: a built-in, a file or a checkpoint");
}

// grpo.rejection_sample: grpo.sample's options (more samples per prompt, `out` a directory, a checkpoint or
// a teacher behind an endpoint) and what to keep.
StageSpec rejection_sample_stage(const StageSpec& sample) {
  StageSpec s{"rejection_sample", sample.options};
  for (OptionSpec& o : s.options) {
    if (o.name == "n") o.default_value = 8;
    if (o.name == "out") o = option("out", kString, "rejection_sample", "output directory (kept.jsonl, samples, report)");
  }
  s.options.push_back(computed_option("keep", kTable | kFunction, "none",
                                      "{rule = minimum, ...} or a function(sample) returning true to keep it"));
  s.options.push_back(option("max_per_prompt", kInteger, 0, "most samples kept per prompt (0 = no cap)"));
  s.options.push_back(option("dedupe", kBoolean, true, "keep a completion once per prompt"));
  return s;
}

// grpo.distill: one stage, three modes; options that mean what grpo.sft's, grpo.sample's or grpo.train's
// do are declared with their names and defaults (the training defaults are logit distillation's, which
// are sft's).
StageSpec distill_stage(const SampleConfig& sample, const GrpoConfig& grpo) {
  const LogitDistillationConfig kd;
  return {"distill",
          {required_option("teacher", kPath, "the teacher's checkpoint directory (frozen, never saved)"),
           required_option("student", kPath, "the student's checkpoint directory to start from"),
           enum_option<std::string>("mode", {{"traces", "traces"}, {"logits", "logits"}, {"on_policy", "on_policy"}}, "logits",
                                    "traces (SFT on teacher samples), logits (forward KL), on_policy (reverse KL)"),
           data_option(), prompt_option(),
           computed_option("data_completion", kTemplate | kFunction, "teacher samples",
                           "logits: the dataset's completions (template or function) instead of the teacher's samples"),
           computed_option("rules", kPath, "none", "reward rules: keep's filter (traces), the reward (on_policy)"),
           computed_option("keep", kTable | kFunction, "all", "traces: {rule = minimum, ...} or a function(sample) -> true to keep"),
           option("n", kInteger, sample.samples_per_prompt, "teacher samples per prompt (traces, logits)"),
           option("temperature", kNumber, sample.sampling.temperature, "sampling temperature (teacher; on_policy: student)"),
           option("top_p", kNumber, sample.sampling.top_p, "nucleus filtering"),
           option("max_new_tokens", kInteger, sample.stop.max_new_tokens, "completion length limit"), stop_option(),
           option("steps", kInteger, kd.steps, "optimizer steps (on_policy: GRPO steps); 0 means `epochs` passes"),
           option("epochs", kInteger, kd.epochs, "passes over the examples (on_policy: over the prompts)"),
           option("batch_size", kInteger, kd.batch_size, "examples per optimizer step (traces, logits)"),
           option("micro_batch_size", kInteger, kd.micro_batch_size, "sequences per forward (logits, on_policy)"),
           option("max_len", kInteger, kd.max_len, "tokens of prompt + completion - 1 per row (traces, logits)"),
           option("distill_temperature", kNumber, kd.temperature, "logits: tau of both distributions (loss scaled by tau^2)"),
           option("top_k", kInteger, kd.top_k, "logits: the teacher's top k tokens plus the rest's mass; 0 = full vocabulary"),
           option("prompts_per_step", kInteger, 8, "on_policy: prompts per step"),
           option("group_size", kInteger, grpo.group_size, "on_policy: G student samples per prompt"),
           option("distill_coef", kNumber, 1.0, "on_policy: weight of the per-token reverse KL to the teacher"),
           option("reward_coef", kNumber, 0.0, "on_policy: weight of the rules' group advantage (0 = pure distillation)"),
           option("lr", kNumber, kd.lr.peak, "peak learning rate"),
           option("warmup", kInteger, kd.lr.warmup_steps, "linear warm-up steps"),
           option("min_lr_ratio", kNumber, kd.lr.floor_ratio, "cosine decay to min_lr_ratio * lr (traces, logits)"),
           option("weight_decay", kNumber, kd.adamw.weight_decay, "AdamW weight decay"),
           option("max_grad_norm", kNumber, kd.max_grad_norm, "gradient clipping"),
           option("seed", kInteger, kd.seed, "data order and sampling"),
           option("out", kString, "distill", "output directory")}};
}

// Every declared default of a C++ config field below is read from a default-constructed config.
std::vector<StageSpec> declare_stages() {
  const PretrainConfig pretrain;
  const SftConfig sft;
  const GrpoConfig grpo;
  const SampleConfig sample;
  const EvalConfig eval;
  std::vector<StageSpec> stages = {
      {"init",
       {required_option("config", kPath | kTable, "a config.json path or a table of its keys"),
        required_option("tokenizer", kPath | kTable, "a tokenizer.json path or {chars = ..., specials = {...}}"),
        option("seed", kInteger, 0, "seeds the initial weights"),
        option("out", kString, "init", "output directory (relative: inside the run directory)")}},
      {"pretrain",
       {required_option("model", kPath, "checkpoint directory to start from"),
        required_option("data", kPath | kTable, "a JSONL path or a Lua list of records with a text field"),
        option("field", kString, "text", "the record field holding the document"),
        option("steps", kInteger, pretrain.steps, "optimizer steps"),
        option("batch_size", kInteger, pretrain.batch_size, "windows per step"),
        option("seq_len", kInteger, pretrain.seq_len, "tokens per window"),
        option("lr", kNumber, pretrain.lr.peak, "peak learning rate"),
        computed_option("warmup", kInteger, "min(20, steps / 10)", "linear warm-up steps"),
        option("min_lr_ratio", kNumber, pretrain.lr.floor_ratio, "cosine decay to min_lr_ratio * lr at the last step"),
        option("weight_decay", kNumber, pretrain.adamw.weight_decay, "AdamW weight decay"),
        option("seed", kInteger, pretrain.seed, "window sampling"),
        option("out", kString, "pretrain", "output directory")}},
      {"sft",
       {required_option("model", kPath, "checkpoint directory to start from"), data_option(), prompt_option(),
        computed_option("completion", kTemplate | kFunction, "record's `completion`",
                        "a template or a function of the record, like prompt"),
        template_option(),
        option("eos", kBoolean, true, "append EOS to each completion"),
        option("steps", kInteger, sft.steps, "optimizer steps; 0 means `epochs` passes over the data"),
        option("epochs", kInteger, sft.epochs, "passes over the data"),
        option("batch_size", kInteger, sft.batch_size, "examples per optimizer step"),
        option("max_len", kInteger, sft.max_len, "tokens of prompt + completion - 1 per row"),
        option("pack", kBoolean, sft.pack, "lay several examples end to end in one row"),
        option("lr", kNumber, sft.lr.peak, "peak learning rate"),
        option("warmup", kInteger, sft.lr.warmup_steps, "linear warm-up steps"),
        option("min_lr_ratio", kNumber, sft.lr.floor_ratio, "cosine decay to min_lr_ratio * lr"),
        option("weight_decay", kNumber, sft.adamw.weight_decay, "AdamW weight decay"),
        option("max_grad_norm", kNumber, sft.max_grad_norm, "gradient clipping"),
        option("seed", kInteger, sft.seed, "data order"),
        option("out", kString, "sft", "output directory")}},
      {"train",
       {required_option("model", kPath, "checkpoint directory to start from"), data_option(),
        required_option("rules", kPath, "reward rules file"), prompt_option(), template_option(),
        option("steps", kInteger, 100, "GRPO steps"),
        option("prompts_per_step", kInteger, 8, "prompts per step"),
        option("group_size", kInteger, grpo.group_size, "G completions per prompt"),
        option("lr", kNumber, grpo.lr.peak, "constant learning rate after the warm-up"),
        option("warmup", kInteger, grpo.lr.warmup_steps, "linear warm-up steps"),
        option("weight_decay", kNumber, grpo.adamw.weight_decay, "AdamW weight decay"),
        option("max_grad_norm", kNumber, grpo.max_grad_norm, "gradient clipping"),
        option("max_new_tokens", kInteger, grpo.stop.max_new_tokens, "completion length limit"),
        option("temperature", kNumber, grpo.sampling.temperature, "rollout sampling temperature"),
        option("top_p", kNumber, grpo.sampling.top_p, "nucleus filtering"), stop_option(),
        option("kl_coef", kNumber, grpo.objective.policy.kl_coef, "beta of the k3 KL to the reference model"),
        option("clip_low", kNumber, grpo.objective.policy.clip_low, "epsilon_low"),
        option("clip_high", kNumber, grpo.objective.policy.clip_high, "epsilon_high (DAPO clip-higher)"),
        enum_option("loss_aggregation", loss_aggregation_names(), grpo.objective.aggregation,
                    "how per-token losses become one number"),
        enum_option("advantage_scaling", advantage_scaling_names(), grpo.advantages.scaling,
                    "what a group's rewards are divided by"),
        option("epochs", kInteger, grpo.epochs, "passes over a step's samples"),
        option("minibatches", kInteger, grpo.minibatches, "optimizer steps per pass"),
        option("micro_batch_size", kInteger, grpo.micro_batch_size, "sequences per forward"),
        option("mask_truncated", kBoolean, grpo.mask_truncated, "leave truncated completions out of the loss"),
        option("overlong_buffer", kInteger, grpo.overlong_buffer, "DAPO soft overlong punishment: buffer tokens"),
        option("overlong_penalty", kNumber, grpo.overlong_penalty, "DAPO soft overlong punishment: largest penalty"),
        option("dynamic_sampling", kBoolean, grpo.drop_zero_variance_groups, "drop groups whose rewards are all equal"),
        option("routing_replay", kBoolean, grpo.routing_replay, "MoE: the update reuses the rollout's experts"),
        option("router_bias_update", kNumber, grpo.router_bias_update, "MoE: gamma of the router bias update"),
        option("reference_reset_every", kInteger, grpo.reference_reset_every, "reset the reference model every N steps"),
        option("sample_every", kInteger, 10, "period of the samples log"),
        option("checkpoint_every", kInteger, 50, "checkpoint period"),
        option("keep_checkpoints", kInteger, 2, "checkpoints kept"),
        option("seed", kInteger, grpo.seed, "sampling and data order"),
        option("out", kString, "train", "output directory")}},
      {"sample",
       {required_option("model", kPath, "checkpoint directory; with `endpoint`, the served model's name"), data_option(),
        prompt_option(), template_option(),
        computed_option("rules", kPath, "none", "reward rules file; without it nothing is scored"),
        option("n", kInteger, sample.samples_per_prompt, "completions per prompt"),
        option("temperature", kNumber, sample.sampling.temperature, "0 = greedy"),
        option("top_p", kNumber, sample.sampling.top_p, "nucleus filtering"),
        option("top_k", kInteger, sample.sampling.top_k, "top-k filtering (0 = off)"),
        option("max_new_tokens", kInteger, sample.stop.max_new_tokens, "completion length limit"), stop_option(),
        option("seed", kInteger, sample.seed, "prompt i samples with seed + i"),
        option("out", kString, "samples.jsonl", "output file"),
        // A teacher behind an OpenAI-compatible endpoint instead of a checkpoint (api/client/endpoint_sampler.h).
        computed_option("endpoint", kString, "none", "base URL of an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1"),
        computed_option("api_key_env", kString, "none", "endpoint: the environment variable holding the API key"),
        enum_option<std::string>("api", {{"chat", "chat"}, {"completions", "completions"}}, "chat",
                                 "endpoint: chat (/chat/completions) or completions (/completions)"),
        option("concurrency", kInteger, 8, "endpoint: requests in flight"),
        option("timeout", kNumber, 600.0, "endpoint: seconds a request may wait for the server"),
        option("max_retries", kInteger, 5, "endpoint: further tries of a failed request (429, 5xx, timeouts)"),
        // Its default (api::EndpointSamplerOptions) holds newlines, which a docs table cell cannot: shown as Lua writes it.
        computed_option("reasoning_template", kString, R"(`"<think>\n{reasoning}\n</think>\n\n{content}"`)",
                        "endpoint: the completion when the server returns reasoning_content")}},
      {"eval",
       {required_option("model", kPath, "checkpoint directory"), data_option(),
        required_option("rules", kPath, "reward rules file"), prompt_option(), template_option(),
        option("n", kInteger, eval.samples_per_prompt, "samples per prompt"),
        computed_option("k", kInteger, "n", "the second pass@k reported"),
        option("temperature", kNumber, eval.sampling.temperature, "0 = greedy"),
        option("top_p", kNumber, eval.sampling.top_p, "nucleus filtering"),
        option("max_new_tokens", kInteger, eval.stop.max_new_tokens, "completion length limit"), stop_option(),
        option("seed", kInteger, eval.seed, "prompt i samples with seed + i")}},
      distill_stage(sample, grpo),
  };
  const auto sample_stage = std::find_if(stages.begin(), stages.end(), [](const StageSpec& st) { return st.stage == "sample"; });
  StageSpec rejection = rejection_sample_stage(*sample_stage);
  stages.push_back(std::move(rejection));
  return stages;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The whole of `text` as a finite or infinite number (not NaN); false when anything is left over.
bool parse_number(const std::string& text, double* value) {
  if (text.empty()) return false;
  char* end = nullptr;
  *value = std::strtod(text.c_str(), &end);
  return end == text.c_str() + text.size() && !std::isnan(*value);
}

}  // namespace

const OptionSpec* StageSpec::find(const std::string& name) const {
  for (const OptionSpec& o : options)
    if (o.name == name) return &o;
  return nullptr;
}

std::vector<std::string> StageSpec::names() const {
  std::vector<std::string> out;
  for (const OptionSpec& o : options) out.push_back(o.name);
  return out;
}

const std::vector<StageSpec>& stage_specs() {
  static const std::vector<StageSpec> specs = declare_stages();
  return specs;
}

const StageSpec& stage_spec(const std::string& stage) {
  for (const StageSpec& s : stage_specs())
    if (s.stage == stage) return s;
  throw std::logic_error("no option declarations for stage " + stage);
}

std::string quoted_list(const std::vector<std::string>& values) {
  std::vector<std::string> quoted;
  for (const std::string& v : values) quoted.push_back("\"" + v + "\"");
  return fmt::format("{}", fmt::join(quoted, ", "));
}

std::string describe_types(const OptionSpec& spec) {
  std::vector<std::string> kinds;
  if (spec.types & kNumber) kinds.push_back("a number");
  if (spec.types & kInteger) kinds.push_back("an integer");
  if (spec.types & kBoolean) kinds.push_back("true or false");
  if (spec.types & kString) kinds.push_back("a string");
  if (spec.types & kEnum) kinds.push_back("one of " + quoted_list(spec.allowed));
  if (spec.types & kPath) kinds.push_back("a path");
  if (spec.types & kTemplate) kinds.push_back("a template");
  if (spec.types & kTable) kinds.push_back("a table");
  if (spec.types & kFunction) kinds.push_back("a function");
  return fmt::format("{}", fmt::join(kinds, " or "));
}

std::string closest(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = static_cast<size_t>(-1);
  for (const std::string& c : candidates) {
    const size_t d = edit_distance(word, c);
    if (d < best_distance) best = c, best_distance = d;
  }
  return best;
}

json parse_override(const std::string& stage, const OptionSpec& spec, const std::string& value) {
  auto bad = [&] {
    return std::invalid_argument(fmt::format("--set {}.{}={}: option \"{}\" of grpo.{} takes {}, got \"{}\"", stage,
                                             spec.name, value, spec.name, stage, describe_types(spec), value));
  };
  double number = 0;
  if (spec.types & kInteger) {
    if (!parse_number(value, &number) || !std::isfinite(number) || number != std::floor(number)) throw bad();
    return static_cast<int64_t>(number);
  }
  if (spec.types & kNumber) {
    if (!parse_number(value, &number)) throw bad();
    return number;
  }
  if (spec.types & kBoolean) {
    if (value == "true" || value == "1") return true;
    if (value == "false" || value == "0") return false;
    throw bad();
  }
  if (spec.types & kEnum) {
    if (std::find(spec.allowed.begin(), spec.allowed.end(), value) == spec.allowed.end()) throw bad();
    return value;
  }
  if (spec.types & (kString | kPath | kTemplate)) return value;
  throw std::invalid_argument(fmt::format("--set {}.{}: option \"{}\" of grpo.{} takes {}, which the command line "
                                          "cannot give; set it in the script",
                                          stage, spec.name, spec.name, stage, describe_types(spec)));
}

std::map<std::string, json> parse_overrides(const std::map<std::string, std::string>& overrides) {
  std::vector<std::string> stages;
  for (const StageSpec& s : stage_specs()) stages.push_back(s.stage);
  std::map<std::string, json> parsed;
  for (const auto& [key, value] : overrides) {
    const size_t dot = key.find('.');
    if (dot == std::string::npos)
      throw std::invalid_argument(fmt::format("--set {}={}: expected stage.key=value, e.g. train.lr=1e-6", key, value));
    const std::string stage = key.substr(0, dot), name = key.substr(dot + 1);
    const StageSpec* spec = nullptr;
    for (const StageSpec& s : stage_specs())
      if (s.stage == stage) spec = &s;
    if (!spec)
      throw std::invalid_argument(fmt::format("--set {}={}: there is no stage \"{}\" (did you mean \"{}\"?); the stages "
                                              "are {}",
                                              key, value, stage, closest(stage, stages), fmt::join(stages, ", ")));
    const OptionSpec* option = spec->find(name);
    if (!option)
      throw std::invalid_argument(fmt::format("--set {}={}: grpo.{} has no option \"{}\" (did you mean \"{}\"?)", key,
                                              value, stage, name, closest(name, spec->names())));
    parsed[key] = parse_override(stage, *option, value);
  }
  return parsed;
}

}  // namespace grpo
