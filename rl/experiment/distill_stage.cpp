// grpo.distill{}: a frozen teacher's reasoning into a student that shares its tokenizer, in three modes
// (docs/distillation.md, docs/stages/distill.md):
//
//   traces     the teacher samples n completions per prompt, optionally kept only when the rules accept
//              them (rejection sampling), and the student is fine-tuned on them (sft(), R1's recipe);
//   logits     per-token forward KL(teacher ‖ student) on the teacher's samples or the dataset's
//              completions (logit_distillation());
//   on_policy  the student samples G completions per prompt and the teacher's log-probs of those tokens
//              give a per-token reverse-KL advantage, mixed with the rules' reward (GrpoTrainer with the
//              teacher in the reference slot).
//
// The teacher is loaded once, never trained and never saved; the stage returns the student's directory
// and a table of final metrics, as grpo.sft does, and writes <out>/metrics.jsonl per step.
#include <fmt/core.h>
#include <fmt/format.h>
#include <lua.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <utility>

#include "policy/checkpoint.h"
#include "reference/reference_model.h"
#include "rewards/lua_trampoline.h"
#include "rewards/rule_set.h"
#include "rewards/scorer_pool.h"
#include "rl/experiment/experiment_stages.h"
#include "rl/experiment/lua_json.h"
#include "rl/experiment/metrics_log.h"
#include "rl/experiment/progress.h"
#include "rl/experiment/shuffled_cursor.h"
#include "rl/experiment/stage_options.h"
#include "rl/grpo_trainer.h"
#include "rl/logit_distillation.h"
#include "rl/rejection_sampling.h"
#include "rl/sample_dataset.h"
#include "rl/sft.h"

