#include <fmt/core.h>
#include <lua.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "policy/checkpoint.h"
#include "policy/model_size.h"
#include "rewards/rule_set.h"
#include "rl/evaluation.h"
#include "rl/experiment/experiment_stages.h"
#include "rl/grpo_trainer.h"
#include "rl/experiment/lua_json.h"
#include "rl/experiment/metrics_log.h"
#include "rl/pretrain.h"
#include "rl/experiment/progress.h"
#include "rl/experiment/shuffled_cursor.h"
#include "rl/experiment/stage_options.h"
#include "rl/experiment/train_checkpoint.h"
#include "rl/experiment/stage_configs.h"
#include "rewards/lua_trampoline.h"

// The stages that make and train models: grpo.init, grpo.pretrain, grpo.train (GRPO), grpo.eval.
// Each reads its options into a config (stage_configs.h), opens its stage record, and does its work;
// errors are thrown (LuaError for the script's mistakes), never raised as Lua errors here.
namespace grpo {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// grpo.init's tokenizer: a tokenizer.json path, or {chars = ..., specials = {...}} for a character-level one.
Tokenizer init_tokenizer(StageOptions& o) {
  lua_State* L = o.lua();
  if (o.push("tokenizer") == LUA_TSTRING) {
    const std::string path = lua_tostring(L, -1);
    lua_pop(L, 1);
    return Tokenizer::from_file(path);
  }
  json spec = lua_to_json(L, -1);
  lua_pop(L, 1);
  if (!spec.contains("chars") || !spec["chars"].is_string()) o.fail("tokenizer.chars must be a string");
  std::vector<std::string> specials = {"<pad>", "<bos>", "<eos>"};
  if (spec.contains("specials")) {
    if (!spec["specials"].is_array()) o.fail("tokenizer.specials must be a list of strings");
    specials.clear();
    for (const json& t : spec["specials"]) {
      if (!t.is_string()) o.fail("tokenizer.specials must be a list of strings");
      specials.push_back(t.get<std::string>());
    }
  }
  return Tokenizer::make_char_level(spec["chars"].get<std::string>(), specials);
}

// grpo.init's model config: a config.json path or a table of its keys; the tokenizer fills in the
// vocabulary size and special tokens the config leaves out.
ModelConfig init_model_config(StageOptions& o, const Tokenizer& tok) {
  lua_State* L = o.lua();
  json config;
  if (o.push("config") == LUA_TSTRING) {
    const std::string path = lua_tostring(L, -1);
    lua_pop(L, 1);
    std::ifstream in(path);
    if (!in) o.fail(fmt::format("cannot open config {}", path));
    try {
      config = json::parse(in);
    } catch (const json::parse_error& e) {
      o.fail(fmt::format("config {} is not valid JSON: {}", path, e.what()));
    }
  } else {
    config = lua_to_json(L, -1);
    lua_pop(L, 1);
  }
  if (!config.contains("vocab_size")) config["vocab_size"] = tok.vocab_size();
  if (!config.contains("bos_token_id") && tok.bos_id() >= 0) config["bos_token_id"] = tok.bos_id();
  if (!config.contains("eos_token_id") && tok.eos_id() >= 0) config["eos_token_id"] = tok.eos_id();
  ModelConfig c = parse_model_config(config.dump(), "grpo.init config");
  if (c.vocab_size < tok.vocab_size())
    o.fail(fmt::format("vocab_size {} is smaller than the tokenizer's {}", c.vocab_size, tok.vocab_size()));
  return c;
}

// What grpo.train keeps in its output directory while it runs: metrics.jsonl (a line per step) with
// TensorBoard event files beside it (metrics_log.h), samples.jsonl (the completions of every
// sample_every-th step, as grpo.sample writes records, so `grpo rewards --in` rescores them) and
// checkpoints/. Data parallel: every rank resumes from the same checkpoint; only rank 0 writes.
class TrainOutputs {
 public:
  TrainOutputs(std::string out, bool writer)
      : out_(std::move(out)), samples_path_(out_ + "/samples.jsonl"), checkpoints_(out_ + "/checkpoints"), writer_(writer) {
    fs::create_directories(out_);
  }

