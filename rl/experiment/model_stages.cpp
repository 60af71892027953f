#include <fmt/core.h>
#include <lua.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "policy/checkpoint.h"
#include "policy/model_size.h"
#include "rewards/rule_set.h"
#include "rl/evaluation.h"
#include "rl/experiment/experiment_stages.h"
#include "rl/grpo_trainer.h"
#include "rl/experiment/lua_json.h"
#include "rl/pretrain.h"
#include "rl/experiment/progress.h"
#include "rl/experiment/shuffled_cursor.h"
#include "rl/experiment/stage_options.h"
#include "rl/experiment/train_checkpoint.h"

// The stages that make and train models: grpo.init, grpo.pretrain, grpo.train (GRPO), grpo.eval.
namespace grpo {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

LossAggregation parse_aggregation(lua_State* L, const std::string& name) {
  if (name == "token-mean") return LossAggregation::TokenMean;
  if (name == "seq-mean-token-mean") return LossAggregation::SeqMeanTokenMean;
  if (name == "seq-mean-token-sum") return LossAggregation::SeqMeanTokenSum;
  if (name == "seq-mean-token-sum-norm") return LossAggregation::SeqMeanTokenSumNorm;
  luaL_error(L, "grpo.train: loss_aggregation \"%s\" is not one of token-mean, seq-mean-token-mean, seq-mean-token-sum, "
                "seq-mean-token-sum-norm", name.c_str());
  return LossAggregation::TokenMean;
}

}  // namespace

void save_model(CausalLM& model, const Tokenizer& tok, const std::string& dir) {
  save_checkpoint(model, dir);
  tok.save(dir + "/tokenizer.json");
}

int stage_init(lua_State* L) {
  StageOptions o(L, "init", {"config", "tokenizer", "seed", "out"});
  Tokenizer tok = [&] {
    int type = o.push("tokenizer");
    if (type == LUA_TSTRING) {
      Tokenizer t = Tokenizer::from_file(lua_tostring(L, -1));
      lua_pop(L, 1);
      return t;
    }
    if (type != LUA_TTABLE) luaL_error(L, "grpo.init: option \"tokenizer\" must be a path or {chars = ..., specials = {...}}");
    json spec = lua_to_json(L, -1);
    lua_pop(L, 1);
    if (!spec.contains("chars") || !spec["chars"].is_string()) luaL_error(L, "grpo.init: tokenizer.chars must be a string");
    std::vector<std::string> specials = {"<pad>", "<bos>", "<eos>"};
    if (spec.contains("specials")) specials = spec["specials"].get<std::vector<std::string>>();
    return Tokenizer::make_char_level(spec["chars"].get<std::string>(), specials);
  }();
  json config;
  int type = o.push("config");
  if (type == LUA_TSTRING) {
    std::ifstream in(lua_tostring(L, -1));
    if (!in) luaL_error(L, "grpo.init: cannot open config %s", lua_tostring(L, -1));
    config = json::parse(in);
  } else if (type == LUA_TTABLE) {
    config = lua_to_json(L, -1);
  } else {
    luaL_error(L, "grpo.init: option \"config\" (a config.json path or a table) is required");
  }
  lua_pop(L, 1);
  if (!config.contains("vocab_size")) config["vocab_size"] = tok.vocab_size();
  if (!config.contains("bos_token_id") && tok.bos_id() >= 0) config["bos_token_id"] = tok.bos_id();
  if (!config.contains("eos_token_id") && tok.eos_id() >= 0) config["eos_token_id"] = tok.eos_id();
  ModelConfig c = parse_model_config(config.dump(), "grpo.init config");
  if (c.vocab_size < tok.vocab_size())
    luaL_error(L, "grpo.init: vocab_size %d is smaller than the tokenizer's %d", static_cast<int>(c.vocab_size), tok.vocab_size());
  const uint64_t seed = static_cast<uint64_t>(o.integer("seed", 0));
  std::string out = output_path(L, o.string("out", "init"));
  StageRecord record = begin_stage(o);
  if (push_recorded_result(L, record)) return 1;
  torch::manual_seed(seed);
  CausalLM model(c);
  if (writes_outputs(L)) save_model(model, tok, out);
  wait_for_outputs(L);
  record.mark_complete(out);
  fmt::print(stderr, "[init] {} model, {:.2f}M parameters ({:.2f}M activated per token) -> {}\n", c.model_type,
             count_parameters(c).total / 1e6, count_parameters(c).activated_per_token / 1e6, out);
  lua_pushstring(L, out.c_str());
  return 1;
}

