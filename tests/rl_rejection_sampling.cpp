// Rejection sampling over grpo.sample records: the rule minimums, the predicate, the per-prompt cap and
// the dedupe of identical completions, with every count worked out by hand below.
#include <doctest/doctest.h>

#include <stdexcept>

#include "rl/rejection_sampling.h"

using namespace grpo;
using nlohmann::json;

namespace {

json rejection_record(int64_t prompt, int64_t sample, const std::string& completion, double accuracy, double format) {
  return {{"prompt_index", prompt},
          {"sample_index", sample},
          {"completion", completion},
          {"rewards", {{"accuracy", accuracy}, {"format", format}}},
          {"reward", accuracy + 0.5 * format}};
}

// Prompt 0: four samples, three correct and well formed, two of them the same text.
// Prompt 1: three samples, one correct but badly formatted, two wrong.
// Prompt 2: two samples, both correct and formatted, different texts.
std::vector<json> rejection_fixture() {
  return {rejection_record(0, 0, "x=1", 1, 1), rejection_record(0, 1, "x=2", 0, 1), rejection_record(0, 2, "x=1", 1, 1),
          rejection_record(0, 3, "so x=1", 1, 1), rejection_record(1, 0, "y", 1, 0), rejection_record(1, 1, "z", 0, 0),
          rejection_record(1, 2, "w", 0, 1), rejection_record(2, 0, "a", 1, 1), rejection_record(2, 1, "b", 1, 1)};
}

}  // namespace

TEST_CASE("rejection sampling keeps samples at or above every rule minimum and counts them per prompt") {
  RejectionCriteria c;
  c.min_values = {{"accuracy", 1}, {"format", 1}};
  c.dedupe = false;
  const RejectionResult r = rejection_sample(rejection_fixture(), c);
  // Passing: prompt 0 samples 0, 2, 3; prompt 1 none; prompt 2 both.
  REQUIRE(r.kept.size() == 5);
  CHECK(r.kept[0]["sample_index"] == 0);
  CHECK(r.kept[1]["sample_index"] == 2);
  CHECK(r.kept[2]["sample_index"] == 3);
  CHECK(r.kept[3]["prompt_index"] == 2);
  CHECK(r.seen == 9);
  CHECK(r.passed == 5);
  REQUIRE(r.prompts.size() == 3);
  CHECK(r.prompts[0].seen == 4);
  CHECK(r.prompts[0].kept == 3);
  CHECK(r.prompts[1].seen == 3);
  CHECK(r.prompts[1].kept == 0);
  CHECK(r.prompts[2].kept == 2);
  CHECK(r.prompts_with_kept == 2);
  CHECK(r.kept_per_prompt() == doctest::Approx(5.0 / 3.0));
}

TEST_CASE("rejection sampling drops a repeated completion of the same prompt, then caps what is left") {
  RejectionCriteria c;
  c.min_values = {{"accuracy", 1}};
  const RejectionResult deduped = rejection_sample(rejection_fixture(), c);
  // Prompt 0: samples 0 ("x=1"), 2 ("x=1" again: duplicate), 3 pass -> 2 kept; prompt 1: sample 0 passes.
  CHECK(deduped.prompts[0].passed == 3);
  CHECK(deduped.prompts[0].duplicates == 1);
  CHECK(deduped.prompts[0].kept == 2);
  CHECK(deduped.prompts[1].kept == 1);
  CHECK(deduped.kept_count() == 5);
  CHECK(deduped.duplicates == 1);

  c.max_per_prompt = 1;
  const RejectionResult capped = rejection_sample(rejection_fixture(), c);
  // One per prompt: prompt 0 keeps sample 0 (2 is a duplicate, 3 capped), prompt 2 keeps sample 0.
  REQUIRE(capped.kept_count() == 3);
  CHECK(capped.kept[0]["completion"] == "x=1");
  CHECK(capped.kept[1]["completion"] == "y");
  CHECK(capped.kept[2]["completion"] == "a");
  CHECK(capped.prompts[0].capped == 1);
  CHECK(capped.prompts[0].duplicates == 1);
  CHECK(capped.prompts[2].capped == 1);
  CHECK(capped.capped == 2);
  CHECK(capped.kept_per_prompt() == doctest::Approx(1.0));
  // The same completion text under different prompts is no duplicate.
  std::vector<json> two = {rejection_record(0, 0, "same", 1, 1), rejection_record(1, 0, "same", 1, 1)};
  CHECK(rejection_sample(two, c).kept_count() == 2);
}

TEST_CASE("rejection sampling: a predicate, the weighted total as \"reward\", and minimums below 1") {
  RejectionCriteria c;
  c.dedupe = false;
  int calls = 0;
  c.min_values = {{"format", 0.5}};
  c.predicate = [&](const json& s) {
    ++calls;
    return s["completion"].get<std::string>().size() == 1;
  };
  const RejectionResult r = rejection_sample(rejection_fixture(), c);
  // format >= 0.5: prompt 0 samples 0..3, prompt 1 sample 2, prompt 2 both = 7 calls; one-letter texts: w, a, b.
  CHECK(calls == 7);
  REQUIRE(r.kept_count() == 3);
  CHECK(r.kept[0]["completion"] == "w");

  RejectionCriteria total;
  total.min_values = {{"reward", 1.5}};  // accuracy 1 and format 1 is the only way to reach 1.5
  total.dedupe = false;
  CHECK(rejection_sample(rejection_fixture(), total).kept_count() == 5);
}

TEST_CASE("rejection sampling: a rule the samples lack is an error naming it and the rules they have") {
  RejectionCriteria c;
  c.min_values = {{"acuracy", 1}};
  try {
    rejection_sample(rejection_fixture(), c);
    FAIL("no error");
  } catch (const std::invalid_argument& e) {
    const std::string m = e.what();
    CHECK(m.find("\"acuracy\"") != std::string::npos);
    CHECK(m.find("\"accuracy\", \"format\"") != std::string::npos);
  }
  json unscored = {{"prompt_index", 0}, {"completion", "x"}};
  CHECK_THROWS_WITH_AS(rejection_sample({unscored}, c), doctest::Contains("not scored"), std::invalid_argument);
  CHECK_THROWS_AS(rejection_sample({json{{"completion", "x"}}}, RejectionCriteria{}), std::invalid_argument);
  RejectionCriteria negative;
  negative.max_per_prompt = -1;
  CHECK_THROWS_AS(rejection_sample(rejection_fixture(), negative), std::invalid_argument);
  // Nothing passing is no error here: the stage decides (it names itself).
  RejectionCriteria none;
  none.predicate = [](const json&) { return false; };
  const RejectionResult empty = rejection_sample(rejection_fixture(), none);
  CHECK(empty.kept.empty());
  CHECK(empty.prompts.size() == 3);
  CHECK(empty.prompts_with_kept == 0);
}
