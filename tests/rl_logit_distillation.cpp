// Logit distillation (rl/logit_distillation.h): the batch loss against a float64 forward of each
// sequence alone, micro-batching that leaves the update unchanged, a tiny student driven to a tiny
// teacher's distributions, clear errors; and on-policy distillation through the GRPO trainer (teacher
// in the reference slot, per-token advantages).
#include <doctest/doctest.h>

#include <fmt/core.h>

#include <cmath>
#include <stdexcept>

#include "policy/tokenizer/tokenizer.h"
#include "policy_test_models.h"
#include "rl/grpo_objective.h"
#include "rl/grpo_trainer.h"
#include "rl/logit_distillation.h"
#include "rl_sft_fixture.h"

using namespace grpo;
using torch::Tensor;

namespace {

struct KdFixture : test::CharSftFixture {
  std::vector<SftExample> examples() const {
    return {example("ab", "cde"), example("c", "hhg"), example("dd", "a"), example("efg", "bbca")};
  }
};

// Σ over completion positions of τ²·KL(p_T ‖ p_S), each sequence forwarded alone, in float64 loops.
double kd_reference_sum(CausalLM& student, CausalLM& teacher, const SftExample& e, double tau) {
  std::vector<int64_t> s(e.prompt_ids.begin(), e.prompt_ids.end());
  s.insert(s.end(), e.completion_ids.begin(), e.completion_ids.end());
  ModelInputs in;
  in.input_ids = torch::tensor(s, torch::kLong).unsqueeze(0);
  torch::NoGradGuard no_grad;
  const Tensor zs = student->forward(in)[0].to(torch::kDouble), zt = teacher->forward(in)[0].to(torch::kDouble);  // [n, V]
  double total = 0;
  for (size_t j = e.prompt_ids.size(); j < s.size(); ++j) {  // column j − 1 predicts token j
    const int64_t col = static_cast<int64_t>(j - 1);
    const int64_t v = zs.size(1);
    double ms = -INFINITY, mt = -INFINITY;
    for (int64_t k = 0; k < v; ++k) ms = std::max(ms, zs[col][k].item<double>() / tau), mt = std::max(mt, zt[col][k].item<double>() / tau);
    double ss = 0, st = 0;
    for (int64_t k = 0; k < v; ++k) ss += std::exp(zs[col][k].item<double>() / tau - ms), st += std::exp(zt[col][k].item<double>() / tau - mt);
    for (int64_t k = 0; k < v; ++k) {
      const double lq = zs[col][k].item<double>() / tau - ms - std::log(ss), lp = zt[col][k].item<double>() / tau - mt - std::log(st);
      total += std::exp(lp) * (lp - lq);
    }
  }
  return total * tau * tau;
}

// A teacher with confident distributions: weights drawn wider than the default initialisation (whose
// near-uniform outputs would leave little to distil).
CausalLM kd_confident(CausalLM m, double std) {
  torch::NoGradGuard no_grad;
  for (auto& item : m->named_parameters())
    if (item.key().find("norm") == std::string::npos && item.key().find("bias") == std::string::npos) item.value().normal_(0.0, std);
  return m;
}

std::vector<Tensor> kd_parameters(CausalLM& m) {
  std::vector<Tensor> out;
  for (const Tensor& p : m->parameters()) out.push_back(p.detach().clone());
  return out;
}

}  // namespace

TEST_CASE("the logit-KD batch loss equals a float64 per-sequence computation (a dense student, an MoE teacher)") {
  KdFixture f;
  CausalLM student = f.model(test::kTinyQwen2, 1), teacher = f.model(test::kTinyDeepSeekV3, 2);
  teacher->eval();
  const std::vector<SftExample> ex = f.examples();
  std::vector<const SftExample*> ptrs;
  for (const SftExample& e : ex) ptrs.push_back(&e);
  const SftBatch batch = build_sft_batch(ptrs, 64, /*pack=*/false, f.pad());
  {
    LogitDistillationConfig c;
    c.temperature = 1.7;
    c.chunk_positions = 3;  // several chunks
    const DistillationBatchLoss l = logit_distillation_loss(student, teacher, batch, c);
    double expected = 0;
    int64_t tokens = 0;
    for (const SftExample& e : ex) expected += kd_reference_sum(student, teacher, e, 1.7), tokens += static_cast<int64_t>(e.completion_ids.size());
    CHECK(l.tokens == tokens);
    CHECK(l.sum.item<double>() == doctest::Approx(expected).epsilon(1e-8));
    CHECK(l.agreement.positions == tokens);
  }
}

