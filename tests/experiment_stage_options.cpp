// Stage options: --set checked before a script runs, the declared defaults (those grpo.train has always
// had), the settings the demo's calls resolve to, input paths named in errors, and errors that unwind
// (a stage rejecting its options, or a prompt function failing, under pcall, over and over).
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "rewards/lua_trampoline.h"
#include "rl/experiment/experiment.h"
#include "rl/experiment/jsonl.h"
#include "rl/experiment/stage_configs.h"
#include "rl/experiment/stage_option_specs.h"
#include "rl/experiment/stage_options.h"

using namespace grpo;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string fresh_directory(const char* name) {
  fs::path p = fs::temp_directory_path() / (std::string("grpo-") + name + "-" + std::to_string(getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

void write_file(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// The message parse_overrides throws for one --set, or "" when it accepts it.
std::string override_error(const std::string& key, const std::string& value) {
  try {
    parse_overrides({{key, value}});
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A Lua state bound to a run in `directory` with the options table `table` (Lua source) at index 1, as a
// stage sees it.
struct StageCall {
  ExperimentState state;
  lua_State* L;
  StageCall(const std::string& directory, const std::string& table, std::map<std::string, json> overrides = {}) {
    state.options.run_directory = directory + "/run";
    state.overrides = std::move(overrides);
    L = luaL_newstate();
    luaL_openlibs(L);
    bind_state(L, &state);
    REQUIRE(luaL_dostring(L, ("return " + table).c_str()) == LUA_OK);
    REQUIRE(lua_gettop(L) == 1);
  }
  ~StageCall() { lua_close(L); }
};

}  // namespace

TEST_CASE("--set: an unknown stage or key names the closest known one") {
  CHECK(contains(override_error("train.stepz", "5"), "grpo.train has no option \"stepz\" (did you mean \"steps\"?)"));
  CHECK(contains(override_error("trian.steps", "5"), "there is no stage \"trian\" (did you mean \"train\"?)"));
  CHECK(contains(override_error("pretrain.warmpu", "5"), "(did you mean \"warmup\"?)"));
  CHECK(contains(override_error("steps", "5"), "expected stage.key=value"));
}

TEST_CASE("--set: a bad value names the key, the expected type and the allowed values") {
  const std::string steps = override_error("train.steps", "abc");
  CHECK(contains(steps, "option \"steps\" of grpo.train takes an integer, got \"abc\""));
  CHECK(contains(override_error("train.steps", "2.5"), "takes an integer"));
  CHECK(contains(override_error("train.lr", "1e-3x"), "takes a number"));
  CHECK(contains(override_error("sft.pack", "ture"), "takes true or false"));
  // A typo in a choice no longer falls back to a default.
  CHECK(contains(override_error("train.advantage_scaling", "grup"), "takes one of \"group\", \"batch\", \"none\", got \"grup\""));
  CHECK(contains(override_error("train.loss_aggregation", "tokenmean"),
                 "one of \"token-mean\", \"seq-mean-token-mean\", \"seq-mean-token-sum\", \"seq-mean-token-sum-norm\""));
}

TEST_CASE("--set: accepted values arrive typed") {
  const std::map<std::string, json> v = parse_overrides({{"train.steps", "3"},
                                                         {"train.lr", "2e-3"},
                                                         {"train.routing_replay", "false"},
                                                         {"sft.pack", "1"},
                                                         {"train.loss_aggregation", "seq-mean-token-sum-norm"},
                                                         {"eval.stop", "</answer>"}});
  CHECK(v.at("train.steps") == json(3));
  CHECK(v.at("train.steps").is_number_integer());
  CHECK(v.at("train.lr").get<double>() == 0.002);
  CHECK(v.at("train.routing_replay") == json(false));
  CHECK(v.at("sft.pack") == json(true));
  CHECK(v.at("train.loss_aggregation") == json("seq-mean-token-sum-norm"));
  CHECK(v.at("eval.stop") == json("</answer>"));
}

TEST_CASE("grpo.train's declared defaults are the values the stage has always had, and GrpoConfig's") {
  // The defaults grpo.train applied before the declarations existed, written out by hand.
  const std::map<std::string, json> lua_defaults = {
      {"steps", 100},         {"prompts_per_step", 8},   {"group_size", 8},           {"lr", 1e-6},
      {"warmup", 0},          {"weight_decay", 0.0},     {"max_grad_norm", 1.0},      {"max_new_tokens", 256},
      {"temperature", 1.0},   {"top_p", 1.0},            {"kl_coef", 0.0},            {"clip_low", 0.2},
      {"clip_high", 0.28},    {"loss_aggregation", "token-mean"}, {"advantage_scaling", "group"},
      {"epochs", 1},          {"minibatches", 1},        {"micro_batch_size", 32},    {"mask_truncated", false},
      {"overlong_buffer", 0}, {"overlong_penalty", 1.0}, {"dynamic_sampling", false}, {"routing_replay", true},
      {"router_bias_update", 0.0}, {"reference_reset_every", 0}, {"sample_every", 10}, {"checkpoint_every", 50},
      {"keep_checkpoints", 2}, {"seed", 0},              {"out", "train"}};
  const StageSpec& train = stage_spec("train");
  for (const auto& [name, value] : lua_defaults) {
    const OptionSpec* spec = train.find(name);
    REQUIRE_MESSAGE(spec, name);
    if (value.is_number())
      CHECK_MESSAGE(spec->default_value.get<double>() == value.get<double>(), name);
    else
      CHECK_MESSAGE(spec->default_value == value, name);
  }
  // The C++ config a trainer gets by default is the same (the three that used to differ).
  const GrpoConfig g;
  CHECK(g.objective.policy.clip_high == 0.28);
  CHECK(g.micro_batch_size == 32);
  CHECK(g.adamw.weight_decay == 0.0);
  CHECK(g.objective.aggregation == LossAggregation::TokenMean);
  CHECK(g.advantages.scaling == AdvantageScaling::Group);
}

TEST_CASE("the demo's grpo.train and grpo.pretrain calls resolve to the settings they had") {
  const std::string dir = fresh_directory("demo-options");
  fs::create_directories(dir + "/base");
  write_file(dir + "/rules.lua", "return function() return 0 end");
  // examples/r1_zero/r1_zero.lua's call, with its stop string.
  StageCall call(dir, "{ model = '" + dir + "/base', data = {}, prompt = 'x', rules = '" + dir + "/rules.lua', "
                       "steps = 80, prompts_per_step = 16, group_size = 8, lr = 2e-4, warmup = 5, max_new_tokens = 40, "
                       "temperature = 1.0, stop = '</answer>', kl_coef = 0.0, clip_high = 0.28, "
                       "loss_aggregation = 'token-mean', out = 'grpo' }");
  StageOptions o(call.L, "train");
  const TrainStageOptions s = train_stage_options(o);
  const GrpoConfig& c = s.config;
  CHECK(s.steps == 80);
  CHECK(s.prompts_per_step == 16);
  CHECK(s.sample_every == 10);
  CHECK(s.checkpoint_every == 50);
  CHECK(s.keep_checkpoints == 2);
  CHECK(s.out == dir + "/run/grpo");
  CHECK(c.group_size == 8);
  CHECK(c.seed == 0);
  CHECK(c.sampling.temperature == 1.0);
  CHECK(c.sampling.top_p == 1.0);
  CHECK(c.sampling.top_k == 0);
  CHECK(c.stop.max_new_tokens == 40);
  CHECK(c.stop.stop_strings == std::vector<std::string>{"</answer>"});
  CHECK(c.objective.policy.kl_coef == 0.0);
  CHECK(c.objective.policy.clip_low == 0.2);
  CHECK(c.objective.policy.clip_high == 0.28);
  CHECK(c.objective.aggregation == LossAggregation::TokenMean);
  CHECK(c.advantages.scaling == AdvantageScaling::Group);
  CHECK(c.epochs == 1);
  CHECK(c.minibatches == 1);
  CHECK(c.micro_batch_size == 32);
  CHECK(c.lr.peak == 2e-4);
  CHECK(c.lr.warmup_steps == 5);
  CHECK(c.lr.decay == LrDecay::Constant);
  CHECK(c.adamw.weight_decay == 0.0);
  CHECK(c.adamw.beta1 == 0.9);
  CHECK(c.adamw.beta2 == 0.999);
  CHECK(c.max_grad_norm == 1.0);
  CHECK_FALSE(c.mask_truncated);
  CHECK(c.overlong_buffer == 0);
  CHECK_FALSE(c.drop_zero_variance_groups);
  CHECK(c.routing_replay);
  CHECK(c.router_bias_update == 0.0);
  CHECK(c.reference_reset_every == 0);

  StageCall pre(dir, "{ model = '" + dir + "/base', data = {}, steps = 1200, batch_size = 32, seq_len = 64, lr = 3e-3, "
                     "out = 'base' }");
  StageOptions po(pre.L, "pretrain");
  const PretrainStageOptions p = pretrain_stage_options(po);
  CHECK(p.config.steps == 1200);
  CHECK(p.config.batch_size == 32);
  CHECK(p.config.seq_len == 64);
  CHECK(p.config.lr.peak == 3e-3);
  CHECK(p.config.lr.warmup_steps == 20);  // min(20, 1200 / 10)
  CHECK(p.config.lr.decay == LrDecay::Cosine);
  CHECK(p.config.lr.total_steps == 1200);
  CHECK(p.config.lr.floor_ratio == 0.1);
  CHECK(p.config.adamw.weight_decay == 0.1);
  CHECK(p.field == "text");
  fs::remove_all(dir);
}

TEST_CASE("a --set value wins over the script's and is what the stage record keeps") {
  const std::string dir = fresh_directory("override-options");
  fs::create_directories(dir + "/base");
  write_file(dir + "/rules.lua", "return function() return 0 end");
  StageCall call(dir, "{ model = '" + dir + "/base', data = {}, rules = '" + dir + "/rules.lua', steps = 80 }",
                 parse_overrides({{"train.steps", "3"}, {"train.advantage_scaling", "none"}}));
  StageOptions o(call.L, "train");
  const TrainStageOptions s = train_stage_options(o);
  CHECK(s.steps == 3);
  CHECK(s.config.advantages.scaling == AdvantageScaling::None);
  const json recorded = o.resolved_options();
  CHECK(recorded.at("steps") == json(3));
  CHECK(recorded.at("advantage_scaling") == json("none"));
  fs::remove_all(dir);
}

TEST_CASE("a choice outside its values is an error naming them, whichever way it is given") {
  const std::string dir = fresh_directory("enum-options");
  fs::create_directories(dir + "/base");
  write_file(dir + "/rules.lua", "return function() return 0 end");
  StageCall call(dir, "{ model = '" + dir + "/base', data = {}, rules = '" + dir + "/rules.lua', advantage_scaling = 'grup' }");
  std::string message;
  try {
    StageOptions o(call.L, "train");
  } catch (const LuaError& e) {
    message = e.what();
  }
  CHECK(message == "grpo.train: option \"advantage_scaling\" must be one of \"group\", \"batch\", \"none\", got \"grup\"");
  fs::remove_all(dir);
}

TEST_CASE("--set is checked before the script runs") {
  const std::string dir = fresh_directory("set-before-run");
  write_file(dir + "/exp.lua", "grpo.write_jsonl('ran.jsonl', { { ran = true } })\n");
  ExperimentOptions options;
  options.script = dir + "/exp.lua";
  options.run_directory = dir + "/run";
  options.overrides = {{"train.stepz", "5"}};
  CHECK_THROWS_WITH_AS(run_experiment(options), doctest::Contains("did you mean \"steps\""), std::invalid_argument);
  options.overrides = {{"train.steps", "abc"}};
  CHECK_THROWS_WITH_AS(run_experiment(options), doctest::Contains("takes an integer, got \"abc\""), std::invalid_argument);
  CHECK_FALSE(fs::exists(dir + "/run"));  // nothing ran, no run directory was made
  options.overrides = {{"train.steps", "5"}};  // valid, though no stage reads it: the script runs
  run_experiment(options);
  CHECK(fs::exists(dir + "/run/ran.jsonl"));
  fs::remove_all(dir);
}

TEST_CASE("a missing input path names the path given and where it was looked for") {
  const std::string dir = fresh_directory("missing-path");
  write_file(dir + "/exp.lua", R"(
local ok, err = pcall(function() grpo.train { model = "runs/x/trian", data = {}, rules = "rules.lua" } end)
grpo.write_jsonl("result.jsonl", { { ok = ok, err = err } })
)");
  ExperimentOptions options;
  options.script = dir + "/exp.lua";
  options.run_directory = dir + "/run";
  run_experiment(options);
  const std::vector<json> result = read_jsonl(dir + "/run/result.jsonl");
  REQUIRE(result.size() == 1);
  CHECK(result[0]["ok"] == json(false));
  const std::string err = result[0]["err"].get<std::string>();
  const std::string resolved = (fs::current_path() / "runs/x/trian").lexically_normal().string();
  CHECK(contains(err, "exp.lua:2: grpo.train: option \"model\": no file or directory \"runs/x/trian\""));
  CHECK(contains(err, "resolved against the working directory to " + resolved));
  CHECK_FALSE(fs::exists(dir + "/run/stages"));  // refused before the stage opened its record
  fs::remove_all(dir);
}

TEST_CASE("errors unwind: a failing prompt function and rejected options, caught by pcall, over and over, leak nothing") {
  // Each failing grpo.sample call has read 400 records and encoded most of their prompts when the
  // prompt function fails on the last one: were the C++ frames skipped instead of unwound, about 3 MB
  // per call would stay allocated (measured with an unprotected lua_call there: 850 MB over the loop
  // with 1000 records), against tens of kilobytes when they unwind.
  const std::string dir = fresh_directory("unwind");
  write_file(dir + "/exp.lua", R"(
local function resident_kb()
  local f = io.open("/proc/self/statm")
  local _, resident = f:read("n", "n")
  f:close()
  return resident * 4
end
local m = grpo.init { config = { model_type = "qwen2", hidden_size = 16, intermediate_size = 32, num_hidden_layers = 1,
                                 num_attention_heads = 2, num_key_value_heads = 1 },
                      tokenizer = { chars = "ab" } }
local records = {}
for i = 1, 400 do records[i] = { text = string.rep("ab", 200), i = i } end
local function prompt(r)
  if r.i == #records then error("no prompt for record " .. r.i) end
  return r.text
end
local function fail_once()
  local ok, err = pcall(function() grpo.sample { model = m, data = records, prompt = prompt, out = "never.jsonl" } end)
  assert(not ok)
  local ok2, err2 = pcall(grpo.train, { model = m, data = records, rules = "r.lua", stepz = 1 })
  assert(not ok2)
  return err, err2
end
for _ = 1, 10 do fail_once() end
local before = resident_kb()
local err, err2
for _ = 1, 100 do err, err2 = fail_once() end
local growth = resident_kb() - before
grpo.write_jsonl("result.jsonl", { { err = err, err2 = err2, growth_kb = growth } })
)");
  ExperimentOptions options;
  options.script = dir + "/exp.lua";
  options.run_directory = dir + "/run";
  run_experiment(options);  // the script went on after every error
  const std::vector<json> result = read_jsonl(dir + "/run/result.jsonl");
  REQUIRE(result.size() == 1);
  const std::string err = result[0]["err"].get<std::string>();
  CHECK(contains(err, "grpo.sample: the prompt function failed on record 400: "));
  CHECK(contains(err, "no prompt for record 400"));
  CHECK(err.rfind(dir + "/exp.lua:", 0) == 0);  // raised at the script's call
  CHECK(contains(result[0]["err2"].get<std::string>(), "grpo.train: unknown option \"stepz\" (did you mean \"steps\"?)"));
  const int64_t growth_kb = result[0]["growth_kb"].get<int64_t>();
  MESSAGE("resident memory growth over 100 failing call pairs: " << growth_kb << " kB");
  CHECK(growth_kb < 16 * 1024);
  fs::remove_all(dir);
}
