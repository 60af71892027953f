#include "rl/experiment.h"

#include <fmt/core.h>
#include <lua.hpp>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>

#include "policy/checkpoint.h"
#include "policy/model_size.h"
#include "policy/tokenizer/tokenizer.h"
#include "rewards/rule_set.h"
#include "rl/distributed.h"
#include "rl/evaluation.h"
#include "rl/grpo_trainer.h"
#include "rl/jsonl.h"
#include "rl/pretrain.h"
#include "rl/dataset_split.h"
#include "rl/progress.h"
#include "rl/sample_dataset.h"
#include "rl/sft.h"
#include "rl/run_directory.h"
#include "rl/shuffled_cursor.h"
#include "rl/train_checkpoint.h"

namespace grpo {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Lua values <-> JSON
// ---------------------------------------------------------------------------------------------

json lua_to_json(lua_State* L, int index, int depth = 0) {
  index = lua_absindex(L, index);
  if (depth > 64) luaL_error(L, "table nested too deeply");
  switch (lua_type(L, index)) {
    case LUA_TNIL: return nullptr;
    case LUA_TBOOLEAN: return static_cast<bool>(lua_toboolean(L, index));
    case LUA_TNUMBER:
      return lua_isinteger(L, index) ? json(static_cast<int64_t>(lua_tointeger(L, index))) : json(lua_tonumber(L, index));
    case LUA_TSTRING: return std::string(lua_tostring(L, index));
    case LUA_TTABLE: {
      const lua_Integer n = static_cast<lua_Integer>(lua_rawlen(L, index));
      int64_t keys = 0;
      lua_pushnil(L);
      while (lua_next(L, index)) {
        ++keys;
        lua_pop(L, 1);
      }
      if (n > 0 && keys == n) {
        json array = json::array();
        for (lua_Integer i = 1; i <= n; ++i) {
          lua_rawgeti(L, index, i);
          array.push_back(lua_to_json(L, -1, depth + 1));
          lua_pop(L, 1);
        }
        return array;
      }
      json object = json::object();
      lua_pushnil(L);
      while (lua_next(L, index)) {
        if (lua_type(L, -2) != LUA_TSTRING) luaL_error(L, "tables passed to grpo must have string keys or be lists");
        object[lua_tostring(L, -2)] = lua_to_json(L, -1, depth + 1);
        lua_pop(L, 1);
      }
      return object;
    }
    default: luaL_error(L, "cannot convert a %s to data", luaL_typename(L, index));
  }
  return nullptr;
}

void push_json(lua_State* L, const json& v) {
  if (v.is_null()) {
    lua_pushnil(L);
  } else if (v.is_boolean()) {
    lua_pushboolean(L, v.get<bool>());
  } else if (v.is_number_integer()) {
    lua_pushinteger(L, v.get<int64_t>());
  } else if (v.is_number()) {
    lua_pushnumber(L, v.get<double>());
  } else if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    lua_pushlstring(L, s.data(), s.size());
  } else if (v.is_array()) {
    lua_createtable(L, static_cast<int>(v.size()), 0);
    for (size_t i = 0; i < v.size(); ++i) {
      push_json(L, v[i]);
      lua_rawseti(L, -2, static_cast<lua_Integer>(i + 1));
    }
  } else {
    lua_createtable(L, 0, static_cast<int>(v.size()));
    for (auto it = v.begin(); it != v.end(); ++it) {
      push_json(L, it.value());
      lua_setfield(L, -2, it.key().c_str());
    }
  }
}

uint64_t fnv1a(const std::string& bytes) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ull;
  return h;
}

int append_bytes(lua_State*, const void* data, size_t size, void* out) {
  static_cast<std::string*>(out)->append(static_cast<const char*>(data), size);
  return 0;
}

