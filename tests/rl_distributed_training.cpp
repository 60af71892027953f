// Data-parallel GRPO: two ranks over Gloo on loopback, each sampling half of the prompts, must train
// the same tiny policy as one process that sees the whole batch (same samples, same metrics, the same
// parameters to float tolerance).
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "policy/tokenizer/tokenizer.h"
#include "policy_test_models.h"
#include "rl/distributed/distributed.h"
#include "rl/grpo_trainer.h"
#include "distributed_test_ranks.h"

using namespace grpo;
using nlohmann::json;

namespace {

const char* kDistributedStartsWithA = R"(
return { { name = "accuracy", weight = 1.0,
           rule = function(s) if s.completion:sub(1, 1) == "a" then return 1 else return 0 end end } }
)";

// Graded: a reward for each first letter, so that nearly every group has some variance.
const char* kFirstLetterScore = R"(
return { { name = "letter", weight = 1.0,
           rule = function(s) return ((s.completion:byte(1) or 96) - 96) / 8 end } }
)";

constexpr int kSteps = 3;

// Every weight, then the MoE routers' correction biases (buffers that bias updates move), flattened.
std::vector<double> parameters_of(CausalLM& model) {
  std::vector<double> values;
  auto append = [&](const torch::Tensor& t) {
    torch::Tensor d = t.detach().to(torch::kDouble).contiguous().view({-1});
    values.insert(values.end(), d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
  };
  for (const auto& p : model->named_parameters()) append(p.value());
  for (const auto& b : model->named_buffers())
    if (b.key().find("e_score_correction_bias") != std::string::npos) append(b.value());
  return values;
}

// Trains kSteps steps of the given variant ("dense": token-mean; "moe": routing replay, a KL term,
// router bias updates, seq-mean-token-mean) and returns the metrics of each step, the sampled
// completions and the initial and final parameters.
json train(const std::string& variant, Distributed* distributed) {
  Tokenizer tok = Tokenizer::make_char_level("abcdefgh", {"<pad>", "<eos>"});
  std::vector<PromptExample> prompts;
  for (const char* p : {"bc", "de", "fg", "hb", "ab", "ch"}) prompts.push_back({p, tok.encode(p), json{{"text", p}}});
  const bool moe = variant == "moe";
  ModelConfig c = test::tiny_config(moe ? test::kTinyDeepSeekV3 : test::kTinyQwen2);
  c.vocab_size = tok.vocab_size();
  torch::manual_seed(moe ? 2 : 1);
  CausalLM model(c);
  GrpoConfig g;
  g.group_size = 4;
  g.seed = 3;
  g.stop.max_new_tokens = 4;
  g.stop.stop_ids = {tok.eos_id()};
  g.lr.peak = 1e-2;
  g.adamw.weight_decay = 0.0;
  g.micro_batch_size = 5;  // not a divisor of the 12 rows a rank has: uneven micro-batches
  g.reward_threads = 1;
  if (moe) {
    g.objective.policy.kl_coef = 0.05;
    g.objective.aggregation = LossAggregation::SeqMeanTokenMean;
    g.router_bias_update = 1e-3;
  }
  g.distributed = distributed;
  // The MoE variant's KL term has a gradient of rounding size wherever the policy still equals the
  // reference, and AdamW's first steps scale any gradient to about lr: a weight that only such noise
  // reaches moves by a whole update in a direction that depends on summation order. A graded reward
  // gives nearly every sample an advantage, so what reaches the weights is signal, as in real runs.
  GrpoTrainer trainer(model, tok,
                      moe ? rewards::RuleSet::from_source(kFirstLetterScore, "first_letter.lua")
                          : rewards::RuleSet::from_source(kDistributedStartsWithA, "starts_with_a.lua"),
                      g);
  json out = {{"metrics", json::array()}, {"completions", json::array()}, {"initial", parameters_of(model)}};
  for (int s = 0; s < kSteps; ++s) {
    StepResult r = trainer.step(prompts);
    out["metrics"].push_back(r.metrics);
    std::vector<std::string> completions;
    for (const ScoredSample& sample : r.samples)  // the gathered log keeps each sample's record and rule values
      completions.push_back(sample.record.dump() + " " + sample.prompt + "->" + sample.completion + " " +
                            json(sample.rule_values).dump());
    out["completions"].push_back(completions);
  }
  out["parameters"] = parameters_of(trainer.policy());
  for (const auto& p : trainer.policy()->named_parameters()) out["names"].push_back({p.key(), p.value().numel()});
  return out;
}

const bool training_registered = test::rank_scenario("train", [] {
  DistributedOptions o = distributed_options_from_environment();
  o.timeout = std::chrono::seconds(60);
  Distributed d(o);
  json out = train(std::getenv("TEST_VARIANT"), &d);
  std::cout << "RESULT " << out.dump() << std::endl;
});

json result_of(const test::RankOutcome& rank) {
  size_t at = rank.output.find("RESULT ");
  REQUIRE(at != std::string::npos);
  return json::parse(rank.output.substr(at + 7, rank.output.find('\n', at) - at - 7));
}

void check_two_ranks_match_one_process(const std::string& variant) {
  torch::set_num_threads(1);
  const json single = train(variant, nullptr);
  std::vector<test::RankOutcome> ranks = test::run_ranks("train", 2, {0, 1}, {{"TEST_VARIANT", variant}}, 120);
  for (int r = 0; r < 2; ++r) {
    INFO("rank " << r << " output:\n" << ranks[r].output.substr(0, 2000));
    REQUIRE(ranks[r].exit_code == 0);
  }
  const json rank0 = result_of(ranks[0]), rank1 = result_of(ranks[1]);
  // Both ranks hold bitwise the same weights: they applied the same summed gradients.
  CHECK(rank0["parameters"] == rank1["parameters"]);
  // The ranks together sampled exactly what one process sampled (seeds follow the global prompt index).
  CHECK(rank0["completions"] == single["completions"]);
  for (int s = 0; s < kSteps; ++s) {
    const json &one = single["metrics"][s], &two = rank0["metrics"][s];
    INFO("step " << s);
    for (const char* exact : {"reward", "reward_std", "completion_length/mean", "completion_length/max", "advantages_std",
                              "groups/sampled", "frac_reward_zero_std", "train/tokens"})
      CHECK(two.at(exact).get<double>() == one.at(exact).get<double>());
    // Reductions in a different order: equal to float rounding.
    for (const char* close : {"pg_loss", "grad_norm", "ratio/mean", "entropy", "rollout/logprob_diff_mean", "approx_kl"})
      CHECK(two.at(close).get<double>() == doctest::Approx(one.at(close).get<double>()).epsilon(1e-4));
  }
  std::vector<double> a = rank0["parameters"], b = single["parameters"], initial = single["initial"];
  REQUIRE(a.size() == b.size());
  double max_diff = 0, max_moved = 0;
  size_t worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::abs(a[i] - b[i]) > max_diff) max_diff = std::abs(a[i] - b[i]), worst = i;
    max_moved = std::max(max_moved, std::abs(b[i] - initial[i]));
  }
  std::string worst_name = "a router bias";
  size_t offset = 0;
  for (const json& n : single["names"]) {
    if (worst >= offset && worst < offset + n[1].get<size_t>()) worst_name = n[0];
    offset += n[1].get<size_t>();
  }
  INFO("largest difference in " << worst_name);
  MESSAGE(variant << ": " << a.size() << " values; training moved them by up to " << max_moved
                  << ", two ranks differ from one process by up to " << max_diff);
  CHECK(max_moved > 1e-3);  // the comparison is not between untrained weights
  if (variant == "moe") {  // the bias updates ran: each correction bias moved by a multiple of γ = 1e-3
    const size_t biases = 2 * 8;  // two MoE layers of eight experts, the last values of the vector
    double bias_moved = 0;
    for (size_t i = a.size() - biases; i < a.size(); ++i) bias_moved = std::max(bias_moved, std::abs(b[i] - initial[i]));
    CHECK(bias_moved > 0.5e-3);
  }
  // AdamW divides by √v: rounding-level differences in near-zero gradient entries (sums in another
  // order) move those weights by up to ~1e-5 after a few steps at lr 1e-2.
  CHECK(max_diff < 1e-4);
}

}  // namespace

TEST_CASE("data parallel: two Gloo ranks train a dense policy as one process with the whole batch") {
  check_two_ranks_match_one_process("dense");
}

TEST_CASE("data parallel: two Gloo ranks train an MoE policy (routing replay, KL, bias updates) as one process") {
  check_two_ranks_match_one_process("moe");
}