int stage_pretrain(lua_State* L) {
  StageOptions o(L, "pretrain", {"model", "data", "field", "steps", "batch_size", "seq_len", "lr", "warmup", "min_lr_ratio",
                                 "weight_decay", "seed", "out"});
  std::string model_dir = o.required_string("model");
  std::string field = o.string("field", "text");
  std::vector<std::string> docs;
  for (const json& r : stage_records(o, "data")) {
    if (!r.contains(field) || !r[field].is_string()) luaL_error(L, "grpo.pretrain: a record has no string field \"%s\"", field.c_str());
    docs.push_back(r[field].get<std::string>());
  }
  PretrainConfig c;
  c.steps = o.integer("steps", 300);
  c.batch_size = o.integer("batch_size", 16);
  c.seq_len = o.integer("seq_len", 128);
  // Default warm-up: 10% of the steps, at most 20.
  c.lr = {o.number("lr", 3e-3), o.integer("warmup", std::min<int64_t>(20, c.steps / 10)), LrDecay::Cosine, c.steps,
          o.number("min_lr_ratio", 0.1)};
  c.adamw.weight_decay = o.number("weight_decay", 0.1);
  c.seed = static_cast<uint64_t>(o.integer("seed", 0));
  std::string out = output_path(L, o.string("out", "pretrain"));
  StageRecord record = begin_stage(o);
  if (push_recorded_result(L, record)) return 1;
  Tokenizer tok = Tokenizer::from_file(model_dir);
  CausalLM model = load_placed_model(L, model_dir);
  StageProgress progress("pretrain", c.steps);
  double loss = pretrain(model, tok, docs, c, [&](const PretrainProgress& p) {
    progress.update(p.step + 1, {{"loss", p.loss}, {"lr", p.learning_rate}, {"tok/s", p.tokens_per_second}});
  });
  progress.finish();
  if (writes_outputs(L)) save_model(model, tok, out);
  wait_for_outputs(L);
  record.mark_complete(out);
  fmt::print(stderr, "[pretrain] final loss {:.4f} -> {}\n", loss, out);
  lua_pushstring(L, out.c_str());
  return 1;
}