TEST_CASE("micro-batching leaves the logit-KD update unchanged") {
  KdFixture f;
  CausalLM teacher = f.model(test::kTinyQwen2, 7);
  std::vector<std::vector<Tensor>> after;
  for (int64_t micro : {4, 1, 3}) {
    CausalLM student = f.model(test::kTinyQwen2, 5);
    LogitDistillationConfig c;
    c.steps = 1;
    c.batch_size = 4;
    c.micro_batch_size = micro;
    c.lr = {1e-2, 0, LrDecay::Constant, 0, 0.0};
    c.max_grad_norm = 0;  // measure only: clipping would hide a scale error
    double loss = 0;
    logit_distillation(student, teacher, f.examples(), c, f.pad(), [&](const LogitDistillationProgress& p) { loss = p.loss; });
    CHECK(loss > 0);
    after.push_back(kd_parameters(student));
  }
  for (size_t m = 1; m < after.size(); ++m)
    for (size_t i = 0; i < after[0].size(); ++i) CHECK(torch::allclose(after[m][i], after[0][i], 1e-9, 1e-11));
}

TEST_CASE("a tiny student is driven to a tiny teacher's distributions (full vocabulary and top-k): KL -> ~0") {
  KdFixture f;
  CausalLM teacher = kd_confident(f.model(test::kTinyQwen2, 11, torch::kFloat), 0.3);
  for (int64_t top_k : {0, 4}) {
    CausalLM student = f.model(test::kTinyQwen2, 12, torch::kFloat);
    LogitDistillationConfig c;
    c.steps = 150;
    c.batch_size = 4;
    c.micro_batch_size = 2;
    c.top_k = top_k;
    c.lr = {2e-2, 0, LrDecay::Constant, 0, 0.0};
    double first_loss = -1, last_loss = 0, first_kl = 0, last_kl = 0, last_agree = 0;
    logit_distillation(student, teacher, f.examples(), c, f.pad(), [&](const LogitDistillationProgress& p) {
      if (first_loss < 0) first_loss = p.loss, first_kl = p.kl;
      last_loss = p.loss, last_kl = p.kl;
      last_agree = p.argmax_agreement;
    });
    MESSAGE("top_k " << top_k << ": loss " << first_loss << " -> " << last_loss << ", full KL " << first_kl << " -> " << last_kl
                     << ", argmax agreement " << last_agree);
    // The loss it minimises goes to ~0: the full KL, or the KL over the teacher's top k + the rest bucket
    // (which leaves the distribution inside the rest free, so the full KL need not vanish there).
    CHECK(first_loss > 0.3);
    CHECK(last_loss < 0.02 * first_loss);
    CHECK(last_loss < 0.01);
    CHECK(last_kl < (top_k == 0 ? 0.01 : 0.5 * first_kl));
    CHECK(last_agree == doctest::Approx(1.0));
  }
}

