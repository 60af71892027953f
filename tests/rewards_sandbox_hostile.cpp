// Hostile reward rules: each must be stopped by its limit, score 0, report why, and leave the scorer
// working for the next rule and the next sample.
#include <doctest/doctest.h>

#include <string>

#include "rewards/rule_set.h"

using namespace grpo::rewards;

namespace {

SandboxLimits tight_limits() {
  SandboxLimits limits;
  limits.instructions = 2'000'000;
  limits.memory_bytes = 16u << 20;
  limits.seconds = 10.0;
  return limits;
}

// A rule set of the hostile rule followed by a well-behaved one that reads the sample.
RuleSet with_good_rule(const std::string& hostile_body) {
  return RuleSet::from_source(
      "return {\n"
      "  { name = 'hostile', rule = function(sample)\n" + hostile_body + "\nend },\n"
      "  { name = 'good', weight = 2, rule = function(sample) return #sample.completion end },\n"
      "}\n",
      "hostile.lua");
}

Sample sample_with(const std::string& completion) {
  Sample sample;
  sample.completion = completion;
  return sample;
}

// Scores two samples; checks the hostile rule failed with `expected` both times and the good rule
// kept working, then returns the first hostile result for further checks.
RuleScore expect_contained(const std::string& hostile_body, CallFailure expected,
                           SandboxLimits limits = tight_limits()) {
  RuleSet rules = with_good_rule(hostile_body);
  RuleScorer scorer(rules, limits);
  const SampleScore first = scorer.score(sample_with("abc"));
  const SampleScore second = scorer.score(sample_with("abcdefg"));
  CHECK(first.rules[0].failure == expected);
  CHECK(second.rules[0].failure == expected);
  CHECK(first.rules[0].value == 0.0);
  CHECK_FALSE(first.rules[1].failed());
  CHECK(first.rules[1].value == 3.0);
  CHECK(first.total == 6.0);
  CHECK(second.rules[1].value == 7.0);
  INFO("message: " << first.rules[0].message);
  CHECK_FALSE(first.rules[0].message.empty());
  return first.rules[0];
}

}  // namespace

TEST_CASE("an infinite loop is stopped by the instruction budget") {
  expect_contained("while true do end", CallFailure::instructions);
}

TEST_CASE("a loop inside pcall cannot swallow the budget error") {
  expect_contained("while true do pcall(function() while true do end end) end", CallFailure::instructions);
}

TEST_CASE("xpcall with a looping message handler is stopped") {
  expect_contained("xpcall(function() while true do end end, function(e) while true do end end) return 1",
                   CallFailure::instructions);
  expect_contained(
      "while true do xpcall(function() while true do end end, function(e) while true do end end) end",
      CallFailure::instructions);
}

TEST_CASE("a loop in a coroutine is stopped, whether wrapped, resumed or pcalled") {
  expect_contained("coroutine.wrap(function() while true do end end)()", CallFailure::instructions);
  expect_contained(
      "local co = coroutine.create(function() while true do end end)\n"
      "while true do coroutine.resume(co) end",
      CallFailure::instructions);
  expect_contained("while true do pcall(coroutine.wrap(function() while true do end end)) end",
                   CallFailure::instructions);
}

TEST_CASE("loops inside C callbacks (table.sort comparator, gsub function) are stopped") {
  expect_contained(
      "local t = {5, 3, 1, 4, 2}\n"
      "while true do pcall(table.sort, t, function(a, b) while true do end end) end",
      CallFailure::instructions);
  expect_contained(
      "while true do pcall(string.gsub, 'abc', '%w', function(c) while true do end end) end",
      CallFailure::instructions);
}

TEST_CASE("string.rep bombs: memory for big strings, budget for empty ones") {
  expect_contained("local s = string.rep('x', 1 << 30) return #s", CallFailure::memory);
  expect_contained("local s = ('xy'):rep(1 << 28, ',') return #s", CallFailure::memory);
  expect_contained("local parts = {} for i = 1, 100 do parts[i] = ('x'):rep(1 << 20) end return #parts",
                   CallFailure::memory);
  expect_contained("return #string.rep('', 1 << 50)", CallFailure::instructions);
}

TEST_CASE("table growth is stopped by the memory cap, also when each failure is caught") {
  SandboxLimits limits = tight_limits();
  limits.instructions = 200'000'000;
  expect_contained("local t = {} local i = 0 while true do i = i + 1 t[i] = {i} end", CallFailure::memory,
                   limits);
  // Caught memory errors are bounded too; the loop then ends on its instruction budget.
  limits.instructions = 20'000'000;
  expect_contained(
      "while true do pcall(function() local t = {} for i = 1, 1e9 do t[i] = i end end) end",
      CallFailure::instructions, limits);
}

TEST_CASE("table.move over a huge range pays for every step") {
  expect_contained("table.move({}, 1, 1 << 50, 1, {}) return 1", CallFailure::instructions);
}

TEST_CASE("pattern-matching bombs are stopped by the budget") {
  expect_contained("return string.find(string.rep('a', 3000), '.-.-.-.-b') and 1 or 0",
                   CallFailure::instructions);
  expect_contained("return (('a'):rep(5000)):match('(.*)(.*)(.*)x') and 1 or 0", CallFailure::instructions);
  expect_contained(
      "for w in ('a'):rep(2000):gmatch('a-a-a-a-b') do end return 0", CallFailure::instructions);
}