// What a stage record keeps of an option's raw Lua value, to tell on a rerun whether it changed:
// plain data as JSON, a Lua function by a hash of its bytecode (without debug information, so moving
// it to another line is no change), and anything long by its size and hash.
json option_value(lua_State* L, int index, int depth) {
  index = lua_absindex(L, index);
  if (depth > 64) luaL_error(L, "table nested too deeply");
  switch (lua_type(L, index)) {
    case LUA_TFUNCTION: {
      if (lua_iscfunction(L, index)) return "<C function>";
      std::string bytecode;
      lua_pushvalue(L, index);
      lua_dump(L, append_bytes, &bytecode, /*strip=*/1);
      lua_pop(L, 1);
      return fmt::format("<function {:016x}>", fnv1a(bytecode));
    }
    case LUA_TTABLE: {
      json object = json::object();
      lua_pushnil(L);
      while (lua_next(L, index)) {
        std::string key = lua_type(L, -2) == LUA_TNUMBER ? fmt::format("[{}]", lua_tonumber(L, -2))
                          : lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : luaL_typename(L, -2);
        object[key] = option_value(L, -1, depth + 1);
        lua_pop(L, 1);
      }
      return object;
    }
    case LUA_TUSERDATA:
    case LUA_TLIGHTUSERDATA:
    case LUA_TTHREAD: return fmt::format("<{}>", luaL_typename(L, index));
    default: return lua_to_json(L, index, depth);
  }
}

json option_fingerprint(lua_State* L, int index) {
  json value = option_value(L, index, 0);
  const std::string text = value.dump();
  constexpr size_t kLongestKeptAsIs = 200;  // longer values (datasets) are kept as size and hash
  if (text.size() <= kLongestKeptAsIs) return value;
  return fmt::format("<{} bytes, hash {:016x}>", text.size(), fnv1a(text));
}

// ---------------------------------------------------------------------------------------------
// Stage options: validated up front, overridable from the command line
// ---------------------------------------------------------------------------------------------

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

struct ExperimentState {
  ExperimentOptions options;
  std::set<std::string> used_overrides;
  int stage_calls = 0;  // numbers the stage records in the run directory (run_directory.h)
};

ExperimentState& state_of(lua_State* L) {
  return **static_cast<ExperimentState**>(lua_getextraspace(L));
}

// Data parallel: rank 0 writes every output; the other ranks compute the same results and wait here
// after each write they will read (a saved model, a JSONL file).
bool writes_outputs(lua_State* L) {
  Distributed* d = state_of(L).options.distributed;
  return !d || d->is_main();
}
void wait_for_outputs(lua_State* L) {
  if (Distributed* d = state_of(L).options.distributed) d->barrier();
}

// The options table of one stage call (argument 1), with its known keys.
class StageOptions {
 public:
  StageOptions(lua_State* L, std::string stage, std::vector<std::string> known) : L_(L), stage_(std::move(stage)) {
    luaL_checktype(L, 1, LUA_TTABLE);
    known_ = std::set<std::string>(known.begin(), known.end());
    lua_pushnil(L);
    while (lua_next(L, 1)) {
      if (lua_type(L, -2) != LUA_TSTRING) luaL_error(L, "grpo.%s: option keys must be names", stage_.c_str());
      std::string key = lua_tostring(L, -2);
      if (!known_.count(key)) {
        std::string best;
        size_t best_distance = 1000;
        for (const std::string& k : known) {
          size_t d = edit_distance(key, k);
          if (d < best_distance) best = k, best_distance = d;
        }
        luaL_error(L, "grpo.%s: unknown option \"%s\" (did you mean \"%s\"?)", stage_.c_str(), key.c_str(), best.c_str());
      }
      lua_pop(L, 1);
    }
  }

  bool has(const char* key) { return override_of(key) || field_type(key) != LUA_TNIL; }

