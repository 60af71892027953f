#include "rewards/math_suite.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "rewards/math_equal.h"
#include "rewards/text_extract.h"

namespace grpo::rewards {

std::vector<AnswerCase> read_answer_cases(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open answer cases '" + path + "'");
  std::vector<AnswerCase> cases;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.empty()) continue;
    const auto where = [&] { return path + ":" + std::to_string(number); };
    nlohmann::json record;
    try {
      record = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& error) {
      throw std::runtime_error(where() + ": not JSON (" + error.what() + ")");
    }
    for (const char* key : {"source", "gold", "predicted"}) {
      if (!record.contains(key) || !record[key].is_string()) {
        throw std::runtime_error(where() + ": '" + key + "' must be a string");
      }
    }
    if (!record.contains("expected") || !record["expected"].is_boolean()) {
      throw std::runtime_error(where() + ": 'expected' must be true or false");
    }
    AnswerCase c{record["source"].get<std::string>(), record["gold"].get<std::string>(),
                 record["predicted"].get<std::string>(), record["expected"].get<bool>()};
    if (record.contains("targets")) {
      if (!record["targets"].is_string()) throw std::runtime_error(where() + ": 'targets' must be a string");
      c.number_fallback = record["targets"].get<std::string>().find("expr") != std::string::npos;
    }
    if (record.contains("precision")) {
      if (!record["precision"].is_number_integer()) throw std::runtime_error(where() + ": 'precision' must be an integer");
      c.approximation_places = record["precision"].get<int>();
    }
    if (record.contains("extract")) {
      if (!record["extract"].is_boolean()) throw std::runtime_error(where() + ": 'extract' must be true or false");
      c.extract = record["extract"].get<bool>();
    }
    cases.push_back(c);
  }
  return cases;
}

bool free_text_answers_equal(std::string_view predicted, std::string_view gold, bool number_fallback,
                             int approximation_places) {
  const auto answer = extract_answer(predicted, number_fallback);
  if (!answer) return false;
  const std::string gold_answer = extract_answer(gold, /*last_number_fallback=*/false).value_or(std::string(gold));
  MathEqualOptions options;
  options.approximation_places = approximation_places;
  return math_equal(*answer, gold_answer, options);
}

Agreement measure_agreement(const std::vector<AnswerCase>& cases) {
  Agreement result;
  AgreementRow all{"all"};
  for (const AnswerCase& c : cases) {
    const std::string group = c.source.substr(0, c.source.find("::"));
    if (result.rows.empty() || result.rows.back().group != group) result.rows.push_back(AgreementRow{group});
    AgreementRow& row = result.rows.back();
    MathEqualOptions options;
    options.approximation_places = c.approximation_places;
    const bool verdict = c.extract ? free_text_answers_equal(c.predicted, c.gold, c.number_fallback, c.approximation_places)
                                   : math_equal(c.predicted, c.gold, options);
    for (AgreementRow* r : {&row, &all}) {
      ++r->cases;
      if (verdict == c.expected) ++r->agree;
      if (verdict && !c.expected) ++r->false_equal;
      if (!verdict && c.expected) ++r->false_different;
    }
    if (verdict != c.expected) result.disagreements.push_back(&c);
  }
  result.rows.push_back(all);
  return result;
}

}  // namespace grpo::rewards