  // Restores the trainer and the data cursor from the newest checkpoint, when there is one, and cuts the
  // logs back to what had been written when it was saved, so that no line appears twice; then opens the
  // logs for appending.
  void resume(GrpoTrainer& trainer, ShuffledCursor& cursor) {
    int64_t metrics_bytes = 0, samples_bytes = 0;
    if (std::vector<TrainCheckpoint> saved = list_train_checkpoints(checkpoints_); !saved.empty()) {
      const json state = load_train_checkpoint(saved.back().directory, trainer);
      cursor.restore(state.at("data"));
      metrics_bytes = state.at("metrics_bytes").get<int64_t>();
      samples_bytes = state.at("samples_bytes").get<int64_t>();
      fmt::print(stderr, "[train] resuming at step {} from {}\n", trainer.steps_done(), saved.back().directory);
    }
    if (!writer_) return;
    metrics_ = std::make_unique<MetricsLog>(out_, metrics_bytes);
    truncate_file(samples_path_, samples_bytes);
    samples_.open(samples_path_, std::ios::app);
  }

  // Step `step` (1-based) just finished.
  void log_step(int64_t step, const StepResult& r, int64_t sample_every) {
    if (!writer_) return;
    metrics_->write(step, r.metrics);
    if (sample_every <= 0 || (step - 1) % sample_every != 0) return;
    for (const ScoredSample& s : r.samples) samples_ << sample_record(step, s).dump() << "\n";
  }

  // checkpoints/step-N with the data cursor and how far the logs had been written (train_checkpoint.h).
  void save_checkpoint(GrpoTrainer& trainer, const Tokenizer& tok, const ShuffledCursor& cursor, int64_t keep) {
    if (!writer_) return;
    samples_.flush();
    if (!samples_) throw LuaError(fmt::format("grpo.train: cannot write {}", samples_path_));
    const json state = {{"data", cursor.state()},
                        {"metrics_bytes", metrics_->bytes()},
                        {"samples_bytes", static_cast<int64_t>(fs::file_size(samples_path_))}};
    save_train_checkpoint(checkpoints_, trainer, tok, state, keep);
  }

 private:
  // The dataset record's fields, then what grpo.sample adds (sample_dataset.h), then the GRPO view.
  static json sample_record(int64_t step, const ScoredSample& s) {
    json out = s.record.is_object() ? s.record : json::object();
    out["prompt"] = s.prompt;
    out["completion"] = s.completion;
    out["finish_reason"] = s.finish_reason;
    out["completion_tokens"] = s.completion_tokens;
    out["prompt_index"] = s.prompt_index;
    json rewards = json::object();
    for (const auto& [rule, value] : s.rule_values) rewards[rule] = value;
    out["rewards"] = rewards;
    out["reward"] = s.reward;
    if (!s.rule_failures.empty()) {
      json failures = json::object();
      for (const auto& [rule, message] : s.rule_failures) failures[rule] = message;
      out["reward_failures"] = failures;
    }
    out["advantage"] = s.advantage;
    out["step"] = step;
    return out;
  }

