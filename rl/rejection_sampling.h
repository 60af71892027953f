#pragma once
// Rejection sampling (DeepSeek-R1 §2.3.3): of many sampled completions per prompt, keep those the rules
// score well enough (or a predicate accepts), at most K per prompt, without repeating a completion
// already kept for the same prompt. The kept records are SFT data; the per-prompt counts say which
// prompts the model can already solve and which it cannot yet.
//
// The input is grpo.sample's record layout (rl/sample_dataset.h): one record per completion, with
// prompt_index, sample_index, completion and, when scored, "rewards": {rule: value} and "reward".
// A record is kept when
//   (1) every rule named in min_values has rewards[rule] >= its minimum ("reward" names the weighted
//       total when no rule is called so),
//   (2) the predicate, when given, returns true,
//   (3) dedupe is off, or no record kept before for the same prompt has the same completion text, and
//   (4) max_per_prompt is 0, or fewer than max_per_prompt records were kept for its prompt so far;
// records are visited in input order (prompt by prompt, sample by sample), so the cap keeps the
// first passing samples. The predicate is not called on records that (1) already rejects.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace grpo {

struct RejectionCriteria {
  std::map<std::string, double> min_values;  // rule name -> smallest kept value
  std::function<bool(const nlohmann::json& sample)> predicate;  // empty: accept
  int64_t max_per_prompt = 0;  // 0: no cap
  bool dedupe = true;          // identical completions of one prompt are kept once
};

// Counts of one prompt, in the order prompts first appear in the samples.
struct PromptRejectionCounts {
  int64_t prompt_index = 0;
  int64_t seen = 0;        // samples of the prompt
  int64_t passed = 0;      // samples that met the rules and the predicate
  int64_t duplicates = 0;  // passing samples dropped as a repeat of a kept completion
  int64_t capped = 0;      // passing, new samples dropped by max_per_prompt
  int64_t kept = 0;
};

struct RejectionResult {
  std::vector<nlohmann::json> kept;  // the kept records, unchanged, in input order
  std::vector<PromptRejectionCounts> prompts;
  int64_t seen = 0, passed = 0, duplicates = 0, capped = 0;
  int64_t prompts_with_kept = 0;

  int64_t kept_count() const { return static_cast<int64_t>(kept.size()); }
  double kept_per_prompt() const;  // kept / prompts (0 without prompts)
};

// Filters `samples` (above). Throws std::invalid_argument naming the rule when a rule of min_values is
// absent from a sample's rewards (listing the rules it has), naming the record when it has no
// prompt_index or completion, and for max_per_prompt < 0. What the predicate throws passes through.
RejectionResult rejection_sample(const std::vector<nlohmann::json>& samples, const RejectionCriteria& criteria);

// One JSON object per prompt ({prompt_index, seen, passed, duplicates, capped, kept}), for the report.
nlohmann::json to_json(const PromptRejectionCounts& counts);

}  // namespace grpo
