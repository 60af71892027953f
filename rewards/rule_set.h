#pragma once
// A rule set: named reward rules with weights, loaded from one Lua file. The file returns either
//   a function of a sample (one rule, named after the file, weight 1), or
//   a list of entries { name = "accuracy", weight = 1.0, rule = function(sample) ... end,
//                       instructions = 5e7, seconds = 30 }   (weight and limits optional).
// A rule returns a number, or a table of named numbers whose sum is its value. The total of a
// sample is the weighted sum of rule values; a failing rule contributes 0 and is counted.
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "rewards/lua_sandbox.h"
#include "rewards/sample.h"

namespace grpo::rewards {

// A rules file that cannot be used: syntax error, wrong shape, missing file. The message names the
// file and, where Lua knows it, the line.
struct RuleSetError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct RuleSpec {
  std::string name;
  double weight = 1.0;
  std::optional<std::int64_t> instructions;  // overrides the sandbox budget for this rule
  std::optional<double> seconds;             // overrides the wall-clock limit for this rule
};

class RuleSet {
 public:
  // Throws RuleSetError.
  static RuleSet from_file(const std::string& path);
  // `origin` names the source in messages (a path, or a description).
  static RuleSet from_source(std::string source, std::string origin);

  const std::vector<RuleSpec>& rules() const { return rules_; }
  const std::string& source() const { return source_; }
  const std::string& origin() const { return origin_; }

 private:
  std::string source_;
  std::string origin_;
  std::vector<RuleSpec> rules_;
};

// The result of one rule on one sample.
struct RuleScore {
  double value = 0.0;  // what the weight multiplies; 0 when the rule failed
  std::vector<std::pair<std::string, double>> parts;  // named values of a table result, by name
  CallFailure failure = CallFailure::none;
  std::string message;  // why it failed; empty when it did not
  bool failed() const { return failure != CallFailure::none; }
};

struct SampleScore {
  double total = 0.0;            // sum over rules of weight * value
  std::vector<RuleScore> rules;  // in RuleSet order
};

// One sandbox holding a loaded rule set; scores samples one at a time. Not thread-safe: the pool gives
// each thread its own.
class RuleScorer {
 public:
  // Throws RuleSetError when the rules cannot be loaded.
  RuleScorer(const RuleSet& rules, SandboxLimits limits);
  ~RuleScorer();
  RuleScorer(RuleScorer&&) noexcept;

  // Never throws for anything a rule does: failures are reported in the result. A rule that hit a
  // limit leaves a fresh sandbox behind for the next call.
  SampleScore score(const Sample& sample);

  // How many times the sandbox was rebuilt after a rule hit a limit.
  std::int64_t resets() const { return resets_; }

 private:
  void rebuild();

  const RuleSet* rules_;
  SandboxLimits limits_;
  std::unique_ptr<LuaSandbox> sandbox_;
  std::vector<int> rule_refs_;  // registry references of the rule functions
  std::int64_t resets_ = 0;
};

}  // namespace grpo::rewards
