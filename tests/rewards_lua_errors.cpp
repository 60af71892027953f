// Lua errors raised by built-ins never skip C++ destructors: a rule that makes verify.*, the bounded
// pattern matcher, gsub callbacks and require fail tens of thousands of times (and records too deep to
// convert) leaves resident memory where it was and keeps scoring; the trampoline unwinds C++ frames
// before raising, and what the script sees is what luaL_check* and lua_error would have shown.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "rewards/lua_sandbox.h"
#include "rewards/lua_trampoline.h"
#include "rewards/rule_set.h"
#include "rewards/scorer_pool.h"

using namespace grpo::rewards;
using grpo::LuaError;

namespace {

// Resident set size from /proc/self/statm (second field, in pages).
std::int64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::int64_t size = 0, resident = 0;
  statm >> size >> resident;
  REQUIRE(resident > 0);
  return resident * static_cast<std::int64_t>(sysconf(_SC_PAGESIZE));
}

// Growth a leak-free loop stays under (allocator and Lua heap noise). A leak of one copy of the 16 KiB
// argument per error, as the loop below would have with a std::string alive across luaL_checklstring,
// grows resident memory by more than 100 MiB.
constexpr std::int64_t kGrowthBound = 4 << 20;

// Each round makes built-ins raise kErrorsPerRound errors, each caught by pcall; the rule returns how
// many it caught. Large arguments make any copy left behind by an error visible in resident memory.
constexpr int kErrorsPerRound = 20;
const char* const kErrorRules = R"lua(
local long = string.rep("x", 16384) .. " \\boxed{7}"
local caught = 0
local function expect_error(f, ...)
  if not pcall(f, ...) then caught = caught + 1 end
end
local no_fields = setmetatable({}, { __index = function(_, key) error("no field " .. key) end })
return {
  { name = "errors", rule = function(sample)
      caught = 0
      for _ = 1, sample.rounds do
        expect_error(verify.extract_boxed, nil)
        expect_error(verify.extract_tag, long, nil)
        expect_error(verify.extract_tag, long, {})
        expect_error(verify.last_number, {})
        expect_error(verify.script_ratio, long, "klingon")
        expect_error(verify.script_ratio, long)
        expect_error(verify.math_equal, long, nil)
        expect_error(verify.math_equal, long, long, "tight")
        expect_error(verify.eval_arith, nil)
        expect_error(verify.run_program, nil)
        expect_error(verify.run_program, { language = "python", source = long, tests = { { input = long, output = 5 } } })
        expect_error(verify.run_program, { language = "python", source = long, tests = { long, 7 } })
        expect_error(verify.run_program, no_fields)
        expect_error(string.find, long, "(")              -- unfinished capture
        expect_error(string.match, long, "x%")            -- pattern ends with '%'
        expect_error(string.gsub, long, "[x", "")         -- missing ']'
        expect_error(string.gsub, long, "x", function() error({ long }) end)
        expect_error(string.gsub, long, "(x)", "%2")      -- invalid capture index
        expect_error(string.gmatch(long, "%f"))           -- missing '[' after '%f'
        expect_error(require, "no_such_module")
      end
      return caught
    end },
  { name = "answer", rule = function(sample)
      return verify.math_equal(verify.extract_boxed(sample.completion), sample.answer) and 1 or 0
    end },
}
)lua";

Sample error_sample(int rounds, const std::string& completion = "so \\boxed{3/4}") {
  Sample sample;
  sample.completion = completion;
  sample.record = {{"rounds", rounds}, {"answer", "0.75"}};
  return sample;
}

// A record nested `depth` levels deep, each level keyed by a long name: converting it fails at level
// 101, after 100 frames of the converter.
Sample deep_sample(int depth) {
  nlohmann::json value = "bottom";
  for (int i = 0; i < depth; ++i) value = nlohmann::json{{std::string(64, 'k') + std::to_string(i), value}};
  Sample sample;
  sample.completion = "\\boxed{1}";
  sample.record = nlohmann::json{{"nested", value}};
  return sample;
}

// --- C++ functions for the trampoline's own checks ------------------------------------------------

int destroyed = 0;  // Witness destructors run
struct Witness {
  std::string payload = std::string(1000, 'w');  // owns heap memory, as real C++ state does
  ~Witness() { ++destroyed; }
};