  double number(const char* key, double fallback) { return resolved(key, read_number(key, fallback)); }
  int64_t integer(const char* key, int64_t fallback) {
    double v = read_number(key, static_cast<double>(fallback));
    if (v != static_cast<double>(static_cast<int64_t>(v))) type_error(key, "an integer");
    return resolved(key, static_cast<int64_t>(v));
  }
  bool boolean(const char* key, bool fallback) {
    if (const std::string* o = override_of(key)) return resolved(key, *o == "true" || *o == "1");
    int type = field_type(key);
    if (type == LUA_TNIL) return resolved(key, fallback);
    if (type != LUA_TBOOLEAN) type_error(key, "true or false");
    lua_getfield(L_, 1, key);
    bool v = lua_toboolean(L_, -1);
    lua_pop(L_, 1);
    return resolved(key, v);
  }
  std::string string(const char* key, const std::string& fallback) {
    if (const std::string* o = override_of(key)) return resolved(key, *o);
    int type = field_type(key);
    if (type == LUA_TNIL) return resolved(key, fallback);
    if (type != LUA_TSTRING) type_error(key, "a string");
    lua_getfield(L_, 1, key);
    std::string v = lua_tostring(L_, -1);
    lua_pop(L_, 1);
    return resolved(key, v);
  }
  std::string required_string(const char* key) {
    if (!has(key)) luaL_error(L_, "grpo.%s: option \"%s\" is required", stage_.c_str(), key);
    return string(key, "");
  }
  // Pushes the raw field and returns its Lua type.
  int push(const char* key) { return lua_getfield(L_, 1, key); }

  [[noreturn]] void type_error(const char* key, const char* expected) {
    luaL_error(L_, "grpo.%s: option \"%s\" must be %s, got %s", stage_.c_str(), key, expected,
               lua_typename(L_, field_type(key)));
    throw std::logic_error("unreachable");
  }
  const std::string& stage() const { return stage_; }
  lua_State* lua() const { return L_; }

  // The stage's options as its record in the run directory keeps them: every value read so far through
  // the typed getters (defaults and --set overrides applied), then the raw value of every other key
  // given in the table (data, prompt functions, config tables) or by --set, as a fingerprint.
  json resolved_options() {
    json options = resolved_;
    lua_pushnil(L_);
    while (lua_next(L_, 1)) {
      std::string key = lua_tostring(L_, -2);
      if (!options.contains(key)) options[key] = option_fingerprint(L_, -1);
      lua_pop(L_, 1);
    }
    const std::string prefix = stage_ + ".";
    for (const auto& [key, value] : state_of(L_).options.overrides)
      if (key.rfind(prefix, 0) == 0 && !options.contains(key.substr(prefix.size()))) options[key.substr(prefix.size())] = value;
    return options;
  }

 private:
  double read_number(const char* key, double fallback) {
    if (const std::string* o = override_of(key)) return std::stod(*o);
    int type = field_type(key);
    if (type == LUA_TNIL) return fallback;
    if (type != LUA_TNUMBER) type_error(key, "a number");
    lua_getfield(L_, 1, key);
    double v = lua_tonumber(L_, -1);
    lua_pop(L_, 1);
    return v;
  }
  template <typename T>
  T resolved(const char* key, T value) {
    resolved_[key] = value;
    return value;
  }

  int field_type(const char* key) {
    int type = lua_getfield(L_, 1, key);
    lua_pop(L_, 1);
    return type;
  }
  const std::string* override_of(const char* key) {
    ExperimentState& s = state_of(L_);
    auto it = s.options.overrides.find(stage_ + "." + key);
    if (it == s.options.overrides.end()) return nullptr;
    s.used_overrides.insert(it->first);
    return &it->second;
  }

  lua_State* L_;
  std::string stage_;
  std::set<std::string> known_;
  json resolved_ = json::object();
};

// A stage output path: relative paths live in the run directory.
std::string output_path(lua_State* L, const std::string& relative) {
  fs::path p(relative);
  return p.is_absolute() ? p.string() : (fs::path(state_of(L).options.run_directory) / p).string();
}

// The record of this stage call in the run directory (run_directory.h); open it once every option has
// been read. Throws OptionsChangedError when a rerun gives the stage other options.
StageRecord begin_stage(StageOptions& o) {
  ExperimentState& s = state_of(o.lua());
  // The other ranks keep their own stage records (the same history) under .ranks/, so that every rank
  // takes the same resume decisions while only rank 0 touches the run directory's own records.
  const std::string records = writes_outputs(o.lua()) ? s.options.run_directory
                                                      : fmt::format("{}/.ranks/{}", s.options.run_directory,
                                                                    s.options.distributed->rank());
  return StageRecord::open(records, s.stage_calls++, o.stage(), o.resolved_options());
}