  std::string out_, samples_path_, checkpoints_;
  bool writer_;
  std::unique_ptr<MetricsLog> metrics_;
  std::ofstream samples_;
};

// The values of a GRPO step the progress line shows, those the run has (kl only with a reference model).
ProgressValues train_progress_values(const StepMetrics& metrics) {
  ProgressValues shown;
  for (const auto& [name, label] : {std::pair<const char*, const char*>{"reward", "reward"}, {"accuracy", "accuracy"},
                                    {"kl", "kl"}, {"completion_length/mean", "len"}, {"tokens_per_second/rollout", "tok/s"}})
    if (metrics.count(name)) shown.push_back({label, metrics.at(name)});
  return shown;
}

// Each rule's share of failed calls in the step ("rewards/<rule>/failure_rate"), for the summary table.
ProgressValues rule_failure_values(const StepMetrics& metrics) {
  ProgressValues rates;
  const std::string prefix = "rewards/", suffix = "/failure_rate";
  for (const auto& [name, value] : metrics)
    if (name.size() > prefix.size() + suffix.size() && name.compare(0, prefix.size(), prefix) == 0 &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
      rates.push_back({name.substr(prefix.size(), name.size() - prefix.size() - suffix.size()) + " failures", value});
  return rates;
}

}  // namespace

void save_model(lua_State* L, CausalLM& model, const Tokenizer& tok, const std::string& dir) {
  SaveOptions options;
  const std::string& requested = state_of(L).options.save_dtype;
  if (requested == "bfloat16") {
    options.dtype = DType::BF16;
  } else if (requested == "auto") {  // the weights as they train: bf16 models save bf16, losing nothing
    options.dtype = state_of(L).options.placement.dtype == torch::kBFloat16 ? DType::BF16 : DType::F32;
  }
  save_checkpoint(model, dir, options);
  tok.save(dir + "/tokenizer.json");
}

namespace {

// The end of a stage that makes a model: rank 0 saves it to `out`, every rank waits until the files are
// there, and the stage record keeps `out` as the result the script receives.
int return_saved_model(lua_State* L, CausalLM& model, const Tokenizer& tok, StageRecord& record, const std::string& out) {
  if (writes_outputs(L)) save_model(L, model, tok, out);
  wait_for_outputs(L);
  record.mark_complete(out);
  lua_pushstring(L, out.c_str());
  return 1;
}

}  // namespace

int stage_init(lua_State* L) {
  StageOptions o(L, "init");
  Tokenizer tok = init_tokenizer(o);
  const ModelConfig c = init_model_config(o, tok);
  const uint64_t seed = static_cast<uint64_t>(o.integer("seed"));
  const std::string out = o.output("out");
  StageRecord record = begin_stage(o, &tok);
  if (push_recorded_result(L, record)) return 1;
  torch::manual_seed(seed);
  CausalLM model(c);
  fmt::print(stderr, "[init] {} model, {:.2f}M parameters ({:.2f}M activated per token) -> {}\n", c.model_type,
             count_parameters(c).total / 1e6, count_parameters(c).activated_per_token / 1e6, out);
  return return_saved_model(L, model, tok, record, out);
}

int stage_pretrain(lua_State* L) {
  StageOptions o(L, "pretrain");
  const PretrainStageOptions s = pretrain_stage_options(o);
  std::vector<std::string> docs;
  for (const json& r : stage_records(o, "data")) {
    if (!r.contains(s.field) || !r[s.field].is_string()) o.fail(fmt::format("a record has no string field \"{}\"", s.field));
    docs.push_back(r[s.field].get<std::string>());
  }
  StageRecord record = begin_stage(o);
  if (push_recorded_result(L, record)) return 1;
  Tokenizer tok = Tokenizer::from_file(s.model);
  CausalLM model = load_placed_model(L, s.model);
  StageProgress progress("pretrain", s.config.steps);
  std::unique_ptr<MetricsLog> metrics;  // rank 0's
  if (writes_outputs(L)) metrics = std::make_unique<MetricsLog>(s.out);
  const double loss = pretrain(model, tok, docs, s.config, [&](const PretrainProgress& p) {
    if (metrics)
      metrics->write(p.step + 1, {{"loss", p.loss}, {"grad_norm", p.grad_norm}, {"learning_rate", p.learning_rate},
                                  {"tokens_per_second", p.tokens_per_second}});
    progress.update(p.step + 1, {{"loss", p.loss}, {"lr", p.learning_rate}, {"tok/s", p.tokens_per_second}});
  });
  progress.finish();
  fmt::print(stderr, "[pretrain] final loss {:.4f} -> {}\n", loss, s.out);
  return return_saved_model(L, model, tok, record, s.out);
}

int stage_train(lua_State* L) {
  StageOptions o(L, "train");
  TrainStageOptions s = train_stage_options(o);
  StageRecord record = begin_stage(o);
  if (push_recorded_result(L, record)) return 1;

  // The trainer, its prompts, and the data order: deterministic passes, reshuffled each epoch with the run seed.
  Tokenizer tok = Tokenizer::from_file(s.model);
  CausalLM model = load_placed_model(L, s.model);
  if (tok.eos_id() >= 0) s.config.stop.stop_ids.push_back(tok.eos_id());
  const std::vector<PromptExample> prompts = stage_prompts(o, tok);
  if (prompts.empty()) o.fail("no data");
  s.config.distributed = state_of(L).options.distributed;
  GrpoTrainer trainer(model, tok, rewards::RuleSet::from_file(s.rules), s.config);
  ShuffledCursor cursor(prompts.size(), s.config.seed);
  auto next_prompts = [&](int64_t n) {
    std::vector<PromptExample> batch;
    for (int64_t i = 0; i < n; ++i) batch.push_back(prompts[cursor.next()]);
    return batch;
  };

  // Continue from the newest checkpoint, if an earlier run left one.
  TrainOutputs outputs(s.out, writes_outputs(L));
  outputs.resume(trainer, cursor);

  // The steps: log each, checkpoint every checkpoint_every (the stage record is then resumable).
  StageProgress progress("train", s.steps);
  progress.start_at(trainer.steps_done());
  StepMetrics last;
  for (int64_t step = trainer.steps_done(); step < s.steps; ++step) {
    StepResult r = trainer.step(next_prompts(s.prompts_per_step), next_prompts);
    const int64_t done = step + 1;  // steps are counted from 1 in the logs, as on the progress line
    for (const std::string& warning : r.warnings) progress.note("warning: " + warning);
    outputs.log_step(done, r, s.sample_every);
    progress.update(done, train_progress_values(r.metrics));
    progress.tally(rule_failure_values(r.metrics));
    last = r.metrics;
    if (s.checkpoint_every > 0 && done % s.checkpoint_every == 0 && done < s.steps) {
      outputs.save_checkpoint(trainer, tok, cursor, s.keep_checkpoints);
      wait_for_outputs(L);
      record.mark_resumable();
    }
  }
  progress.finish();

  fmt::print(stderr, "[train] {} steps, final reward {:.3f} -> {}\n", s.steps, last["reward"], s.out);
  return return_saved_model(L, trainer.policy(), tok, record, s.out);
}

int stage_eval(lua_State* L) {
  StageOptions o(L, "eval");
  EvalStageOptions s = eval_stage_options(o);
  StageRecord record = begin_stage(o);
  if (push_recorded_result(L, record)) return 1;  // a finished evaluation loads nothing

  Tokenizer tok = Tokenizer::from_file(s.model);
  CausalLM model = load_placed_model(L, s.model);
  if (tok.eos_id() >= 0) s.config.stop.stop_ids.push_back(tok.eos_id());
  const std::vector<PromptExample> prompts = stage_prompts(o, tok);
  rewards::RuleSet rules = rewards::RuleSet::from_file(s.rules);
  const std::map<std::string, double> m = evaluate(model, tok, rules, prompts, s.config);
  record.mark_complete(json(m));
  std::string line;
  for (const auto& [k, v] : m) line += fmt::format(" {}={:.3f}", k, v);
  fmt::print(stderr, "[eval] {} ({} prompts x {}):{}\n", s.model, prompts.size(), s.config.samples_per_prompt, line);
  lua_createtable(L, 0, static_cast<int>(m.size()));
  for (const auto& [k, v] : m) {
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k.c_str());
  }
  return 1;
}

}  // namespace grpo