namespace grpo {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

struct DistillStageOptions {
  std::string teacher, student, mode, rules, out;
  SampleConfig teacher_sampling;     // traces, logits (without `completion`)
  LogitDistillationConfig training;  // traces (as SftConfig) and logits: steps, batch, schedule
  GrpoConfig on_policy;              // on_policy
  int64_t prompts_per_step = 8;
};

DistillStageOptions distill_stage_options(StageOptions& o) {
  DistillStageOptions s;
  s.teacher = o.string("teacher");
  s.student = o.string("student");
  s.mode = o.string("mode");
  if (o.has("rules")) s.rules = o.string("rules");
  SampleConfig& t = s.teacher_sampling;
  t.samples_per_prompt = o.integer("n");
  t.sampling.temperature = o.number("temperature");
  t.sampling.top_p = o.number("top_p");
  t.stop.max_new_tokens = o.integer("max_new_tokens");
  if (o.has("stop")) t.stop.stop_strings.push_back(o.string("stop"));
  t.seed = static_cast<uint64_t>(o.integer("seed"));
  LogitDistillationConfig& c = s.training;
  c.steps = o.integer("steps");
  c.epochs = o.integer("epochs");
  c.batch_size = o.integer("batch_size");
  c.micro_batch_size = o.integer("micro_batch_size");
  c.max_len = o.integer("max_len");
  c.temperature = o.number("distill_temperature");
  c.top_k = o.integer("top_k");
  c.lr = {o.number("lr"), o.integer("warmup"), LrDecay::Cosine, 0, o.number("min_lr_ratio")};
  c.adamw.weight_decay = o.number("weight_decay");
  c.max_grad_norm = o.number("max_grad_norm");
  c.seed = static_cast<uint64_t>(o.integer("seed"));
  GrpoConfig& g = s.on_policy;
  s.prompts_per_step = o.integer("prompts_per_step");
  g.group_size = o.integer("group_size");
  g.seed = c.seed;
  g.sampling = t.sampling;
  g.stop = t.stop;
  g.micro_batch_size = c.micro_batch_size;
  g.lr = {c.lr.peak, c.lr.warmup_steps, LrDecay::Constant, 0, 0.0};
  g.adamw.weight_decay = c.adamw.weight_decay;
  g.max_grad_norm = c.max_grad_norm;
  g.distill_coef = o.number("distill_coef");
  g.reward_coef = o.number("reward_coef");
  g.objective.policy.kl_coef = 0;  // the reference slot holds the teacher; its KL is the distillation term
  s.out = o.output("out");
  if (c.top_k < 0) o.fail(fmt::format("top_k must be >= 0 (0 = the full vocabulary), got {}", c.top_k));
  if (s.mode == "on_policy" && g.reward_coef != 0 && s.rules.empty())
    o.fail(fmt::format("reward_coef = {} needs rules (the reward that is mixed with the teacher's signal)", g.reward_coef));
  if (s.mode == "on_policy" && g.distill_coef == 0 && g.reward_coef == 0)
    o.fail("distill_coef and reward_coef are both 0: on_policy would not learn anything");
  return s;
}

// ---------------------------------------------------------------------------------------------
// Teacher and student: one tokenizer, one vocabulary
// ---------------------------------------------------------------------------------------------

json tokenizer_json(StageOptions& o, const std::string& dir, const char* role) {
  const std::string path = dir + "/tokenizer.json";
  std::ifstream in(path);
  if (!in) o.fail(fmt::format("the {} directory {} has no tokenizer.json", role, dir));
  try {
    return json::parse(in);
  } catch (const json::parse_error& e) {
    o.fail(fmt::format("the {}'s {} is not valid JSON: {}", role, path, e.what()));
  }
}

// Cross-tokenizer distillation (TRL's GOLD, ULD) is out of scope: the losses compare distributions
// token by token, so the two models must cut text into the same tokens with the same ids.
void check_same_tokenizer(StageOptions& o, const std::string& teacher, const std::string& student) {
  if (tokenizer_json(o, teacher, "teacher") != tokenizer_json(o, student, "student"))
    o.fail(fmt::format("the teacher ({}) and the student ({}) have different tokenizers (tokenizer.json differs); distillation "
                       "needs one tokenizer (cross-tokenizer distillation is not supported)",
                       teacher, student));
}

void check_same_vocabulary(StageOptions& o, const DistillStageOptions& s, const CausalLM& teacher, const CausalLM& student) {
  const int64_t t = teacher->config().vocab_size, v = student->config().vocab_size;
  if (t != v)
    o.fail(fmt::format("the teacher ({}) has vocab_size {} and the student ({}) {}; distillation needs one vocabulary", s.teacher,
                       t, s.student, v));
}

// ---------------------------------------------------------------------------------------------
// Teacher samples (traces, logits) and the keep filter
// ---------------------------------------------------------------------------------------------

// The `keep` option as rl/rejection_sampling.h's criteria, with grpo.rejection_sample's meaning: a table of
// minimum rule values ("reward" the weighted total) or a function of the sample record. Every passing
// sample is an example: no dedupe, no cap (repeated correct traces weigh what the teacher weighs them).
class KeepCriteria {
 public:
  KeepCriteria(StageOptions& o, const std::optional<rewards::RuleSet>& rules) : o_(o) {
    criteria_.dedupe = false;
    if (!o.has("keep")) return;
    lua_State* L = o.lua();
    if (o.push("keep") == LUA_TFUNCTION) {
      function_ref_ = luaL_ref(L, LUA_REGISTRYINDEX);
      criteria_.predicate = [this](const json& sample) { return call_predicate(sample); };
      return;
    }
    const json table = lua_to_json(L, -1);
    lua_pop(L, 1);
    if (!table.is_object()) o.fail("keep must be a table {rule = minimum value} or a function of the sample");
    if (!rules) o.fail("keep = {rule = minimum} needs rules");
    std::vector<std::string> names;
    for (const rewards::RuleSpec& r : rules->rules()) names.push_back(r.name);
    for (const auto& [name, minimum] : table.items()) {
      if (name != "reward" && std::find(names.begin(), names.end(), name) == names.end())
        o.fail(fmt::format("keep names the rule \"{}\", which {} does not define (it has {})", name, rules->origin(),
                           fmt::join(names, ", ")));
      if (!minimum.is_number()) o.fail(fmt::format("keep.{} must be a number (the rule's minimum value)", name));
      criteria_.min_values[name] = minimum.get<double>();
    }
  }
  ~KeepCriteria() {
    if (function_ref_ != LUA_NOREF) luaL_unref(o_.lua(), LUA_REGISTRYINDEX, function_ref_);
  }
  KeepCriteria(const KeepCriteria&) = delete;
  KeepCriteria& operator=(const KeepCriteria&) = delete;

