#include <fmt/core.h>
#include <lua.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "policy/checkpoint.h"
#include "policy/stopwatch.h"
#include "rewards/lua_trampoline.h"
#include "rewards/rule_set.h"
#include "rl/experiment/check_run.h"
#include "rl/experiment/conversation.h"
#include "rl/experiment/dataset_mix.h"
#include "rl/experiment/dataset_split.h"
#include "rl/experiment/metrics_log.h"
#include "rl/experiment/experiment_stages.h"
#include "rl/experiment/jsonl.h"
#include "rl/experiment/lua_json.h"
#include "rl/experiment/progress.h"
#include "rl/sample_dataset.h"
#include "rl/sft.h"
#include "rl/experiment/stage_configs.h"
#include "rl/experiment/stage_options.h"
#include "rl/rejection_sampling.h"
#include "rewards/scorer_pool.h"
#ifdef GRPO_WITH_HTTP
#include "api/client/endpoint_sampler.h"
#endif

// The stages that make and score datasets (grpo.sft, grpo.sample, grpo.rejection_sample) and the dataset helpers
// (grpo.shuffle, grpo.split, grpo.mix, grpo.read_jsonl, grpo.write_jsonl).
namespace grpo {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Pushes a new list of the values of the list at `list` at the given 0-based indices, in their order.
void push_selection(lua_State* L, int list, const std::vector<size_t>& indices) {
  lua_createtable(L, static_cast<int>(indices.size()), 0);
  for (size_t k = 0; k < indices.size(); ++k) {
    lua_rawgeti(L, list, static_cast<lua_Integer>(indices[k] + 1));
    lua_rawseti(L, -2, static_cast<lua_Integer>(k + 1));
  }
}

// Writes records as JSONL (rank 0 only, the other ranks wait until it is there); a write error throws
// LuaError naming the function and the path.
void write_jsonl_file(lua_State* L, const char* function, const std::string& path, const std::vector<json>& records) {
  if (writes_outputs(L)) {
    const fs::path parent = fs::path(path).parent_path();
    if (!parent.empty()) fs::create_directories(parent);
    std::ofstream out(path);
    for (const json& r : records) out << r.dump() << "\n";
    if (!out.flush()) throw LuaError(fmt::format("{}: cannot write {}", function, path));
  }
  wait_for_outputs(L);
}

}  // namespace

