#include "rewards/score_jsonl.h"

#include <fmt/core.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <ostream>

namespace grpo::rewards {
namespace {

Sample sample_from_record(nlohmann::json record, const std::string& where) {
  if (!record.is_object()) throw SampleFileError(where + ": expected a JSON object");
  const auto completion = record.find("completion");
  if (completion == record.end() || !completion->is_string()) {
    throw SampleFileError(where + ": the record needs a string field \"completion\"");
  }
  Sample sample;
  sample.completion = completion->get<std::string>();
  if (auto prompt = record.find("prompt"); prompt != record.end()) {
    if (!prompt->is_string()) throw SampleFileError(where + ": \"prompt\" must be a string");
    sample.prompt = prompt->get<std::string>();
  }
  if (auto tokens = record.find("completion_tokens"); tokens != record.end()) {
    if (!tokens->is_number_integer()) throw SampleFileError(where + ": \"completion_tokens\" must be an integer");
    sample.completion_tokens = tokens->get<std::int64_t>();
  }
  if (auto reason = record.find("finish_reason"); reason != record.end()) {
    if (!reason->is_string()) throw SampleFileError(where + ": \"finish_reason\" must be a string");
    sample.finish_reason = reason->get<std::string>();
  }
  sample.record = std::move(record);
  return sample;
}

ValueSummary named(const std::string& name) {
  ValueSummary value;
  value.name = name;
  return value;
}

class Summarizer {
 public:
  explicit Summarizer(const RuleSet& rules) : rules_(rules) {
    for (const RuleSpec& spec : rules.rules()) rule_values_.push_back(named(spec.name));
  }

  void add(const SampleScore& score) {
    ++samples_;
    total_.add(score.total);
    bool any_failed = false;
    for (std::size_t r = 0; r < score.rules.size(); ++r) {
      const RuleScore& rule = score.rules[r];
      rule_values_[r].add(rule.value);
      any_failed = any_failed || rule.failed();
      if (rule.failed() && rule_values_[r].failures++ == 0) rule_values_[r].first_failure = rule.message;
      for (const auto& [part, value] : rule.parts) {
        const std::string name = rules_.rules()[r].name + "." + part;
        auto [it, inserted] = parts_.try_emplace(name, named(name));
        it->second.add(value);
      }
    }
    if (any_failed) ++total_.failures;
  }

  ScoreFileSummary finish() {
    ScoreFileSummary summary;
    summary.samples = samples_;
    summary.values = rule_values_;
    for (auto& [name, value] : parts_) summary.values.push_back(value);
    total_.name = "total";
    summary.values.push_back(total_);
    return summary;
  }

 private:
  const RuleSet& rules_;
  std::int64_t samples_ = 0;
  std::vector<ValueSummary> rule_values_;
  std::map<std::string, ValueSummary> parts_;
  ValueSummary total_;
};

void write_scored(std::ostream& output, nlohmann::json record, const SampleScore& score, const RuleSet& rules) {
  nlohmann::json rewards = nlohmann::json::object();
  nlohmann::json failures = nlohmann::json::object();
  for (std::size_t r = 0; r < score.rules.size(); ++r) {
    const std::string& name = rules.rules()[r].name;
    rewards[name] = score.rules[r].value;
    for (const auto& [part, value] : score.rules[r].parts) rewards[name + "." + part] = value;
    if (score.rules[r].failed()) failures[name] = score.rules[r].message;
  }
  record["rewards"] = std::move(rewards);
  record["reward"] = score.total;
  if (!failures.empty()) record["reward_failures"] = std::move(failures);
  // Invalid UTF-8 in a completion is replaced rather than aborting the whole file.
  output << record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
}

}  // namespace

void ValueSummary::add(double value) {
  ++count;
  sum += value;
  min = std::min(min, value);
  max = std::max(max, value);
}

ScoreFileSummary score_jsonl(ScorerPool& pool, const std::string& input_path, std::ostream* output,
                             std::size_t batch_size) {
  std::ifstream input(input_path, std::ios::binary);
  if (!input) throw SampleFileError(input_path + ": cannot open the file");
  const RuleSet& rules = pool.rule_set();
  Summarizer summarizer(rules);
  std::vector<Sample> batch;
  auto flush = [&] {
    const std::vector<SampleScore> scores = pool.score(batch);
    for (std::size_t i = 0; i < batch.size(); ++i) {
      summarizer.add(scores[i]);
      if (output) write_scored(*output, std::move(batch[i].record), scores[i], rules);
    }
    batch.clear();
  };
  std::string line;
  std::int64_t line_number = 0;
  while (std::getline(input, line)) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = fmt::format("{}:{}", input_path, line_number);
    nlohmann::json record;
    try {
      record = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& error) {
      throw SampleFileError(where + ": malformed JSON: " + error.what());
    }
    batch.push_back(sample_from_record(std::move(record), where));
    if (batch.size() >= batch_size) flush();
  }
  if (!batch.empty()) flush();
  if (output) output->flush();
  return summarizer.finish();
}

std::string format_summary(const ScoreFileSummary& summary, const RuleSet& rules) {
  std::size_t width = 5;
  for (const ValueSummary& value : summary.values) width = std::max(width, value.name.size());
  std::string text = fmt::format("{} samples\n{:<{}}  {:>7}  {:>9}  {:>9}  {:>9}  {:>8}\n", summary.samples, "rule",
                                 width, "weight", "mean", "min", "max", "failures");
  for (const ValueSummary& value : summary.values) {
    std::string weight = "";
    for (const RuleSpec& spec : rules.rules()) {
      if (spec.name == value.name) weight = fmt::format("{:g}", spec.weight);
    }
    const bool empty = value.count == 0;
    text += fmt::format("{:<{}}  {:>7}  {:>9.4f}  {:>9.4f}  {:>9.4f}  {:>8}\n", value.name, width, weight,
                        value.mean(), empty ? 0.0 : value.min, empty ? 0.0 : value.max, value.failures);
  }
  // Whole messages, once per failing rule: the end of a message (the rule's line, what was missing)
  // is usually the useful part, so it is not cut to fit a column.
  std::string failures;
  for (const ValueSummary& value : summary.values) {
    if (value.failures == 0 || value.first_failure.empty()) continue;
    std::string message = value.first_failure;
    std::replace(message.begin(), message.end(), '\n', ' ');
    failures += fmt::format("  {} (failed on {} of {} samples): {}\n", value.name, value.failures, summary.samples,
                            message);
  }
  if (!failures.empty()) text += "first failure of each failing rule:\n" + failures;
  return text;
}

}  // namespace grpo::rewards