int stage_train(lua_State* L) {
  StageOptions o(L, "train", {"model", "data", "prompt", "rules", "steps", "prompts_per_step", "group_size", "lr", "warmup",
                              "max_new_tokens", "temperature", "top_p", "kl_coef", "clip_low", "clip_high", "epochs",
                              "minibatches", "micro_batch_size", "loss_aggregation", "advantage_scaling", "mask_truncated",
                              "overlong_buffer", "overlong_penalty", "dynamic_sampling", "routing_replay",
                              "router_bias_update", "reference_reset_every", "max_grad_norm", "weight_decay", "stop", "seed",
                              "sample_every", "checkpoint_every", "keep_checkpoints", "out"});
  const std::string model_dir = o.required_string("model");
  const std::string rules_path = o.required_string("rules");
  GrpoConfig c;
  const int64_t steps = o.integer("steps", 100), per_step = o.integer("prompts_per_step", 8);
  c.group_size = o.integer("group_size", 8);
  c.seed = static_cast<uint64_t>(o.integer("seed", 0));
  c.sampling.temperature = o.number("temperature", 1.0);
  c.sampling.top_p = o.number("top_p", 1.0);
  c.stop.max_new_tokens = o.integer("max_new_tokens", 256);
  if (o.has("stop")) c.stop.stop_strings.push_back(o.string("stop", ""));
  c.objective.policy.kl_coef = o.number("kl_coef", 0.0);
  c.objective.policy.clip_low = o.number("clip_low", 0.2);
  c.objective.policy.clip_high = o.number("clip_high", 0.28);
  c.objective.aggregation = parse_aggregation(L, o.string("loss_aggregation", "token-mean"));
  std::string scaling = o.string("advantage_scaling", "group");
  c.advantages.scaling = scaling == "none" ? AdvantageScaling::None : scaling == "batch" ? AdvantageScaling::Batch : AdvantageScaling::Group;
  c.epochs = o.integer("epochs", 1);
  c.minibatches = o.integer("minibatches", 1);
  c.micro_batch_size = o.integer("micro_batch_size", 32);
  c.lr = {o.number("lr", 1e-6), o.integer("warmup", 0), LrDecay::Constant, 0, 0.0};
  c.adamw.weight_decay = o.number("weight_decay", 0.0);
  c.max_grad_norm = o.number("max_grad_norm", 1.0);
  c.mask_truncated = o.boolean("mask_truncated", false);
  c.overlong_buffer = o.integer("overlong_buffer", 0);
  c.overlong_penalty = o.number("overlong_penalty", 1.0);
  c.drop_zero_variance_groups = o.boolean("dynamic_sampling", false);
  c.routing_replay = o.boolean("routing_replay", true);
  c.router_bias_update = o.number("router_bias_update", 0.0);
  c.reference_reset_every = o.integer("reference_reset_every", 0);
  const int64_t sample_every = o.integer("sample_every", 10);
  const int64_t checkpoint_every = o.integer("checkpoint_every", 50), keep_checkpoints = o.integer("keep_checkpoints", 2);
  const std::string out = output_path(L, o.string("out", "train"));
  StageRecord record = begin_stage(o);
  if (push_recorded_result(L, record)) return 1;

  Tokenizer tok = Tokenizer::from_file(model_dir);
  CausalLM model = load_placed_model(L, model_dir);
  if (tok.eos_id() >= 0) c.stop.stop_ids.push_back(tok.eos_id());
  std::vector<PromptExample> prompts = stage_prompts(o, tok);
  if (prompts.empty()) luaL_error(L, "grpo.train: no data");
  c.distributed = state_of(L).options.distributed;
  GrpoTrainer trainer(model, tok, rewards::RuleSet::from_file(rules_path), c);
  ShuffledCursor cursor(prompts.size(), c.seed);  // deterministic passes, reshuffled each epoch with the run seed
  auto next_prompts = [&](int64_t n) {
    std::vector<PromptExample> batch;
    for (int64_t i = 0; i < n; ++i) batch.push_back(prompts[cursor.next()]);
    return batch;
  };

  // Resume: the newest checkpoint restores the trainer and the data cursor, and the logs are cut back to
  // what had been written when it was saved, so no line appears twice.
  fs::create_directories(out);
  const std::string metrics_path = out + "/metrics.jsonl", samples_path = out + "/samples.jsonl";
  const std::string checkpoints = out + "/checkpoints";
  int64_t metrics_bytes = 0, samples_bytes = 0;
  if (std::vector<TrainCheckpoint> saved = list_train_checkpoints(checkpoints); !saved.empty()) {
    json state = load_train_checkpoint(saved.back().directory, trainer);
    cursor.restore(state.at("data"));
    metrics_bytes = state.at("metrics_bytes").get<int64_t>();
    samples_bytes = state.at("samples_bytes").get<int64_t>();
    fmt::print(stderr, "[train] resuming at step {} from {}\n", trainer.steps_done(), saved.back().directory);
  }
  std::ofstream metrics_file, samples_file;  // rank 0's; the other ranks write nothing
  if (writes_outputs(L)) {
    truncate_file(metrics_path, metrics_bytes);
    truncate_file(samples_path, samples_bytes);
    metrics_file.open(metrics_path, std::ios::app);
    samples_file.open(samples_path, std::ios::app);
  }

  StageProgress progress("train", steps);
  progress.start_at(trainer.steps_done());
  StepMetrics last;
  for (int64_t step = trainer.steps_done(); step < steps; ++step) {
    StepResult r = trainer.step(next_prompts(per_step), next_prompts);
    for (const std::string& warning : r.warnings) progress.note("warning: " + warning);
    json line(r.metrics);
    if (writes_outputs(L)) metrics_file << line.dump() << "\n" << std::flush;
    if (writes_outputs(L) && sample_every > 0 && step % sample_every == 0)
      for (const ScoredSample& s : r.samples)
        samples_file << json{{"step", step}, {"prompt", s.prompt}, {"completion", s.completion}, {"reward", s.reward},
                             {"advantage", s.advantage}, {"finish_reason", s.finish_reason}}
                            .dump()
                     << "\n";
    ProgressValues shown;  // the metrics this run has (kl only with a reference model)
    for (const auto& [name, label] : {std::pair<const char*, const char*>{"reward", "reward"}, {"accuracy", "accuracy"},
                                      {"kl", "kl"}, {"completion_length/mean", "len"}, {"tokens_per_second/rollout", "tok/s"}})
      if (r.metrics.count(name)) shown.push_back({label, r.metrics.at(name)});
    progress.update(step + 1, shown);
    last = r.metrics;
    const int64_t done = step + 1;
    if (checkpoint_every > 0 && done % checkpoint_every == 0 && done < steps && writes_outputs(L)) {
      samples_file.flush();
      if (!metrics_file || !samples_file) luaL_error(L, "grpo.train: cannot write the logs in %s", out.c_str());
      json state = {{"data", cursor.state()},
                    {"metrics_bytes", static_cast<int64_t>(fs::file_size(metrics_path))},
                    {"samples_bytes", static_cast<int64_t>(fs::file_size(samples_path))}};
      save_train_checkpoint(checkpoints, trainer, tok, state, keep_checkpoints);
    }
    if (checkpoint_every > 0 && done % checkpoint_every == 0 && done < steps) {
      wait_for_outputs(L);
      record.mark_resumable();
    }
  }
  progress.finish();
  if (writes_outputs(L)) save_model(trainer.policy(), tok, out);
  wait_for_outputs(L);
  record.mark_complete(out);
  fmt::print(stderr, "[train] {} steps, final reward {:.3f} -> {}\n", steps, last["reward"], out);
  lua_pushstring(L, out.c_str());
  return 1;
}

