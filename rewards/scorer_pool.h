#pragma once
// Scores batches of samples with a rule set on N threads, each with its own sandboxed Lua state.
// This is what a training run calls once per step:
//
//   ScorerPool pool(RuleSet::from_file("rules.lua"), /*threads=*/4);
//   std::vector<SampleScore> scores = pool.score(samples);  // same order as `samples`
//
// A rule that errors or exceeds a limit scores 0 for that sample, is counted in failures(), and the
// run goes on.
#include <cstdint>
#include <string>
#include <vector>

#include "rewards/lua_sandbox.h"
#include "rewards/rule_set.h"
#include "rewards/sample.h"

namespace grpo::rewards {

struct RuleFailures {
  std::int64_t count = 0;
  std::string first_message;  // of the first failure, in input order
};

class ScorerPool {
 public:
  // Loads the rules into `threads` sandboxes; throws RuleSetError if they cannot be loaded.
  ScorerPool(RuleSet rules, int threads, SandboxLimits limits = {});
  ~ScorerPool();
  ScorerPool(const ScorerPool&) = delete;  // the scorers point at rules_
  ScorerPool& operator=(const ScorerPool&) = delete;

  // One score per sample, in input order. Never throws for anything a rule does.
  std::vector<SampleScore> score(const std::vector<Sample>& batch);

  const RuleSet& rule_set() const { return rules_; }
  int threads() const { return static_cast<int>(scorers_.size()); }
  // Failures per rule (RuleSet order) over every batch scored so far.
  const std::vector<RuleFailures>& failures() const { return failures_; }

 private:
  RuleSet rules_;
  std::vector<RuleScorer> scorers_;
  std::vector<RuleFailures> failures_;
};

}  // namespace grpo::rewards