  const RejectionCriteria& criteria() const { return criteria_; }

 private:
  bool call_predicate(const json& sample) const {
    lua_State* L = o_.lua();
    lua_rawgeti(L, LUA_REGISTRYINDEX, function_ref_);
    push_json(L, sample);
    try {
      call_protected(L, 1, 1);
    } catch (const LuaError& e) {
      o_.fail(fmt::format("the keep function failed on prompt {} sample {}: {}", sample.value("prompt_index", int64_t{0}) + 1,
                          sample.value("sample_index", int64_t{0}) + 1, e.what()));
    }
    const bool keep = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return keep;
  }

  StageOptions& o_;
  int function_ref_ = LUA_NOREF;
  RejectionCriteria criteria_;
};

struct TeacherTraces {
  std::vector<SftExample> kept;  // prompt and the teacher's exact completion tokens
  std::vector<json> records;     // every sample, as grpo.sample writes it, with "kept"
};

TeacherTraces teacher_traces(StageOptions& o, CausalLM& teacher, const Tokenizer& tok, const std::vector<PromptExample>& prompts,
                             const DistillStageOptions& s, const std::optional<rewards::RuleSet>& rules) {
  const KeepCriteria keep(o, rules);
  SampleConfig c = s.teacher_sampling;
  if (tok.eos_id() >= 0) c.stop.stop_ids.push_back(tok.eos_id());
  const size_t chunk = static_cast<size_t>(std::max<int64_t>(1, c.batch_rows / std::max<int64_t>(1, c.samples_per_prompt)));
  StageProgress progress("distill: teacher samples", static_cast<int64_t>((prompts.size() + chunk - 1) / chunk));
  std::unique_ptr<rewards::ScorerPool> scorer;
  if (rules) scorer = std::make_unique<rewards::ScorerPool>(*rules, static_cast<int>(c.reward_threads));
  TeacherTraces out;
  std::vector<SftExample> tokens;  // parallel to out.records
  for (size_t first = 0; first < prompts.size(); first += chunk) {
    const std::vector<PromptExample> part(prompts.begin() + static_cast<std::ptrdiff_t>(first),
                                          prompts.begin() + static_cast<std::ptrdiff_t>(std::min(prompts.size(), first + chunk)));
    SampleConfig pc = c;
    pc.seed = c.seed + first;  // prompt i keeps seed + i, as grpo.sample
    const std::vector<Completion> completions = sample_prompts(teacher, tok, part, pc);
    std::vector<rewards::SampleScore> scores;
    if (scorer) {
      std::vector<rewards::Sample> samples;
      for (const Completion& cp : completions) samples.push_back(reward_input(part[static_cast<size_t>(cp.request_index)], cp));
      scores = scorer->score(samples);
    }
    for (size_t i = 0; i < completions.size(); ++i) {
      const Completion& cp = completions[i];
      const PromptExample& p = part[static_cast<size_t>(cp.request_index)];
      json r = p.record.is_object() ? p.record : json::object();
      r["prompt"] = p.prompt;
      r["completion"] = cp.text;
      r["finish_reason"] = to_string(cp.finish_reason);
      r["completion_tokens"] = cp.completion_ids.size();
      r["prompt_index"] = static_cast<int64_t>(first) + cp.request_index;
      r["sample_index"] = cp.sample_index;
      if (scorer) {
        json values = json::object();
        for (size_t k = 0; k < rules->rules().size(); ++k) values[rules->rules()[k].name] = scores[i].rules[k].value;
        r["rewards"] = values;
        r["reward"] = scores[i].total;
      }
      if (cp.completion_ids.empty()) continue;  // nothing to learn from (the rollout always makes a token)
      SftExample e;
      e.prompt_ids = p.prompt_ids;
      e.completion_ids = cp.completion_ids;
      tokens.push_back(std::move(e));
      out.records.push_back(std::move(r));
    }
    progress.update(static_cast<int64_t>(first / chunk) + 1, {{"samples", static_cast<double>(out.records.size())}});
  }
  progress.finish();
  // Rejection sampling over every sample (rl/rejection_sampling.h); kept records are matched back to
  // their exact token ids by (prompt_index, sample_index).
  const RejectionResult kept = rejection_sample(out.records, keep.criteria());
  std::set<std::pair<int64_t, int64_t>> chosen;
  for (const json& r : kept.kept) chosen.insert({r.at("prompt_index").get<int64_t>(), r.at("sample_index").get<int64_t>()});
  for (size_t i = 0; i < out.records.size(); ++i) {
    json& r = out.records[i];
    const bool is_kept = chosen.count({r.at("prompt_index").get<int64_t>(), r.at("sample_index").get<int64_t>()}) > 0;
    r["kept"] = is_kept;
    if (is_kept) out.kept.push_back(std::move(tokens[i]));
  }
  return out;
}

// Option data_completion: a template with {field} placeholders or a function of the record, as grpo.sft's
// `completion`.
std::vector<std::string> dataset_completions(StageOptions& o, const std::vector<PromptExample>& prompts) {
  lua_State* L = o.lua();
  const int type = o.push("data_completion");
  std::vector<std::string> out;
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (type == LUA_TSTRING) {
      out.push_back(fill_template(lua_tostring(L, -1), prompts[i].record));
      continue;
    }
    lua_pushvalue(L, -1);
    push_json(L, prompts[i].record);
    try {
      call_protected(L, 1, 1);
    } catch (const LuaError& e) {
      lua_pop(L, 1);
      o.fail(fmt::format("the data_completion function failed on record {}: {}", i + 1, e.what()));
    }
    if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER) {
      lua_pop(L, 2);
      o.fail(fmt::format("the data_completion function must return a string (record {})", i + 1));
    }
    out.push_back(lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return out;
}

void write_records(lua_State* L, const std::string& path, const std::vector<json>& records) {
  if (writes_outputs(L)) {
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream out(path);
    for (const json& r : records) out << r.dump() << "\n";
    if (!out.flush()) throw LuaError(fmt::format("grpo.distill: cannot write {}", path));
  }
}

// ---------------------------------------------------------------------------------------------
// The three modes; each returns the final metrics table
// ---------------------------------------------------------------------------------------------

int32_t pad_of(const Tokenizer& tok) { return tok.pad_id() >= 0 ? tok.pad_id() : std::max(tok.eos_id(), 0); }

json run_traces(lua_State* L, CausalLM& student, const Tokenizer& tok, const TeacherTraces& traces, const DistillStageOptions& s) {
  if (traces.kept.empty())
    throw LuaError(fmt::format("grpo.distill: the keep filter kept none of the teacher's {} samples; nothing to train on",
                               traces.records.size()));
  SftConfig c;
  c.steps = s.training.steps;
  c.epochs = s.training.epochs;
  c.batch_size = s.training.batch_size;
  c.max_len = s.training.max_len;
  c.lr = s.training.lr;
  c.adamw = s.training.adamw;
  c.max_grad_norm = s.training.max_grad_norm;
  c.seed = s.training.seed;
  std::unique_ptr<MetricsLog> log;
  if (writes_outputs(L)) log = std::make_unique<MetricsLog>(s.out);
  StageProgress progress("distill: trace SFT", sft_steps(c, traces.kept.size()));
  const SftResult r = sft(student, traces.kept, c, pad_of(tok), [&](const SftProgress& p) {
    if (log)
      log->write(p.step + 1, {{"loss", p.loss}, {"grad_norm", p.grad_norm}, {"learning_rate", p.learning_rate},
                              {"tokens", static_cast<double>(p.completion_tokens)}, {"tokens_per_second", p.tokens_per_second},
                              {"skipped", p.skipped ? 1.0 : 0.0}});
    progress.update(p.step + 1, {{"loss", p.loss}, {"lr", p.learning_rate}});
  });
  progress.finish();
  return {{"loss", r.final_loss}, {"steps", r.steps}, {"tokens", r.completion_tokens}, {"samples", traces.records.size()},
          {"kept", traces.kept.size()}, {"skipped_updates", r.skipped_updates}};
}

json run_logits(lua_State* L, CausalLM& student, CausalLM& teacher, const Tokenizer& tok, const std::vector<SftExample>& examples,
                const DistillStageOptions& s) {
  std::unique_ptr<MetricsLog> log;
  if (writes_outputs(L)) log = std::make_unique<MetricsLog>(s.out);
  StageProgress progress("distill: logits", logit_distillation_steps(s.training, examples.size()));
  double kl = 0, gap = 0, agreement = 0;
  const LogitDistillationResult r = logit_distillation(student, teacher, examples, s.training, pad_of(tok), [&](const LogitDistillationProgress& p) {
    if (log)
      log->write(p.step + 1, {{"loss", p.loss}, {"distill/kl", p.kl}, {"distill/logprob_gap", p.logprob_gap},
                              {"distill/argmax_agreement", p.argmax_agreement}, {"grad_norm", p.grad_norm},
                              {"learning_rate", p.learning_rate}, {"tokens", static_cast<double>(p.tokens)},
                              {"tokens_per_second", p.tokens_per_second}, {"skipped", p.skipped ? 1.0 : 0.0}});
    kl = p.kl, gap = p.logprob_gap, agreement = p.argmax_agreement;
    progress.update(p.step + 1, {{"kl", p.kl}, {"agree", p.argmax_agreement}, {"lr", p.learning_rate}});
  });
  progress.finish();
  return {{"loss", r.final_loss}, {"kl", kl}, {"logprob_gap", gap}, {"argmax_agreement", agreement}, {"steps", r.steps},
          {"tokens", r.tokens}, {"examples", examples.size()}, {"skipped_updates", r.skipped_updates}};
}

json run_on_policy(lua_State* L, CausalLM student, ReferenceModel teacher, const Tokenizer& tok,
                   const std::vector<PromptExample>& prompts, DistillStageOptions& s) {
  GrpoConfig& c = s.on_policy;
  if (tok.eos_id() >= 0) c.stop.stop_ids.push_back(tok.eos_id());
  c.distributed = state_of(L).options.distributed;
  rewards::RuleSet rules = s.rules.empty() ? rewards::RuleSet::from_source("return { { name = \"none\", rule = function() return 0 end } }",
                                                                             "no rules (on-policy distillation)")
                                           : rewards::RuleSet::from_file(s.rules);
  GrpoTrainer trainer(student, tok, std::move(rules), c, std::move(teacher));
  const int64_t per_epoch = (static_cast<int64_t>(prompts.size()) + s.prompts_per_step - 1) / std::max<int64_t>(1, s.prompts_per_step);
  const int64_t steps = s.training.steps > 0 ? s.training.steps : std::max<int64_t>(1, s.training.epochs) * std::max<int64_t>(1, per_epoch);
  ShuffledCursor cursor(prompts.size(), c.seed);
  auto next_prompts = [&](int64_t n) {
    std::vector<PromptExample> batch;
    for (int64_t i = 0; i < n; ++i) batch.push_back(prompts[cursor.next()]);
    return batch;
  };
  std::unique_ptr<MetricsLog> log;
  if (writes_outputs(L)) log = std::make_unique<MetricsLog>(s.out);
  StageProgress progress("distill: on-policy", steps);
  StepMetrics last;
  for (int64_t step = 0; step < steps; ++step) {
    StepResult r = trainer.step(next_prompts(s.prompts_per_step));
    for (const std::string& warning : r.warnings) progress.note("warning: " + warning);
    if (log) log->write(step + 1, r.metrics);
    ProgressValues shown = {{"rkl", r.metrics["distill/reverse_kl"]}};
    if (!s.rules.empty()) shown.push_back({"reward", r.metrics["reward"]});
    progress.update(step + 1, shown);
    last = std::move(r.metrics);
  }
  progress.finish();
  return {{"reverse_kl", last["distill/reverse_kl"]}, {"reward", last["reward"]}, {"steps", steps},
          {"completion_length", last["completion_length/mean"]}};
}

}  // namespace