// check(a, b): both strings (as luaL_checklstring), returned.
int check_strings(lua_State* L) {
  const Witness witness;
  const std::string_view a = grpo::lua_text_argument(L, 1, "checks.check");
  const std::string_view b = grpo::lua_text_argument(L, 2, "checks.check");
  lua_pushlstring(L, a.data(), a.size());
  lua_pushlstring(L, b.data(), b.size());
  return 2;
}

int reference_check_strings(lua_State* L) {
  luaL_checklstring(L, 1, nullptr);
  luaL_checklstring(L, 2, nullptr);
  lua_settop(L, 2);
  return 2;
}

// call(f): calls f while a Witness is alive; returns what f returned.
int call_with_witness(lua_State* L) {
  const Witness witness;
  lua_settop(L, 1);
  grpo::call_protected(L, 0, 1);
  return 1;
}

// big(n): a string of n bytes, pushed while a Witness is alive.
int push_big(lua_State* L) {
  const auto size = static_cast<std::size_t>(lua_tointeger(L, 1));  // before any C++ object exists
  const Witness witness;
  const std::string text(size, 'b');
  return grpo::push_protected(L, [&](lua_State* state) { lua_pushlstring(state, text.data(), text.size()); });
}

int throw_memory(lua_State*) {
  const Witness witness;
  throw grpo::LuaMemoryError();
}

// A plain Lua state with `checks` (trampolines) and `reference` (luaL_check* originals) as globals.
lua_State* test_state() {
  lua_State* L = luaL_newstate();
  luaL_openlibs(L);
  const luaL_Reg checks[] = {{"check", grpo::lua_trampoline<check_strings>},
                             {"call", grpo::lua_trampoline<call_with_witness>},
                             {"big", grpo::lua_trampoline<push_big>},
                             {"memory", grpo::lua_trampoline<throw_memory>},
                             {nullptr, nullptr}};
  luaL_newlib(L, checks);
  lua_setglobal(L, "checks");
  const luaL_Reg reference[] = {{"check", reference_check_strings}, {nullptr, nullptr}};
  luaL_newlib(L, reference);
  lua_setglobal(L, "reference");
  return L;
}

// Runs `code` in `L`; returns its first result as a string ("" when it fails, with the message in INFO).
std::string run(lua_State* L, const std::string& code) {
  REQUIRE(luaL_loadstring(L, code.c_str()) == LUA_OK);
  const int status = lua_pcall(L, 0, 1, 0);
  std::string text = lua_tostring(L, -1) ? lua_tostring(L, -1) : "";
  lua_pop(L, 1);
  if (status != LUA_OK) FAIL("Lua error: " << text);
  return text;
}

}  // namespace

TEST_CASE("built-ins raise tens of thousands of errors without growing resident memory") {
  const RuleSet rules = RuleSet::from_source(kErrorRules, "errors.lua");
  RuleScorer scorer(rules, SandboxLimits{});
  constexpr int kRounds = 250;
  const auto score_and_count = [&](const Sample& sample, int rounds) {
    const SampleScore score = scorer.score(sample);
    INFO(score.rules[0].message);
    REQUIRE_FALSE(score.rules[0].failed());
    CHECK(score.rules[0].value == static_cast<double>(rounds * kErrorsPerRound));
    return static_cast<std::int64_t>(score.rules[0].value);
  };
  const Sample deep = deep_sample(150);
  for (int i = 0; i < 4; ++i) {  // warm-up: allocator arenas, the Lua heap, the rule library cache
    score_and_count(error_sample(kRounds), kRounds);
    scorer.score(deep);
  }

  const std::int64_t before = resident_bytes();
  std::int64_t errors = 0;
  for (int i = 0; i < 8; ++i) errors += score_and_count(error_sample(kRounds), kRounds);
  int deep_failures = 0;
  for (int i = 0; i < 2000; ++i) {
    const SampleScore score = scorer.score(deep);
    deep_failures += score.rules[0].failed() && score.rules[1].failed() &&
                     score.rules[1].message.find("nested deeper than 100 levels") != std::string::npos;
  }
  const std::int64_t after = resident_bytes();

  CHECK(errors == 8 * kRounds * kErrorsPerRound);  // 40,000
  CHECK(deep_failures == 2000);
  INFO("resident before " << before / 1024 << " KiB, after " << after / 1024 << " KiB");
  CHECK(after - before < kGrowthBound);
  CHECK(scorer.resets() == 0);  // no limit was hit: the same sandbox took every error

  // The same sandbox still scores: right and wrong answers.
  const SampleScore right = scorer.score(error_sample(1, "so \\boxed{\\frac{3}{4}}"));
  const SampleScore wrong = scorer.score(error_sample(1, "so \\boxed{4/3}"));
  CHECK(right.rules[1].value == 1.0);
  CHECK(wrong.rules[1].value == 0.0);
  CHECK_FALSE(wrong.rules[1].failed());
}