int stage_sft(lua_State* L) {
  StageOptions o(L, "sft");
  const SftStageOptions s = sft_stage_options(o);
  StageRecord record = begin_stage(o);
  if (push_recorded_pair(L, record, "model")) return 2;

  Tokenizer tok = Tokenizer::from_file(s.model);
  CausalLM model = load_placed_model(L, s.model);
  const std::vector<PromptExample> prompts = stage_prompts(o, tok);
  const std::vector<std::string> completions = stage_completions(o, prompts);
  if (prompts.empty()) o.fail("no data");
  // Conversational records (rl/experiment/conversation.h) train on their assistant turns, unless the
  // prompt or completion is given as an option.
  const bool text_options = o.has("prompt") || o.has("completion");
  std::optional<ConversationRenderer> chat;
  std::vector<SftExample> examples;
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (!text_options && is_conversational(prompts[i].record)) {
      if (!chat) chat.emplace(stage_conversation_renderer(o, tok, i + 1));
      try {
        examples.push_back(chat->training_example(prompts[i].record, i + 1));
      } catch (const std::exception& e) {
        o.fail(e.what());
      }
      continue;
    }
    SftExample e{prompts[i].prompt_ids, tok.encode(completions[i], /*allow_special=*/false), {}};
    if (s.eos && tok.eos_id() >= 0) e.completion_ids.push_back(tok.eos_id());
    if (e.completion_ids.empty()) o.fail(fmt::format("record {} has an empty completion", i + 1));
    examples.push_back(std::move(e));
  }
  const int32_t pad = tok.pad_id() >= 0 ? tok.pad_id() : std::max(tok.eos_id(), 0);

  const bool writer = writes_outputs(L);  // data parallel: every rank trains the same, rank 0 writes
  std::unique_ptr<MetricsLog> metrics_log;  // metrics.jsonl and TensorBoard events, steps counted from 1
  if (writer) metrics_log = std::make_unique<MetricsLog>(s.out);
  StageProgress progress("sft", sft_steps(s.config, examples.size()));
  const SftResult r = sft(model, examples, s.config, pad, [&](const SftProgress& p) {
    if (metrics_log)
      metrics_log->write(p.step + 1, {{"epoch", static_cast<double>(p.epoch)}, {"loss", p.loss}, {"grad_norm", p.grad_norm},
                                      {"learning_rate", p.learning_rate},
                                      {"completion_tokens", static_cast<double>(p.completion_tokens)},
                                      {"tokens_per_second", p.tokens_per_second}, {"skipped", p.skipped ? 1.0 : 0.0}});
    progress.update(p.step + 1, {{"loss", p.loss}, {"lr", p.learning_rate}, {"tok/s", p.tokens_per_second}});
  });
  progress.finish();
  if (r.truncated > 0)
    fmt::print(stderr, "[sft] warning: {} example rows were longer than max_len = {} and were cut ({} left no completion token)\n",
               r.truncated, s.config.max_len, r.dropped);
  if (writer) save_model(L, model, tok, s.out);
  wait_for_outputs(L);
  const json metrics = {{"loss", r.final_loss},       {"steps", r.steps},         {"completion_tokens", r.completion_tokens},
                        {"truncated", r.truncated},   {"dropped", r.dropped},     {"skipped_updates", r.skipped_updates}};
  record.mark_complete(json{{"model", s.out}, {"metrics", metrics}});
  fmt::print(stderr, "[sft] final loss {:.4f} -> {}\n", r.final_loss, s.out);
  lua_pushstring(L, s.out.c_str());
  push_json(L, metrics);
  return 2;
}