// For a stage an earlier run into this directory finished: pushes the recorded result and returns true,
// unless that result is a path that no longer exists (then the stage runs again).
bool push_recorded_result(lua_State* L, const StageRecord& record) {
  if (!record.complete()) return false;
  const json& result = record.result();
  if (result.is_string() && !fs::exists(result.get<std::string>())) return false;
  fmt::print(stderr, "[{}] finished in an earlier run ({})\n", record.stage(), record.path());
  push_json(L, result);
  return true;
}

// ---------------------------------------------------------------------------------------------
// Data: records from a JSONL file or a Lua list; prompts from a template or a function
// ---------------------------------------------------------------------------------------------

std::vector<json> stage_records(StageOptions& o, const char* key) {
  lua_State* L = o.lua();
  int type = o.push(key);
  std::vector<json> records;
  if (type == LUA_TSTRING) {
    records = read_jsonl(lua_tostring(L, -1));
  } else if (type == LUA_TTABLE) {
    json list = lua_to_json(L, -1);
    if (!list.is_array()) luaL_error(L, "grpo.%s: option \"%s\" must be a list of records or a JSONL path", o.stage().c_str(), key);
    for (json& r : list) records.push_back(std::move(r));
  } else {
    luaL_error(L, "grpo.%s: option \"%s\" (a JSONL path or a list of records) is required", o.stage().c_str(), key);
  }
  lua_pop(L, 1);
  return records;
}

// "{field}" placeholders replaced by the record's values.
std::string fill_template(const std::string& text, const json& record) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    size_t close = text[i] == '{' ? text.find('}', i) : std::string::npos;
    if (close == std::string::npos) {
      out += text[i];
      continue;
    }
    std::string field = text.substr(i + 1, close - i - 1);
    if (!record.contains(field)) throw std::runtime_error(fmt::format("prompt template: record has no field \"{}\"", field));
    const json& v = record[field];
    out += v.is_string() ? v.get<std::string>() : v.dump();
    i = close;
  }
  return out;
}