TEST_CASE("a scorer pool keeps scoring through built-in errors, with resident memory flat") {
  ScorerPool pool(RuleSet::from_source(kErrorRules, "errors.lua"), /*threads=*/2);
  constexpr int kRounds = 100;
  std::vector<Sample> batch;
  for (int i = 0; i < 8; ++i) batch.push_back(error_sample(kRounds, i % 2 ? "\\boxed{0.75}" : "\\boxed{2}"));
  batch.push_back(deep_sample(120));
  const auto score_batch = [&] {
    std::int64_t errors = 0;
    for (const SampleScore& score : pool.score(batch)) errors += static_cast<std::int64_t>(score.rules[0].value);
    return errors;
  };
  for (int i = 0; i < 3; ++i) score_batch();  // warm-up

  const std::int64_t before = resident_bytes();
  std::int64_t errors = 0;
  for (int i = 0; i < 6; ++i) errors += score_batch();
  const std::int64_t after = resident_bytes();
  CHECK(errors == 6 * 8 * kRounds * kErrorsPerRound);  // 96,000
  INFO("resident before " << before / 1024 << " KiB, after " << after / 1024 << " KiB");
  CHECK(after - before < kGrowthBound);

  // Every batch: the deep record failed both rules; nothing else failed.
  REQUIRE(pool.failures().size() == 2);
  CHECK(pool.failures()[0].count == 9);
  CHECK(pool.failures()[1].count == 9);
  CHECK(pool.failures()[0].first_message.find("nested deeper than 100 levels") != std::string::npos);
  const std::vector<SampleScore> scores = pool.score(batch);
  for (int i = 0; i < 8; ++i) {
    CHECK(scores[i].rules[1].value == (i % 2 ? 1.0 : 0.0));  // 0.75 = gold 0.75; 2 is not
    CHECK(scores[i].total == doctest::Approx(kRounds * kErrorsPerRound + (i % 2 ? 1.0 : 0.0)));
  }
}

TEST_CASE("trampoline argument errors read as luaL_check*'s, and the C++ frame unwinds") {
  lua_State* L = test_state();
  destroyed = 0;
  // Each shape is called once through the trampoline and once through the luaL_check* original, from
  // the same closure: same line, same call-site name.
  const std::string compare = R"lua(
    local shapes = {
      function(t) t.check(nil) end,
      function(t) t.check("a", {}) end,
      function(t) local f = t.check; f(5, nil) end,
      function(t) t:check() end,
      function(t) t.check("a", setmetatable({}, { __name = "Point" })) end,
      function(t) t.check(true) end,
    }
    local out = {}
    for i, shape in ipairs(shapes) do
      local _, mine = pcall(shape, checks)
      local _, theirs = pcall(shape, reference)
      out[#out + 1] = (mine == theirs) and "same" or (mine .. " <> " .. theirs)
    end
    return table.concat(out, ",")
  )lua";
  CHECK(run(L, compare) == "same,same,same,same,same,same");
  CHECK(destroyed == 6);
  // Called from C (pcall), Lua cannot name the function: the trampoline names it itself.
  CHECK(run(L, "return select(2, pcall(checks.check, nil))") ==
        "bad argument #1 to 'checks.check' (string expected, got nil)");
  CHECK(run(L, "return select(2, pcall(reference.check, nil))") ==
        "bad argument #1 to '?' (string expected, got nil)");
  // Numbers become strings, as luaL_checklstring makes them.
  CHECK(run(L, "local a, b = checks.check(12, 3.5) return a .. '|' .. b") == "12|3.5");
  lua_close(L);
}