namespace {

// The sampling of grpo.sample and grpo.rejection_sample: n completions of every prompt of `data`, in
// chunks that fill the rollout batch so the progress line moves (prompt i keeps seed + i), scored when
// `s.rules` is set. `prompts` receives the number of prompts.
std::vector<json> sample_stage_records(lua_State* L, StageOptions& o, SampleStageOptions& s, size_t* prompt_count) {
  SampleConfig& c = s.config;
  Tokenizer tok = Tokenizer::from_file(s.model);
  CausalLM model = load_placed_model(L, s.model);
  if (tok.eos_id() >= 0) c.stop.stop_ids.push_back(tok.eos_id());
  const std::vector<PromptExample> prompts = stage_prompts(o, tok);
  *prompt_count = prompts.size();
  std::optional<rewards::RuleSet> rules;
  if (!s.rules.empty()) rules = rewards::RuleSet::from_file(s.rules);
  const size_t chunk = static_cast<size_t>(std::max<int64_t>(1, c.batch_rows / std::max<int64_t>(1, c.samples_per_prompt)));
  const int64_t chunks = static_cast<int64_t>((prompts.size() + chunk - 1) / chunk);
  StageProgress progress(o.stage(), chunks);
  std::vector<json> samples;
  const Stopwatch stopwatch;
  int64_t tokens = 0;
  for (size_t first = 0; first < prompts.size(); first += chunk) {
    std::vector<PromptExample> part(prompts.begin() + static_cast<std::ptrdiff_t>(first),
                                    prompts.begin() + static_cast<std::ptrdiff_t>(std::min(prompts.size(), first + chunk)));
    SampleConfig pc = c;
    pc.seed = c.seed + first;
    for (json& sample : sample_dataset(model, tok, part, pc, rules ? &*rules : nullptr)) {
      sample["prompt_index"] = sample["prompt_index"].get<int64_t>() + static_cast<int64_t>(first);
      tokens += sample["completion_tokens"].get<int64_t>();
      samples.push_back(std::move(sample));
    }
    ProgressValues values;
    if (rules) values.push_back({"reward", sample_means(samples)["reward"]});
    values.push_back({"tok/s", tokens / std::max(stopwatch.seconds(), 1e-9)});
    progress.update(static_cast<int64_t>(first / chunk) + 1, values);
  }
  progress.finish();
  return samples;
}

#ifdef GRPO_WITH_HTTP
// The prompts of option "data" as an endpoint takes them: text (option "prompt" or the record's string
// `prompt`, sent as one user message by the chat API), or a conversational record's messages.
std::vector<api::EndpointPrompt> endpoint_prompts(StageOptions& o, bool chat) {
  std::vector<json> records = stage_records(o, "data");
  std::vector<api::EndpointPrompt> out;
  const int type = o.push("prompt");
  for (size_t i = 0; i < records.size(); ++i) {
    api::EndpointPrompt p;
    if (type == LUA_TNIL && is_conversational(records[i])) {
      if (!chat) o.fail(fmt::format("record {} is a conversation: api = \"completions\" takes text prompts (use api = \"chat\")", i + 1));
      try {
        p.messages = prompt_message_list(records[i], i + 1);
      } catch (const std::invalid_argument& e) {
        o.fail(e.what());
      }
    } else {
      p.text = record_text(o, type, "prompt", records[i], i);
    }
    p.record = std::move(records[i]);
    out.push_back(std::move(p));
  }
  lua_pop(o.lua(), 1);
  return out;
}

// What a reward rule sees of an endpoint record: the prompt text (a conversation's last user message),
// the completion, the data record, the token count and finish reason, as sample_dataset gives it.
rewards::Sample endpoint_reward_input(const api::EndpointPrompt& p, const json& r) {
  std::string prompt = p.text;
  if (!p.messages.is_null())
    for (const json& m : p.messages)
      if (m["role"] == "user") prompt = m["content"].get<std::string>();
  return {prompt, r["completion"].get<std::string>(), p.record.is_object() ? p.record : json::object(),
          r["completion_tokens"].get<int64_t>(), r["finish_reason"].get<std::string>()};
}
#endif

// grpo.sample{ endpoint = ... }: the prompts sent to the endpoint (rank 0; the other ranks read its
// file), each prompt's records scored as they arrive and appended to `out`, so that a rerun after a
// kill requests only the prompts not in the file. `failed` receives the prompts that failed for good.
std::vector<json> endpoint_stage_records(lua_State* L, StageOptions& o, SampleStageOptions& s, size_t* prompt_count, size_t* failed) {
#ifdef GRPO_WITH_HTTP
  const EndpointStageOptions& e = *s.endpoint;
  const std::vector<api::EndpointPrompt> prompts = endpoint_prompts(o, e.chat);
  *prompt_count = prompts.size();
  *failed = 0;
  if (!writes_outputs(L)) {
    wait_for_outputs(L);
    return read_jsonl(s.out);
  }
  std::optional<rewards::ScorerPool> pool;
  if (!s.rules.empty()) pool.emplace(rewards::RuleSet::from_file(s.rules), static_cast<int>(s.config.reward_threads));
  api::EndpointSamplerOptions a;
  a.url = e.url;
  a.api_key = e.api_key;
  a.api = e.chat ? api::ApiKind::Chat : api::ApiKind::Completions;
  a.request.model = s.model;
  a.request.n = s.config.samples_per_prompt;
  a.request.temperature = s.config.sampling.temperature;
  a.request.top_p = s.config.sampling.top_p;
  a.request.top_k = s.config.sampling.top_k;
  a.request.max_tokens = s.config.stop.max_new_tokens;
  a.request.stop = s.config.stop.stop_strings;
  a.request.seed = s.config.seed;
  a.concurrency = e.concurrency;
  a.timeout_s = e.timeout_s;
  a.retry.max_attempts = static_cast<int>(e.max_retries + 1);
  a.jitter_seed = s.config.seed;
  a.reasoning_template = e.reasoning_template;
  a.out_path = s.out;
  // Scored exactly as local samples are (sample_dataset.h: rewards, reward, reward_failures).
  a.finish_records = [&](std::vector<json>& records) {
    if (!pool || records.empty()) return;
    const api::EndpointPrompt& p = prompts[records.front()["prompt_index"].get<size_t>()];
    std::vector<rewards::Sample> batch;
    for (const json& r : records) batch.push_back(endpoint_reward_input(p, r));
    const std::vector<rewards::SampleScore> scores = pool->score(batch);
    const std::vector<rewards::RuleSpec>& specs = pool->rule_set().rules();
    for (size_t i = 0; i < records.size(); ++i) add_scores(records[i], scores[i], specs);
  };
  StageProgress progress(o.stage(), static_cast<int64_t>(prompts.size()));
  a.progress = [&](size_t settled, size_t) { progress.update(static_cast<int64_t>(settled), {}); };
  api::EndpointSampleResult r;
  try {
    r = api::sample_endpoint(prompts, a);
  } catch (const std::exception& error) {  // the server's refusal, a malformed out file: the stage's error
    o.fail(error.what());
  }
  progress.finish();
  if (r.resumed > 0)
    fmt::print(stderr, "[{}] {} of {} prompts were in {} from an earlier run; {} requested\n", o.stage(), r.resumed, r.prompts, s.out,
               r.requested);
  fmt::print(stderr, "[{}] {} requests ({} retries) to {}, {} completion tokens in {:.1f} s\n", o.stage(), r.http_requests, r.retries,
             e.url, r.completion_tokens, r.seconds);
  for (const api::PromptFailure& f : r.failures) fmt::print(stderr, "[{}] warning: {}\n", o.stage(), api::describe_failure(f));
  if (!r.failures.empty())
    fmt::print(stderr, "[{}] warning: {} of {} prompts failed and have no records; run the stage again to request them\n", o.stage(),
               r.failures.size(), r.prompts);
  *failed = r.failures.size();
  wait_for_outputs(L);
  return std::move(r.records);
#else
  (void)L, (void)s, (void)prompt_count, (void)failed;
  o.fail("option \"endpoint\": this grpo was built without HTTP support (cpp-httplib)");
#endif
}

}  // namespace