TEST_CASE("a __gc finaliser cannot be installed") {
  RuleScore hostile = expect_contained(
      "setmetatable({}, {__gc = function() while true do end end}) return 1", CallFailure::error);
  CHECK(hostile.message.find("__gc") != std::string::npos);
  // Adding __gc after setmetatable does not mark the object: the finaliser never runs.
  RuleSet rules = RuleSet::from_source(
      "return function(s) local mt = {} setmetatable({}, mt) mt.__gc = function() while true do end end "
      "return 1 end",
      "gc_later.lua");
  RuleScorer scorer(rules, tight_limits());
  for (int i = 0; i < 3; ++i) CHECK(scorer.score(sample_with("x")).rules[0].value == 1.0);
}

TEST_CASE("io, os, debug, package, require and bytecode are out of reach") {
  const char* attempts[] = {
      "return io.open('/etc/passwd'):read('a')",
      "os.execute('touch /tmp/grpo_pwned') return 1",
      "return debug.getinfo(1)",
      "return package.loadlib('libc.so.6', 'system')",
      "return require('os')",
      "return dofile('/etc/passwd')",
      "return loadfile('/etc/passwd')",
      "return string.dump(function() end)",
      "return collectgarbage('count')",
      "local f = assert(load('\\27Lua\\84\\0\\25\\147\\13\\10\\26\\10')) return f()",
      "local real = getmetatable('').__index return real.find and 1",
      "string.find = nil return 1",
      "setmetatable(string, {}) return 1",
  };
  for (const char* attempt : attempts) {
    INFO(attempt);
    expect_contained(attempt, CallFailure::error);
  }
  // The shipped library is the only thing require serves.
  RuleSet rules = RuleSet::from_source(
      "return function(s) return require('r1_format')()({completion = '<think>a</think><answer>b</answer>'}) end", "require.lua");
  RuleScorer scorer(rules, tight_limits());
  CHECK(scorer.score(sample_with("")).rules[0].value == 1.0);
}

TEST_CASE("load compiles text only, into fresh globals") {
  RuleSet rules = RuleSet::from_source(
      "return function(s)\n"
      "  local chunk, message = load('\\27Lua garbage')\n"
      "  assert(chunk == nil and message:find('binary'))\n"
      "  load('leaked = 1')()\n"
      "  return (leaked == nil and load('return 2 + 3')() == 5) and 1 or 0\n"
      "end",
      "load.lua");
  RuleScorer scorer(rules, tight_limits());
  const SampleScore score = scorer.score(sample_with(""));
  INFO(score.rules[0].message);
  CHECK(score.rules[0].value == 1.0);
}

TEST_CASE("errors whose objects are tables (even with a looping __tostring) are reported") {
  RuleScore hostile = expect_contained("error({code = 7})", CallFailure::error);
  CHECK(hostile.message == "error object is a table value");
  expect_contained("error(setmetatable({}, {__tostring = function() while true do end end}))",
                   CallFailure::error);
}

TEST_CASE("results that are not finite numbers fail the rule") {
  CHECK(expect_contained("return 0/0", CallFailure::error).message.find("nan") != std::string::npos);
  expect_contained("return math.huge", CallFailure::error);
  expect_contained("return 'yes'", CallFailure::error);
  expect_contained("return nil", CallFailure::error);
  expect_contained("return {a = 1, b = 0/0}", CallFailure::error);
  expect_contained("return {1, 2}", CallFailure::error);
}

TEST_CASE("the wall-clock limit stops a rule with a huge instruction budget") {
  SandboxLimits limits = tight_limits();
  limits.instructions = std::int64_t{1} << 60;
  limits.seconds = 0.05;
  RuleScore hostile = expect_contained("while true do end", CallFailure::time, limits);
  CHECK(hostile.message.find("time limit") != std::string::npos);
}

TEST_CASE("a rule that hit a limit gets a fresh state: its own globals start over") {
  RuleSet rules = RuleSet::from_source(
      "local calls = 0\n"
      "return function(s)\n"
      "  calls = calls + 1\n"
      "  if s.completion == 'hang' then while true do end end\n"
      "  return calls\n"
      "end",
      "counter.lua");
  RuleScorer scorer(rules, tight_limits());
  CHECK(scorer.score(sample_with("a")).rules[0].value == 1.0);
  CHECK(scorer.score(sample_with("b")).rules[0].value == 2.0);
  CHECK(scorer.score(sample_with("hang")).rules[0].failure == CallFailure::instructions);
  CHECK(scorer.resets() == 1);
  CHECK(scorer.score(sample_with("c")).rules[0].value == 1.0);
}

TEST_CASE("one rule cannot change what another rule sees") {
  RuleSet rules = RuleSet::from_source(
      "return {\n"
      "  { name = 'vandal', rule = function(s)\n"
      "      pcall(function() string.upper = nil end) pcall(function() table.insert = nil end)\n"
      "      pcall(function() verify.extract_tag = nil end) return 0 end },\n"
      "  { name = 'victim', rule = function(s)\n"
      "      local t = {} table.insert(t, 1)\n"
      "      return (string.upper('a') == 'A' and #t == 1 and verify.extract_tag ~= nil) and 1 or 0 end },\n"
      "}",
      "isolation.lua");
  RuleScorer scorer(rules, tight_limits());
  const SampleScore score = scorer.score(sample_with(""));
  INFO(score.rules[1].message);
  CHECK(score.rules[1].value == 1.0);
}