int stage_distill(lua_State* L) {
  StageOptions o(L, "distill");
  DistillStageOptions s = distill_stage_options(o);
  StageRecord record = begin_stage(o);
  if (push_recorded_pair(L, record, "model")) return 2;
  check_same_tokenizer(o, s.teacher, s.student);

  Tokenizer tok = Tokenizer::from_file(s.student);
  CausalLM student = load_placed_model(L, s.student);
  // The teacher is frozen (no gradients, eval mode), never stepped and never saved. On-policy mode keeps it
  // in the trainer's reference slot, on the student's device.
  const torch::Device device = student->model->embed_tokens->weight.device();
  std::optional<ReferenceModel> reference_slot;
  CausalLM teacher{nullptr};
  if (s.mode == "on_policy") {
    reference_slot = ReferenceModel::from_checkpoint(s.teacher, device);
    teacher = reference_slot->model();
  } else {
    teacher = load_placed_model(L, s.teacher);
    for (torch::Tensor& p : teacher->parameters()) p.set_requires_grad(false);
    teacher->eval();
  }
  check_same_vocabulary(o, s, teacher, student);
  const std::vector<PromptExample> prompts = stage_prompts(o, tok);
  if (prompts.empty()) o.fail("no data");
  std::optional<rewards::RuleSet> rules;
  if (!s.rules.empty()) rules = rewards::RuleSet::from_file(s.rules);
  if (o.has("keep") && s.mode != "traces") o.fail("keep filters the teacher's samples of mode \"traces\"; mode is \"" + s.mode + "\"");
  if (o.has("data_completion") && s.mode != "logits")
    o.fail("data_completion gives the dataset's completions to mode \"logits\"; mode is \"" + s.mode + "\"");

  json metrics;
  if (s.mode == "traces") {
    const TeacherTraces traces = teacher_traces(o, teacher, tok, prompts, s, rules);
    write_records(L, s.out + "/traces.jsonl", traces.records);
    metrics = run_traces(L, student, tok, traces, s);
  } else if (s.mode == "logits") {
    std::vector<SftExample> examples;
    if (o.has("data_completion")) {  // the dataset's completions
      const std::vector<std::string> completions = dataset_completions(o, prompts);
      for (size_t i = 0; i < prompts.size(); ++i) {
        SftExample e;
        e.prompt_ids = prompts[i].prompt_ids;
        e.completion_ids = tok.encode(completions[i], /*allow_special=*/false);
        if (e.completion_ids.empty()) o.fail(fmt::format("record {} has an empty completion", i + 1));
        examples.push_back(std::move(e));
      }
    } else {  // the teacher's samples, every one kept
      TeacherTraces traces = teacher_traces(o, teacher, tok, prompts, s, rules);
      write_records(L, s.out + "/traces.jsonl", traces.records);
      examples = std::move(traces.kept);
    }
    metrics = run_logits(L, student, teacher, tok, examples, s);
  } else {
    teacher = CausalLM{nullptr};
    metrics = run_on_policy(L, student, std::move(*reference_slot), tok, prompts, s);
  }
  if (writes_outputs(L)) save_model(L, student, tok, s.out);
  wait_for_outputs(L);
  record.mark_complete(json{{"model", s.out}, {"metrics", metrics}});
  fmt::print(stderr, "[distill] {} from {} -> {}\n", s.mode, s.teacher, s.out);
  lua_pushstring(L, s.out.c_str());
  push_json(L, metrics);
  return 2;
}

}  // namespace grpo