int stage_eval(lua_State* L) {
  StageOptions o(L, "eval", {"model", "data", "prompt", "rules", "n", "k", "temperature", "top_p", "max_new_tokens", "stop",
                            "seed"});
  const std::string model_dir = o.required_string("model");
  const std::string rules_path = o.required_string("rules");
  EvalConfig c;
  c.samples_per_prompt = o.integer("n", 8);
  c.pass_k = {1, c.samples_per_prompt};
  if (o.has("k")) c.pass_k = {1, o.integer("k", 8)};
  c.sampling.temperature = o.number("temperature", 1.0);
  c.sampling.top_p = o.number("top_p", 1.0);
  c.stop.max_new_tokens = o.integer("max_new_tokens", 256);
  if (o.has("stop")) c.stop.stop_strings.push_back(o.string("stop", ""));
  c.seed = static_cast<uint64_t>(o.integer("seed", 12345));
  StageRecord record = begin_stage(o);
  if (push_recorded_result(L, record)) return 1;  // a finished evaluation loads nothing

  Tokenizer tok = Tokenizer::from_file(model_dir);
  CausalLM model = load_placed_model(L, model_dir);
  if (tok.eos_id() >= 0) c.stop.stop_ids.push_back(tok.eos_id());
  std::vector<PromptExample> prompts = stage_prompts(o, tok);
  rewards::RuleSet rules = rewards::RuleSet::from_file(rules_path);
  std::map<std::string, double> m = evaluate(model, tok, rules, prompts, c);
  record.mark_complete(json(m));
  std::string line;
  for (const auto& [k, v] : m) line += fmt::format(" {}={:.3f}", k, v);
  fmt::print(stderr, "[eval] {} ({} prompts x {}):{}\n", model_dir, prompts.size(), c.samples_per_prompt, line);
  lua_createtable(L, 0, static_cast<int>(m.size()));
  for (const auto& [k, v] : m) {
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k.c_str());
  }
  return 1;
}

}  // namespace grpo