std::vector<PromptExample> stage_prompts(StageOptions& o, const Tokenizer& tok) {
  lua_State* L = o.lua();
  std::vector<json> records = stage_records(o, "data");
  std::vector<PromptExample> out;
  int type = o.push("prompt");
  for (json& record : records) {
    PromptExample p;
    if (type == LUA_TFUNCTION) {
      lua_pushvalue(L, -1);
      push_json(L, record);
      lua_call(L, 1, 1);
      if (!lua_isstring(L, -1)) luaL_error(L, "grpo.%s: the prompt function must return a string", o.stage().c_str());
      p.prompt = lua_tostring(L, -1);
      lua_pop(L, 1);
    } else if (type == LUA_TSTRING) {
      p.prompt = fill_template(lua_tostring(L, -1), record);
    } else if (record.contains("prompt") && record["prompt"].is_string()) {
      p.prompt = record["prompt"].get<std::string>();
    } else {
      luaL_error(L, "grpo.%s: give a prompt template or function, or records with a \"prompt\" field", o.stage().c_str());
    }
    p.prompt_ids = tok.encode(p.prompt, /*allow_special=*/false);
    if (tok.bos_id() >= 0) p.prompt_ids.insert(p.prompt_ids.begin(), tok.bos_id());
    p.record = std::move(record);
    out.push_back(std::move(p));
  }
  lua_pop(L, 1);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Terminal output
// ---------------------------------------------------------------------------------------------


void save_model(CausalLM& model, const Tokenizer& tok, const std::string& dir) {
  save_checkpoint(model, dir);
  tok.save(dir + "/tokenizer.json");
}

// ---------------------------------------------------------------------------------------------
// Stages
// ---------------------------------------------------------------------------------------------

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
  CausalLM model = load_checkpoint(model_dir);
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

LossAggregation parse_aggregation(lua_State* L, const std::string& name) {
  if (name == "token-mean") return LossAggregation::TokenMean;
  if (name == "seq-mean-token-mean") return LossAggregation::SeqMeanTokenMean;
  if (name == "seq-mean-token-sum") return LossAggregation::SeqMeanTokenSum;
  if (name == "seq-mean-token-sum-norm") return LossAggregation::SeqMeanTokenSumNorm;
  luaL_error(L, "grpo.train: loss_aggregation \"%s\" is not one of token-mean, seq-mean-token-mean, seq-mean-token-sum, "
                "seq-mean-token-sum-norm", name.c_str());
  return LossAggregation::TokenMean;
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
  CausalLM model = load_checkpoint(model_dir);
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
  std::string model_dir = o.required_string("model");
  Tokenizer tok = Tokenizer::from_file(model_dir);
  CausalLM model = load_checkpoint(model_dir);
  std::vector<PromptExample> prompts = stage_prompts(o, tok);
  rewards::RuleSet rules = rewards::RuleSet::from_file(o.required_string("rules"));
  EvalConfig c;
  c.samples_per_prompt = o.integer("n", 8);
  c.pass_k = {1, c.samples_per_prompt};
  if (o.has("k")) c.pass_k = {1, o.integer("k", 8)};
  c.sampling.temperature = o.number("temperature", 1.0);
  c.sampling.top_p = o.number("top_p", 1.0);
  c.stop.max_new_tokens = o.integer("max_new_tokens", 256);
  if (tok.eos_id() >= 0) c.stop.stop_ids.push_back(tok.eos_id());
  if (o.has("stop")) c.stop.stop_strings.push_back(o.string("stop", ""));
  c.seed = static_cast<uint64_t>(o.integer("seed", 12345));
  StageRecord record = begin_stage(o);
  if (push_recorded_result(L, record)) return 1;
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

// ---------------------------------------------------------------------------------------------
// Data stages: sft, sample; dataset helpers
// ---------------------------------------------------------------------------------------------

// Each record's completion for SFT: the `completion` option as a template or a function of the record,
// else the record's "completion" field.
std::vector<std::string> stage_completions(StageOptions& o, const std::vector<PromptExample>& prompts) {
  lua_State* L = o.lua();
  const int type = o.push("completion");
  std::vector<std::string> out;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const json& record = prompts[i].record;
    if (type == LUA_TFUNCTION) {
      lua_pushvalue(L, -1);
      push_json(L, record);
      lua_call(L, 1, 1);
      if (!lua_isstring(L, -1)) luaL_error(L, "grpo.%s: the completion function must return a string", o.stage().c_str());
      out.push_back(lua_tostring(L, -1));
      lua_pop(L, 1);
    } else if (type == LUA_TSTRING) {
      out.push_back(fill_template(lua_tostring(L, -1), record));
    } else if (record.contains("completion") && record["completion"].is_string()) {
      out.push_back(record["completion"].get<std::string>());
    } else {
      luaL_error(L, "grpo.%s: record %d has no string \"completion\" field (or give a completion template or function)",
                 o.stage().c_str(), static_cast<int>(i + 1));
    }
  }
  lua_pop(L, 1);
  return out;
}

// A stage that returns a path and a metrics table: what an earlier run into this directory recorded,
// when the path still exists.
bool push_recorded_pair(lua_State* L, const StageRecord& record, const char* path_key) {
  if (!record.complete() || !record.result().is_object()) return false;
  const json& result = record.result();
  if (!result.contains(path_key) || !fs::exists(result[path_key].get<std::string>())) return false;
  fmt::print(stderr, "[{}] finished in an earlier run ({})\n", record.stage(), record.path());
  push_json(L, result[path_key]);
  push_json(L, result.value("metrics", json::object()));
  return true;
}

int stage_sft(lua_State* L) {
  StageOptions o(L, "sft", {"model", "data", "prompt", "completion", "eos", "steps", "epochs", "batch_size", "max_len", "pack",
                            "lr", "warmup", "min_lr_ratio", "weight_decay", "max_grad_norm", "seed", "out"});
  const std::string model_dir = o.required_string("model");
  const bool eos = o.boolean("eos", true);
  const int completion_type = o.push("completion");
  lua_pop(L, 1);
  if (completion_type != LUA_TNIL && completion_type != LUA_TSTRING && completion_type != LUA_TFUNCTION)
    o.type_error("completion", "a template or a function");
  SftConfig c;
  c.steps = o.integer("steps", 0);
  c.epochs = o.integer("epochs", 1);
  c.batch_size = o.integer("batch_size", 16);
  c.max_len = o.integer("max_len", 512);
  c.pack = o.boolean("pack", false);
  c.lr = {o.number("lr", 1e-5), o.integer("warmup", 0), LrDecay::Cosine, 0, o.number("min_lr_ratio", 0.1)};
  c.adamw.weight_decay = o.number("weight_decay", 0.0);
  c.max_grad_norm = o.number("max_grad_norm", 1.0);
  c.seed = static_cast<uint64_t>(o.integer("seed", 0));
  const std::string out = output_path(L, o.string("out", "sft"));
  StageRecord record = begin_stage(o);
  if (push_recorded_pair(L, record, "model")) return 2;

  Tokenizer tok = Tokenizer::from_file(model_dir);
  CausalLM model = load_checkpoint(model_dir);
  std::vector<PromptExample> prompts = stage_prompts(o, tok);
  std::vector<std::string> completions = stage_completions(o, prompts);
  if (prompts.empty()) luaL_error(L, "grpo.sft: no data");
  std::vector<SftExample> examples;
  for (size_t i = 0; i < prompts.size(); ++i) {
    SftExample e{prompts[i].prompt_ids, tok.encode(completions[i], /*allow_special=*/false)};
    if (eos && tok.eos_id() >= 0) e.completion_ids.push_back(tok.eos_id());
    if (e.completion_ids.empty()) luaL_error(L, "grpo.sft: record %d has an empty completion", static_cast<int>(i + 1));
    examples.push_back(std::move(e));
  }
  const int32_t pad = tok.pad_id() >= 0 ? tok.pad_id() : std::max(tok.eos_id(), 0);

  fs::create_directories(out);
  std::ofstream metrics_file(out + "/metrics.jsonl");
  StageProgress progress("sft", sft_steps(c, examples.size()));
  SftResult r = sft(model, examples, c, pad, [&](const SftProgress& p) {
    metrics_file << json{{"step", p.step}, {"epoch", p.epoch}, {"loss", p.loss}, {"grad_norm", p.grad_norm},
                         {"learning_rate", p.learning_rate}, {"completion_tokens", p.completion_tokens},
                         {"tokens_per_second", p.tokens_per_second}, {"skipped", p.skipped}}
                        .dump()
                 << "\n";
    progress.update(p.step + 1, {{"loss", p.loss}, {"lr", p.learning_rate}, {"tok/s", p.tokens_per_second}});
  });
  progress.finish();
  if (!metrics_file.flush()) luaL_error(L, "grpo.sft: cannot write %s/metrics.jsonl", out.c_str());
  if (r.truncated > 0)
    fmt::print(stderr, "[sft] warning: {} example rows were longer than max_len = {} and were cut ({} left no completion token)\n",
               r.truncated, c.max_len, r.dropped);
  save_model(model, tok, out);
  const json metrics = {{"loss", r.final_loss},       {"steps", r.steps},         {"completion_tokens", r.completion_tokens},
                        {"truncated", r.truncated},   {"dropped", r.dropped},     {"skipped_updates", r.skipped_updates}};
  record.mark_complete(json{{"model", out}, {"metrics", metrics}});
  fmt::print(stderr, "[sft] final loss {:.4f} -> {}\n", r.final_loss, out);
  lua_pushstring(L, out.c_str());
  push_json(L, metrics);
  return 2;
}

int stage_sample(lua_State* L) {
  StageOptions o(L, "sample", {"model", "data", "prompt", "rules", "n", "temperature", "top_p", "top_k", "max_new_tokens",
                               "stop", "seed", "out"});
  const std::string model_dir = o.required_string("model");
  const std::string rules_path = o.string("rules", "");
  SampleConfig c;
  c.samples_per_prompt = o.integer("n", 1);
  c.sampling.temperature = o.number("temperature", 1.0);
  c.sampling.top_p = o.number("top_p", 1.0);
  c.sampling.top_k = o.integer("top_k", 0);
  c.stop.max_new_tokens = o.integer("max_new_tokens", 256);
  if (o.has("stop")) c.stop.stop_strings.push_back(o.string("stop", ""));
  c.seed = static_cast<uint64_t>(o.integer("seed", 12345));
  const std::string out = output_path(L, o.string("out", "samples.jsonl"));
  StageRecord record = begin_stage(o);
  if (record.complete() && fs::exists(out) && record.result().is_object()) {
    fmt::print(stderr, "[sample] finished in an earlier run ({})\n", record.path());
    lua_pushstring(L, out.c_str());
    push_json(L, json(read_jsonl(out)));
    push_json(L, record.result().value("metrics", json::object()));
    return 3;
  }

  Tokenizer tok = Tokenizer::from_file(model_dir);
  CausalLM model = load_checkpoint(model_dir);
  if (tok.eos_id() >= 0) c.stop.stop_ids.push_back(tok.eos_id());
  std::vector<PromptExample> prompts = stage_prompts(o, tok);
  std::optional<rewards::RuleSet> rules;
  if (!rules_path.empty()) rules = rewards::RuleSet::from_file(rules_path);
  // Prompts in chunks that fill the rollout batch, so the progress line moves; prompt i keeps seed + i.
  const size_t chunk = static_cast<size_t>(std::max<int64_t>(1, c.batch_rows / std::max<int64_t>(1, c.samples_per_prompt)));
  const int64_t chunks = static_cast<int64_t>((prompts.size() + chunk - 1) / chunk);
  StageProgress progress("sample", chunks);
  std::vector<json> samples;
  const auto start = std::chrono::steady_clock::now();
  int64_t tokens = 0;
  for (size_t first = 0; first < prompts.size(); first += chunk) {
    std::vector<PromptExample> part(prompts.begin() + static_cast<std::ptrdiff_t>(first),
                                    prompts.begin() + static_cast<std::ptrdiff_t>(std::min(prompts.size(), first + chunk)));
    SampleConfig pc = c;
    pc.seed = c.seed + first;
    for (json& s : sample_dataset(model, tok, part, pc, rules ? &*rules : nullptr)) {
      s["prompt_index"] = s["prompt_index"].get<int64_t>() + static_cast<int64_t>(first);
      tokens += s["completion_tokens"].get<int64_t>();
      samples.push_back(std::move(s));
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ProgressValues values;
    if (rules) values.push_back({"reward", sample_means(samples)["reward"]});
    values.push_back({"tok/s", tokens / std::max(seconds, 1e-9)});
    progress.update(static_cast<int64_t>(first / chunk) + 1, values);
  }
  progress.finish();
  const fs::path parent = fs::path(out).parent_path();
  if (!parent.empty()) fs::create_directories(parent);
  std::ofstream file(out);
  for (const json& s : samples) file << s.dump() << "\n";
  if (!file.flush()) luaL_error(L, "grpo.sample: cannot write %s", out.c_str());
  const std::map<std::string, double> means = sample_means(samples);
  record.mark_complete(json{{"samples", out}, {"metrics", json(means)}});
  fmt::print(stderr, "[sample] {} completions of {} prompts -> {}\n", samples.size(), prompts.size(), out);
  lua_pushstring(L, out.c_str());
  push_json(L, json(samples));
  push_json(L, json(means));
  return 3;
}

// grpo.shuffle(list [, seed]): a new list, the same values in a deterministic order (dataset_split.h).
int lua_shuffle(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  const uint64_t seed = static_cast<uint64_t>(luaL_optinteger(L, 2, 0));
  const std::vector<size_t> order = shuffled_indices(lua_rawlen(L, 1), seed);
  lua_createtable(L, static_cast<int>(order.size()), 0);
  for (size_t k = 0; k < order.size(); ++k) {
    lua_rawgeti(L, 1, static_cast<lua_Integer>(order[k] + 1));
    lua_rawseti(L, -2, static_cast<lua_Integer>(k + 1));
  }
  return 1;
}

// grpo.split(list, {test = 0.1, seed = 0}) -> train, test: a shuffled split (a fraction or a count).
int lua_split(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  double test = 0.1;
  uint64_t seed = 0;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, 2)) {
      const char* key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
      if (std::string(key) == "test") {
        if (!lua_isnumber(L, -1)) luaL_error(L, "grpo.split: option \"test\" must be a number (a fraction or a count)");
        test = lua_tonumber(L, -1);
      } else if (std::string(key) == "seed") {
        if (!lua_isinteger(L, -1)) luaL_error(L, "grpo.split: option \"seed\" must be an integer");
        seed = static_cast<uint64_t>(lua_tointeger(L, -1));
      } else {
        luaL_error(L, "grpo.split: unknown option \"%s\" (the options are \"test\" and \"seed\")", key);
      }
      lua_pop(L, 1);
    }
  }
  const IndexSplit split = split_indices(lua_rawlen(L, 1), test, seed);
  for (const std::vector<size_t>* part : {&split.train, &split.test}) {
    lua_createtable(L, static_cast<int>(part->size()), 0);
    for (size_t k = 0; k < part->size(); ++k) {
      lua_rawgeti(L, 1, static_cast<lua_Integer>((*part)[k] + 1));
      lua_rawseti(L, -2, static_cast<lua_Integer>(k + 1));
    }
  }
  return 2;
}