int stage_sample(lua_State* L) {
  StageOptions o(L, "sample");
  SampleStageOptions s = sample_stage_options(o);
#ifdef GRPO_WITH_HTTP
  // Read once before the record opens, so that the script check finds what the endpoint would refuse
  // (a conversation for the completions API, a malformed message list) without a request.
  if (s.endpoint && state_of(L).check) endpoint_prompts(o, s.endpoint->chat);
#endif
  StageRecord record = begin_stage(o);
  if (record.complete() && fs::exists(s.out) && record.result().is_object()) {
    fmt::print(stderr, "[sample] finished in an earlier run ({})\n", record.path());
    lua_pushstring(L, s.out.c_str());
    push_json(L, json(read_jsonl(s.out)));
    push_json(L, record.result().value("metrics", json::object()));
    return 3;
  }

  size_t prompts = 0, failed = 0;
  std::vector<json> samples;
  if (s.endpoint) {  // the endpoint's records are in s.out already, written as they came
    samples = endpoint_stage_records(L, o, s, &prompts, &failed);
  } else {
    samples = sample_stage_records(L, o, s, &prompts);
    write_jsonl_file(L, "grpo.sample", s.out, samples);
  }
  std::map<std::string, double> means = sample_means(samples);
  if (s.endpoint) means["failed_prompts"] = static_cast<double>(failed);
  // Prompts that failed for good leave the stage unfinished: the script goes on with what came back,
  // and running it again requests those prompts alone.
  if (failed == 0) record.mark_complete(json{{"samples", s.out}, {"metrics", json(means)}});
  fmt::print(stderr, "[sample] {} completions of {} prompts -> {}\n", samples.size(), prompts, s.out);
  lua_pushstring(L, s.out.c_str());
  push_json(L, json(samples));
  push_json(L, json(means));
  return 3;
}

