// Reward built-ins raising Lua errors a million times: errors per second and resident memory before
// and after each kind of error. Every error here jumps out of C code called from Lua; a C++ object
// left undestroyed by one (docs/rewards.md, "Errors inside built-ins") would show as growth, with 16 KiB
// arguments making even one small leak per error visible.
//
// Usage: bench_lua_error_soak [ERRORS (default 1000000)]
#include <fmt/core.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "policy/stopwatch.h"
#include "rewards/rule_set.h"

using namespace grpo::rewards;

namespace {

double resident_mib() {
  std::ifstream statm("/proc/self/statm");
  std::int64_t size = 0, resident = 0;
  statm >> size >> resident;
  return static_cast<double>(resident * sysconf(_SC_PAGESIZE)) / (1 << 20);
}

// sample.kind picks a list of calls that each raise an error; the rule runs it sample.rounds times and
// returns how many errors its pcall caught.
const char* const kRules = R"lua(
local long = string.rep("x", 16384) .. " \\boxed{7}"
local no_fields = setmetatable({}, { __index = function(_, key) error("no field " .. key) end })
local kinds = {
  verify = {
    function() return verify.extract_boxed(nil) end,
    function() return verify.extract_tag(long, nil) end,
    function() return verify.last_number({}) end,
    function() return verify.script_ratio(long, "klingon") end,
    function() return verify.math_equal(long, nil) end,
    function() return verify.math_equal(long, long, "tight") end,
    function() return verify.eval_arith(nil) end,
    function() return verify.run_program(nil) end,
    function() return verify.run_program({ language = "python", source = long, tests = { { input = long, output = 5 } } }) end,
    function() return verify.run_program(no_fields) end,
  },
  patterns = {
    function() return string.find(long, "(") end,
    function() return string.match(long, "x%") end,
    function() return string.gsub(long, "[x", "") end,
    function() return string.gsub(long, "(x)", "%2") end,
    function() return string.gmatch(long, "%f")() end,
  },
  callbacks = {
    function() return string.gsub(long, "x", function() error({ long }) end) end,
    function() return string.gsub(long, "x", function() error("replacement failed") end) end,
  },
  require = {
    function() return require("no_such_module") end,
  },
}
return function(sample)
  local calls, caught = kinds[sample.kind], 0
  for _ = 1, sample.rounds do
    for i = 1, #calls do
      if not pcall(calls[i]) then caught = caught + 1 end
    end
  end
  return caught
end
)lua";

struct Kind {
  const char* name;
  const char* what;
  int errors_per_round;  // 0: a record too deep to convert, one error per sample
};

}  // namespace

int main(int argc, char** argv) {
  const std::int64_t total_errors = argc > 1 ? std::atoll(argv[1]) : 1'000'000;
  const std::vector<Kind> kinds = {
      {"verify", "verify.* with bad arguments, unknown script, run_program request errors", 10},
      {"patterns", "malformed patterns to find/match/gsub/gmatch", 5},
      {"callbacks", "gsub replacement functions that raise", 2},
      {"require", "require of a module not in the rule library", 1},
      {"deep record", "sample record nested 150 deep (fails at 101)", 0},
  };
  const std::int64_t per_kind = total_errors / static_cast<std::int64_t>(kinds.size());
  constexpr int kRounds = 500;  // rounds per rule call

  const RuleSet rules = RuleSet::from_source(kRules, "soak.lua");
  RuleScorer scorer(rules, SandboxLimits{});
  nlohmann::json deep = "bottom";
  for (int i = 0; i < 150; ++i) deep = nlohmann::json{{std::string(64, 'k') + std::to_string(i), deep}};
  Sample deep_sample;
  deep_sample.record = nlohmann::json{{"nested", deep}};

  // Warm-up: allocator arenas and the Lua heap reach their working size before anything is measured.
  for (const Kind& kind : kinds) {
    Sample sample;
    sample.record = {{"kind", kind.name}, {"rounds", 50}};
    scorer.score(kind.errors_per_round ? sample : deep_sample);
  }

  fmt::print("Lua errors raised by reward built-ins, caught by the rule's pcall ({} in all)\n\n", per_kind * 5);
  fmt::print("{:<12} {:>9} {:>8} {:>11} {:>10} {:>10} {:>9}  {}\n", "kind", "errors", "seconds", "errors/s",
             "RSS before", "RSS after", "growth", "what raises");
  const double start_mib = resident_mib();
  std::int64_t all_errors = 0;
  double all_seconds = 0;
  for (const Kind& kind : kinds) {
    const double before = resident_mib();
    std::int64_t errors = 0;
    grpo::Stopwatch clock;
    while (errors < per_kind) {
      if (kind.errors_per_round == 0) {
        const SampleScore score = scorer.score(deep_sample);
        if (!score.rules[0].failed()) {
          fmt::print(stderr, "the deep record was converted: expected an error\n");
          return 1;
        }
        ++errors;
        continue;
      }
      Sample sample;
      sample.record = {{"kind", kind.name}, {"rounds", kRounds}};
      const SampleScore score = scorer.score(sample);
      if (score.rules[0].failed() || score.rules[0].value != kRounds * kind.errors_per_round) {
        fmt::print(stderr, "{}: expected {} errors, got {} ({})\n", kind.name, kRounds * kind.errors_per_round,
                   score.rules[0].value, score.rules[0].message);
        return 1;
      }
      errors += kRounds * kind.errors_per_round;
    }
    const double seconds = clock.seconds();
    const double after = resident_mib();
    all_errors += errors;
    all_seconds += seconds;
    fmt::print("{:<12} {:>9} {:>8.2f} {:>11.0f} {:>7.1f} MiB {:>6.1f} MiB {:>+5.1f} MiB  {}\n", kind.name, errors,
               seconds, errors / seconds, before, after, after - before, kind.what);
  }
  const double end_mib = resident_mib();
  fmt::print("{:<12} {:>9} {:>8.2f} {:>11.0f} {:>7.1f} MiB {:>6.1f} MiB {:>+5.1f} MiB\n", "all", all_errors, all_seconds,
             all_errors / all_seconds, start_mib, end_mib, end_mib - start_mib);
  return 0;
}