int lua_read_jsonl(lua_State* L) {
  push_json(L, json(read_jsonl(luaL_checkstring(L, 1))));
  return 1;
}

int lua_write_jsonl(lua_State* L) {
  std::string path = output_path(L, luaL_checkstring(L, 1));
  json records = lua_to_json(L, 2);
  if (!records.is_array()) luaL_error(L, "grpo.write_jsonl: expected a list of records");
  if (writes_outputs(L)) {
    fs::path parent = fs::path(path).parent_path();
    if (!parent.empty()) fs::create_directories(parent);
    std::ofstream out(path);
    for (const json& r : records) out << r.dump() << "\n";
    if (!out) luaL_error(L, "grpo.write_jsonl: cannot write %s", path.c_str());
  }
  wait_for_outputs(L);
  lua_pushstring(L, path.c_str());
  return 1;
}

// C++ exceptions must not unwind through Lua's C frames: each stage runs inside this guard, which
// turns them into Lua errors (with the script's file:line attached by luaL_error's caller info).
template <lua_CFunction F>
int guarded(lua_State* L) {
  std::string message;
  try {
    return F(L);
  } catch (const std::exception& e) {
    message = e.what();
  }
  return luaL_error(L, "%s", message.c_str());
}

}  // namespace

void run_experiment(const ExperimentOptions& options) {
  ExperimentState state{options, {}};
  fs::create_directories(options.run_directory);
  lua_State* L = luaL_newstate();
  if (!L) throw std::runtime_error("cannot create a Lua state");
  *static_cast<ExperimentState**>(lua_getextraspace(L)) = &state;
  luaL_openlibs(L);
  static const luaL_Reg functions[] = {{"init", guarded<stage_init>},
                                       {"pretrain", guarded<stage_pretrain>},
                                       {"train", guarded<stage_train>},
                                       {"eval", guarded<stage_eval>},
                                       {"sft", guarded<stage_sft>},
                                       {"sample", guarded<stage_sample>},
                                       {"shuffle", guarded<lua_shuffle>},
                                       {"split", guarded<lua_split>},
                                       {"read_jsonl", guarded<lua_read_jsonl>},
                                       {"write_jsonl", guarded<lua_write_jsonl>},
                                       {nullptr, nullptr}};
  luaL_newlib(L, functions);
  lua_pushstring(L, options.run_directory.c_str());
  lua_setfield(L, -2, "run_dir");
  lua_setglobal(L, "grpo");
  // The script's own folder is on the module path, so examples can `require` their task module.
  fs::path folder = fs::absolute(options.script).parent_path();
  lua_getglobal(L, "grpo");
  lua_pushstring(L, folder.string().c_str());
  lua_setfield(L, -2, "script_dir");
  lua_pop(L, 1);
  std::string path_setup = fmt::format("package.path = '{}/?.lua;' .. package.path", folder.string());
  luaL_dostring(L, path_setup.c_str());

  std::string error;
  if (luaL_loadfile(L, options.script.c_str()) != LUA_OK || lua_pcall(L, 0, 0, 0) != LUA_OK) {
    error = lua_tostring(L, -1) ? lua_tostring(L, -1) : "unknown error";
  }
  lua_close(L);
  if (!error.empty()) throw std::runtime_error(error);
  for (const auto& [key, value] : options.overrides)
    if (!state.used_overrides.count(key))
      fmt::print(stderr, "warning: --set {}={} was never used (no stage read that option)\n", key, value);
}

}  // namespace grpo