TEST_CASE("logit distillation rejects vocabularies that differ and bad settings, naming them") {
  KdFixture f;
  CausalLM student = f.model(test::kTinyQwen2, 1);
  ModelConfig other = test::tiny_config(test::kTinyQwen2);
  other.vocab_size = f.tok.vocab_size() + 3;
  CausalLM teacher(other);
  const std::string expected = fmt::format("student's vocabulary has {} entries and the teacher's {}", f.tok.vocab_size(),
                                           f.tok.vocab_size() + 3);
  CHECK_THROWS_WITH_AS(logit_distillation(student, teacher, f.examples(), {}, f.pad()), doctest::Contains(expected.c_str()),
                       std::invalid_argument);
  LogitDistillationConfig bad;
  bad.temperature = 0;
  CHECK_THROWS_WITH_AS(logit_distillation(student, student, f.examples(), bad, f.pad()), doctest::Contains("temperature must be > 0"),
                       std::invalid_argument);
  bad = {};
  bad.top_k = 1000;
  CHECK_THROWS_WITH_AS(logit_distillation(student, student, f.examples(), bad, f.pad()), doctest::Contains("top_k 1000 is larger"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(logit_distillation(student, student, {}, {}, f.pad()), doctest::Contains("no examples"), std::invalid_argument);
}

TEST_CASE("per-token advantages: the clipped surrogate uses A[i, t] at each token, as a float64 loop computes it") {
  torch::manual_seed(4);
  PolicyLossInputs in;
  in.logp = (torch::randn({2, 3}, torch::kDouble) * 0.3 - 1.0).set_requires_grad(true);
  in.old_logp = in.logp.detach() + torch::randn({2, 3}, torch::kDouble) * 0.2;
  in.advantages = torch::tensor({{1.0, -2.0, 0.5}, {-0.3, 0.0, 3.0}}, torch::kDouble);
  in.mask = torch::tensor({{1, 1, 1}, {1, 1, 0}}, torch::kDouble);
  PolicyLossOptions o;
  o.clip_low = 0.2, o.clip_high = 0.28;
  const PerTokenLoss l = per_token_policy_loss(in, o);
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t t = 0; t < 3; ++t) {
      const double r = std::exp(in.logp[i][t].item<double>() - in.old_logp[i][t].item<double>());
      const double a = in.advantages[i][t].item<double>();
      const double expected = in.mask[i][t].item<double>() > 0 ? -std::min(r * a, std::clamp(r, 0.8, 1.28) * a) : 0.0;
      CHECK(l.policy[i][t].item<double>() == doctest::Approx(expected).epsilon(1e-12));
    }
  in.advantages = torch::zeros({2, 4}, torch::kDouble);
  CHECK_THROWS_WITH_AS(per_token_policy_loss(in, o), doctest::Contains("advantages (per token)"), std::invalid_argument);
}

TEST_CASE("on-policy distillation: a student sampling its own tokens is pulled to the teacher in the reference slot (reverse KL falls)") {
  KdFixture f;
  const char* kNoReward = "return { { name = \"zero\", rule = function() return 0 end } }";
  std::vector<PromptExample> prompts;
  for (const char* p : {"ab", "cd", "ef", "gh"}) {
    PromptExample e{p, f.tok.encode(p), nlohmann::json::object()};
    e.prompt_ids.insert(e.prompt_ids.begin(), f.tok.bos_id());
    prompts.push_back(e);
  }
  GrpoConfig g;
  g.group_size = 32;
  g.seed = 1;
  g.stop.max_new_tokens = 4;
  g.stop.stop_ids = {f.tok.eos_id()};
  g.lr.peak = 2e-2;
  g.micro_batch_size = 128;
  g.reward_threads = 1;
  g.distill_coef = 1.0;
  g.reward_coef = 0.0;
  // Without a teacher there is nothing to distil from.
  CHECK_THROWS_WITH_AS(GrpoTrainer(f.model(test::kTinyQwen2, 3, torch::kFloat), f.tok, rewards::RuleSet::from_source(kNoReward, "zero.lua"), g),
                       doctest::Contains("needs a teacher"), std::invalid_argument);
  CausalLM teacher = kd_confident(f.model(test::kTinyQwen2, 4, torch::kFloat), 0.3);
  GrpoTrainer trainer(f.model(test::kTinyQwen2, 3, torch::kFloat), f.tok, rewards::RuleSet::from_source(kNoReward, "zero.lua"), g,
                      ReferenceModel::copy_of(teacher));
  double first = 0, last = 0;
  const int steps = 100;
  for (int s = 0; s < steps; ++s) {
    StepResult r = trainer.step(prompts);
    REQUIRE(r.metrics.count("distill/reverse_kl"));
    // The metric is the mean gap between the two models' log-probs of the sampled tokens.
    CHECK(r.metrics["distill/reverse_kl"] ==
          doctest::Approx(r.metrics["distill/student_logprob"] - r.metrics["distill/teacher_logprob"]).epsilon(1e-6));
    if (s < 3) first += r.metrics["distill/reverse_kl"] / 3;
    if (s >= steps - 3) last += r.metrics["distill/reverse_kl"] / 3;
  }
  MESSAGE("sampled reverse KL to the teacher: first three steps " << first << ", last three " << last);
  CHECK(first > 0.3);
  CHECK(last < 0.5 * first);
}