namespace {

// The keep option of grpo.rejection_sample as criteria: a table {rule = minimum} or a predicate that the
// Lua function behind it answers (it stays on the stack while the criteria are used; *pushed says so).
RejectionCriteria rejection_criteria(StageOptions& o, bool scored, bool* pushed) {
  lua_State* L = o.lua();
  RejectionCriteria c;
  c.max_per_prompt = o.integer("max_per_prompt");
  if (c.max_per_prompt < 0) o.fail(fmt::format("option \"max_per_prompt\" must be >= 0, got {}", c.max_per_prompt));
  c.dedupe = o.boolean("dedupe");
  *pushed = false;
  const int type = o.push("keep");
  if (type == LUA_TTABLE) {
    const json minimums = lua_to_json(L, -1);
    lua_pop(L, 1);
    if (!minimums.is_object() && !minimums.empty())
      o.fail("option \"keep\" must be a table of rule = minimum value, e.g. { accuracy = 1 }, or a function");
    for (auto it = minimums.begin(); it != minimums.end(); ++it) {
      if (!it.value().is_number())
        o.fail(fmt::format("option \"keep\": the minimum of rule \"{}\" must be a number, got {}", it.key(), it.value().dump()));
      c.min_values[it.key()] = it.value().get<double>();
    }
    if (!c.min_values.empty() && !scored)
      o.fail(fmt::format("option \"keep\" names rule \"{}\", but no rules file is given (option \"rules\")",
                         c.min_values.begin()->first));
  } else if (type == LUA_TFUNCTION) {
    *pushed = true;
    const int function = lua_gettop(L);
    c.predicate = [L, function, &o](const json& sample) {
      lua_pushvalue(L, function);
      push_json(L, sample);
      try {
        call_protected(L, 1, 1);
      } catch (const LuaError& e) {
        o.fail(fmt::format("the keep function failed on prompt {} sample {}: {}", sample.value("prompt_index", int64_t{0}) + 1,
                           sample.value("sample_index", int64_t{0}) + 1, e.what()));
      }
      if (lua_type(L, -1) != LUA_TBOOLEAN) {
        const std::string got = luaL_typename(L, -1);
        lua_pop(L, 1);
        o.fail(fmt::format("the keep function must return true or false, got {}", got));
      }
      const bool keep = lua_toboolean(L, -1);
      lua_pop(L, 1);
      return keep;
    };
  } else {
    lua_pop(L, 1);
  }
  return c;
}

}  // namespace

