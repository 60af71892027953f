#pragma once
// Scores a JSONL file of completions with a rule set: what `grpo rewards` runs, so a user can debug
// rules on real samples before a training run.
//
// Each line is a JSON object with a string "completion" and optionally "prompt", "completion_tokens",
// "finish_reason"; every field reaches the rules. Each output line is the record plus
//   "rewards": {"<rule>": value, "<rule>.<part>": value, ...}, "reward": total,
//   "reward_failures": {"<rule>": message}   (only when a rule failed on that record).
#include <cstdint>
#include <iosfwd>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "rewards/scorer_pool.h"

namespace grpo::rewards {

// A line that is not a usable record; the message names the file and line number.
struct SampleFileError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct ValueSummary {
  std::string name;  // rule name, "rule.part", or "total"
  std::int64_t count = 0;
  double sum = 0.0;
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
  std::int64_t failures = 0;   // a rule: samples it failed on; "total": samples on which any rule failed
  std::string first_failure;   // a rule: message of its first failure, in file order
  double mean() const { return count ? sum / static_cast<double>(count) : 0.0; }
  void add(double value);
};

struct ScoreFileSummary {
  std::int64_t samples = 0;
  std::vector<ValueSummary> values;  // rules in rule-set order, then their parts, then "total"
};

// Reads `input_path`, scores it in batches with `pool`, writes scored records to `output` when not
// null. Throws SampleFileError for a missing file or a malformed line (before scoring that batch).
ScoreFileSummary score_jsonl(ScorerPool& pool, const std::string& input_path, std::ostream* output,
                             std::size_t batch_size = 512);

// The summary as an aligned text table (name, weight, mean, min, max, failures), then the whole first
// failure message of each rule that failed, one line per rule.
std::string format_summary(const ScoreFileSummary& summary, const RuleSet& rules);

}  // namespace grpo::rewards