TEST_CASE("a failing callback's error object passes through the trampoline unchanged") {
  lua_State* L = test_state();
  destroyed = 0;
  CHECK(run(L, "local e = {}; local ok, got = pcall(checks.call, function() error(e) end) "
               "return tostring(not ok and rawequal(got, e))") == "true");
  // One position prefix, the callee's, as if the error had passed straight through.
  const std::string boom = run(L, "return select(2, pcall(checks.call, function() error('boom') end))");
  CHECK(boom.size() > std::string(":1: boom").size());
  CHECK(boom.rfind(":1: boom") == boom.size() - std::string(":1: boom").size());
  CHECK(boom.find(":1:") == boom.rfind(":1:"));
  CHECK(run(L, "return checks.call(function() return 'fine' end)") == "fine");
  CHECK(destroyed == 3);
  lua_close(L);
}

TEST_CASE("memory errors raised through the trampoline stay memory errors") {
  lua_State* L = test_state();
  destroyed = 0;
  // xpcall runs its handler for regular errors and not for memory errors.
  CHECK(run(L, "return select(2, xpcall(checks.memory, function() return 'handled' end))") == "not enough memory");
  CHECK(run(L, "return select(2, xpcall(error, function() return 'handled' end, 'x'))") == "handled");
  CHECK(destroyed == 1);
  lua_close(L);

  // Under a sandbox's memory cap: a result that does not fit fails the call as a memory failure, after
  // the C++ frame that held the text unwound.
  SandboxLimits limits;
  limits.memory_bytes = 4u << 20;
  LuaSandbox sandbox(limits);
  lua_State* state = sandbox.state();
  destroyed = 0;
  lua_pushcfunction(state, grpo::lua_trampoline<push_big>);
  lua_pushinteger(state, 8 << 20);
  const CallStatus status = sandbox.call(1, 1);
  CHECK(status.failure == CallFailure::memory);
  CHECK(destroyed == 1);
  lua_pushcfunction(state, grpo::lua_trampoline<push_big>);
  lua_pushinteger(state, 1000);
  REQUIRE(sandbox.call(1, 1).ok());
  CHECK(lua_rawlen(state, -1) == 1000);
  CHECK(destroyed == 2);
}

TEST_CASE("errors of verify functions keep their messages and gsub callbacks' errors pass unchanged") {
  const RuleSet rules = RuleSet::from_source(R"lua(
return function(sample)
  local function message(f, ...) return select(2, pcall(f, ...)) end
  local marker = {}
  local checks = {  -- {what the rule saw, what it should see}
    { message(function() verify.extract_tag("x") end), "messages.lua:6: bad argument #2 to 'extract_tag' (string expected, got no value)" },
    { message(verify.extract_boxed, {}), "bad argument #1 to 'verify.extract_boxed' (string expected, got table)" },
    { message(function() verify.math_equal("1", "1", "x") end), "messages.lua:8: bad argument #3 to 'math_equal' (number expected, got string)" },
    { message(function() verify.script_ratio("abc", "klingon") end), "messages.lua:9: verify.script_ratio: unknown script 'klingon'" },
    { message(function() verify.run_program({ language = "python" }) end), "messages.lua:10: verify.run_program: 'source' must be a string" },
    { message(function() verify.run_program({ language = "python", source = "", tests = { 1 } }) end), "messages.lua:11: verify.run_program: test 1 must be a table {input=, output=} or a string" },
    { rawequal(message(string.gsub, "abc", "b", function() error(marker) end), marker), true },
    { message(require, "nope"), "require('nope'): no such module in the rule library (rules can only require the shipped modules)" },
    { message(string.find, "abc", "[a"), "malformed pattern (missing ']')" },
  }
  for i, check in ipairs(checks) do
    if check[1] ~= check[2] then error("check " .. i .. ": got " .. tostring(check[1]), 0) end
  end
  return #checks
end
)lua", "messages.lua");
  RuleScorer scorer(rules, SandboxLimits{});
  const SampleScore score = scorer.score(Sample{});
  INFO(score.rules[0].message);
  CHECK(score.rules[0].value == 9.0);
}