int stage_rejection_sample(lua_State* L) {
  StageOptions o(L, "rejection_sample");
  SampleStageOptions s = sample_stage_options(o);
  const std::string out_dir = s.out;
  const std::string kept_path = (fs::path(out_dir) / "kept.jsonl").string();
  bool predicate_pushed = false;
  const RejectionCriteria criteria = rejection_criteria(o, !s.rules.empty(), &predicate_pushed);
#ifdef GRPO_WITH_HTTP
  if (s.endpoint && state_of(L).check) endpoint_prompts(o, s.endpoint->chat);  // as grpo.sample checks them
#endif
  StageRecord record = begin_stage(o);
  if (record.complete() && fs::exists(kept_path) && record.result().is_object()) {
    fmt::print(stderr, "[rejection_sample] finished in an earlier run ({})\n", record.path());
    lua_pushstring(L, kept_path.c_str());
    push_json(L, record.result().value("stats", json::object()));
    return 2;
  }

  s.out = (fs::path(out_dir) / "samples.jsonl").string();
  size_t prompt_count = 0, failed = 0;
  // An endpoint's records are written to samples.jsonl as they come, so a killed stage resumes there.
  const std::vector<json> samples =
      s.endpoint ? endpoint_stage_records(L, o, s, &prompt_count, &failed) : sample_stage_records(L, o, s, &prompt_count);
  RejectionResult r;
  try {
    r = rejection_sample(samples, criteria);
  } catch (const std::invalid_argument& e) {
    o.fail(e.what());
  }
  if (predicate_pushed) lua_pop(L, 1);
  std::vector<json> report;
  for (const PromptRejectionCounts& c : r.prompts) report.push_back(to_json(c));
  write_jsonl_file(L, "grpo.rejection_sample", s.out, samples);
  write_jsonl_file(L, "grpo.rejection_sample", (fs::path(out_dir) / "report.jsonl").string(), report);
  write_jsonl_file(L, "grpo.rejection_sample", kept_path, r.kept);
  json stats = {{"seen", r.seen},
                      {"passed", r.passed},
                      {"duplicates", r.duplicates},
                      {"capped", r.capped},
                      {"kept", r.kept_count()},
                      {"prompts", static_cast<int64_t>(prompt_count)},
                      {"prompts_with_kept", r.prompts_with_kept},
                      {"kept_per_prompt", static_cast<double>(r.kept_count()) / static_cast<double>(std::max<size_t>(prompt_count, 1))}};
  if (s.endpoint) stats["failed_prompts"] = static_cast<int64_t>(failed);
  fmt::print(stderr, "[rejection_sample] kept {} of {} samples ({} passed, {} duplicates, {} over the cap); {} of {} prompts kept at least one\n",
             r.kept_count(), r.seen, r.passed, r.duplicates, r.capped, r.prompts_with_kept, prompt_count);
  if (r.kept.empty())
    o.fail(fmt::format("no sample was kept: {} samples of {} prompts seen, {} passed the keep criteria; the samples and the "
                       "per-prompt counts are in {}",
                       r.seen, prompt_count, r.passed, out_dir));
  // As grpo.sample: prompts that failed for good leave the stage unfinished, and a rerun requests them alone.
  if (failed == 0) record.mark_complete(json{{"kept", kept_path}, {"stats", stats}});
  fmt::print(stderr, "[rejection_sample] {} kept records -> {}\n", r.kept_count(), kept_path);
  lua_pushstring(L, kept_path.c_str());
  push_json(L, stats);
  return 2;
}

// grpo.shuffle(list [, seed]): a new list, the same values in a deterministic order (dataset_split.h).
int lua_shuffle(lua_State* L) {
  lua_table_argument(L, 1, "shuffle");
  uint64_t seed = 0;
  if (!lua_isnoneornil(L, 2)) {
    int is_integer = 0;
    const lua_Integer value = lua_tointegerx(L, 2, &is_integer);
    if (!is_integer) throw LuaError(fmt::format("bad argument #2 to 'shuffle' (integer expected, got {})", luaL_typename(L, 2)));
    seed = static_cast<uint64_t>(value);
  }
  const std::vector<size_t> order = shuffled_indices(lua_rawlen(L, 1), seed);
  push_selection(L, 1, order);
  return 1;
}

// grpo.split(list, {test = 0.1, seed = 0}) -> train, test: a shuffled split (a fraction or a count).
int lua_split(lua_State* L) {
  lua_table_argument(L, 1, "split");
  double test = 0.1;
  uint64_t seed = 0;
  if (!lua_isnoneornil(L, 2)) {
    lua_table_argument(L, 2, "split");
    lua_pushnil(L);
    while (lua_next(L, 2)) {
      const std::string key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
      if (key == "test") {
        if (!lua_isnumber(L, -1)) throw LuaError("grpo.split: option \"test\" must be a number (a fraction or a count)");
        test = lua_tonumber(L, -1);
      } else if (key == "seed") {
        if (!lua_isinteger(L, -1)) throw LuaError("grpo.split: option \"seed\" must be an integer");
        seed = static_cast<uint64_t>(lua_tointeger(L, -1));
      } else {
        throw LuaError(fmt::format("grpo.split: unknown option \"{}\" (the options are \"test\" and \"seed\")", key));
      }
      lua_pop(L, 1);
    }
  }
  const IndexSplit split = split_indices(lua_rawlen(L, 1), test, seed);
  push_selection(L, 1, split.train);
  push_selection(L, 1, split.test);
  return 2;
}

// grpo.mix{ {data = A, weight = 0.7, name = "math"}, {data = B, weight = 0.3}, n = N, seed = S } -> records,
// stats: the records of the datasets drawn in proportion to their weights, in the seeded order of
// rl/experiment/dataset_mix.h, each with a `source` field (the entry's name, else its 1-based index).
int lua_mix(lua_State* L) {
  lua_table_argument(L, 1, "mix");
  struct Entry {
    std::vector<json> records;
    double weight = 1;
    json name;
  };
  std::vector<Entry> entries;
  std::optional<size_t> n;
  uint64_t seed = 0;
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    if (lua_type(L, -2) == LUA_TSTRING) {
      const std::string key = lua_tostring(L, -2);
      if (key == "n") {
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) throw LuaError("grpo.mix: option \"n\" must be an integer >= 1");
        n = static_cast<size_t>(lua_tointeger(L, -1));
      } else if (key == "seed") {
        if (!lua_isinteger(L, -1)) throw LuaError("grpo.mix: option \"seed\" must be an integer");
        seed = static_cast<uint64_t>(lua_tointeger(L, -1));
      } else {
        throw LuaError(fmt::format("grpo.mix: unknown option \"{}\" (the options are \"n\" and \"seed\", and the "
                                   "datasets are the list's entries {{data = ..., weight = ..., name = ...}})",
                                   key));
      }
    } else if (!lua_isinteger(L, -2)) {
      throw LuaError("grpo.mix: expected a list of {data = ..., weight = ...} entries and the options n and seed");
    }
    lua_pop(L, 1);
  }
  const size_t count = lua_rawlen(L, 1);
  for (size_t i = 1; i <= count; ++i) {
    lua_rawgeti(L, 1, static_cast<lua_Integer>(i));
    const int entry = lua_gettop(L);
    if (!lua_istable(L, entry)) throw LuaError(fmt::format("grpo.mix: entry {} must be a table {{data = ..., weight = ...}}", i));
    Entry e;
    e.name = static_cast<int64_t>(i);
    bool has_data = false;
    lua_pushnil(L);
    while (lua_next(L, entry)) {
      const std::string key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
      if (key == "data" && lua_type(L, -1) == LUA_TSTRING) {
        const std::string path = lua_tostring(L, -1);
        if (const PlannedOutput* planned = planned_output(L, path)) {  // a checking run: what a checked stage writes
          e.records = planned->records.value_or(std::vector<json>{});
        } else {
          check_input_path("grpo.mix", fmt::format("entry {} data", i), path);
          e.records = read_jsonl(path);
        }
        has_data = true;
      } else if (key == "data" && lua_istable(L, -1)) {
        const json list = lua_to_json(L, -1);
        if (!list.is_array() && !list.empty()) throw LuaError(fmt::format("grpo.mix: entry {} data must be a list of records", i));
        for (const json& r : list) e.records.push_back(r);
        has_data = true;
      } else if (key == "weight" && lua_type(L, -1) == LUA_TNUMBER) {
        e.weight = lua_tonumber(L, -1);
      } else if (key == "name" && lua_type(L, -1) == LUA_TSTRING) {
        e.name = std::string(lua_tostring(L, -1));
      } else if (key == "data" || key == "weight" || key == "name") {
        throw LuaError(fmt::format("grpo.mix: entry {}: {} must be {}", i, key,
                                   key == "data" ? "a JSONL path or a list of records" : key == "weight" ? "a number" : "a string"));
      } else {
        throw LuaError(fmt::format("grpo.mix: entry {} has unknown key \"{}\" (expected data, weight, name)", i, key));
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
    if (!has_data) throw LuaError(fmt::format("grpo.mix: entry {} has no data", i));
    for (size_t k = 0; k < e.records.size(); ++k)
      if (!e.records[k].is_object())
        throw LuaError(fmt::format("grpo.mix: record {} of entry {} is not a table of fields", k + 1, i));
    entries.push_back(std::move(e));
  }
  // A checking run mixes what it knows: an earlier checked stage's output reads as no records.
  if (state_of(L).check)
    entries.erase(std::remove_if(entries.begin(), entries.end(), [](const Entry& e) { return e.records.empty(); }), entries.end());
  if (state_of(L).check && entries.empty()) {
    push_json(L, json::array());
    push_json(L, json{{"n", 0}, {"sources", json::array()}});
    return 2;
  }
  std::vector<MixSource> sources;
  for (const Entry& e : entries) sources.push_back({e.records.size(), e.weight});
  MixPlan plan;
  try {
    plan = plan_mix(sources, n ? *n : largest_mix_without_repeats(sources), seed);
  } catch (const std::invalid_argument& e) {
    throw LuaError(fmt::format("grpo.{}", e.what()));
  }
  std::vector<json> mixed;
  mixed.reserve(plan.draws.size());
  for (const MixDraw& d : plan.draws) {
    json r = entries[d.source].records[d.record];
    r["source"] = entries[d.source].name;
    mixed.push_back(std::move(r));
  }
  json stats = {{"n", plan.draws.size()}, {"sources", json::array()}};
  for (size_t i = 0; i < entries.size(); ++i) {
    stats["sources"].push_back({{"name", entries[i].name}, {"size", sources[i].size}, {"weight", sources[i].weight},
                                {"drawn", plan.counts[i]}, {"passes", plan.passes[i]}});
    if (plan.counts[i] > sources[i].size)
      fmt::print(stderr, "grpo.mix: warning: dataset {}{} has {} records for a share of {}: it is reshuffled and repeated, "
                 "each record used up to {} times\n", i + 1, entries[i].name.is_string() ? " (" + entries[i].name.dump() + ")" : "",
                 sources[i].size, plan.counts[i], plan.passes[i]);
  }
  push_json(L, json(mixed));
  push_json(L, stats);
  return 2;
}

// grpo.read_jsonl(path): relative paths resolve against the working directory, as stage inputs do.
int lua_read_jsonl(lua_State* L) {
  const std::string path = lua_string_argument(L, 1, "read_jsonl");
  // A checking run reads what it planned: a file a checked stage would write reads as an empty list.
  if (const PlannedOutput* planned = planned_output(L, path)) {
    push_json(L, json(planned->records.value_or(std::vector<json>{})));
    return 1;
  }
  check_input_path("grpo.read_jsonl", "path", path);
  push_json(L, json(read_jsonl(path)));
  return 1;
}

// grpo.write_jsonl(path, records): relative paths are inside the run directory, as stage outputs are.
int lua_write_jsonl(lua_State* L) {
  const std::string path = output_path(L, lua_string_argument(L, 1, "write_jsonl"));
  const json records = lua_to_json(L, 2);
  if (!records.is_array() && !records.empty()) throw LuaError("grpo.write_jsonl: expected a list of records");
  if (CheckRun* check = state_of(L).check) {  // a checking run writes nothing, and remembers the records
    check->planned[planned_key(path)].records = records.is_array() ? records.get<std::vector<json>>() : std::vector<json>{};
    lua_pushstring(L, path.c_str());
    return 1;
  }
  write_jsonl_file(L, "grpo.write_jsonl", path, records.is_array() ? records.get<std::vector<json>>() : std::vector<json>{});
  lua_pushstring(L, path.c_str());
  return 1;
}

}  // namespace grpo
