// The rollout worker against the synchronous engine, with and without running ahead of the trainer.
#include <doctest/doctest.h>

#include <chrono>
#include <stdexcept>
#include <thread>

#include "policy_test_models.h"
#include "rollout/rollout_worker.h"

using namespace grpo;

namespace {

// Batch b: two prompts that depend on b, G = 3, seeds that depend on b.
RolloutBatch batch_number(int64_t b) {
  RolloutBatch batch;
  for (int64_t i = 0; i < 2; ++i) {
    std::vector<int32_t> prompt = {static_cast<int32_t>(3 + b), static_cast<int32_t>(10 + i), static_cast<int32_t>(20 + b + i)};
    batch.requests.push_back({prompt, 3, static_cast<uint64_t>(100 * b + i)});
    batch.records.push_back({{"batch", b}, {"prompt", i}});
  }
  return batch;
}

RolloutWorker::BatchSource batches(int64_t count) {
  auto next = std::make_shared<int64_t>(0);
  return [next, count]() -> std::optional<RolloutBatch> {
    if (*next == count) return std::nullopt;
    return batch_number((*next)++);
  };
}

RolloutOptions sampling_options() {
  RolloutOptions o;
  o.sampling.temperature = 1.0;
  o.stop.max_new_tokens = 6;
  o.stop.stop_ids = {1, 2};
  return o;
}

// What a trainer's update does to the weights, as far as the worker can tell: they change.
void perturb(CausalLM& model, int64_t step) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(1000 + static_cast<uint64_t>(step));
  for (torch::Tensor& p : model->parameters()) p.add_(torch::randn_like(p) * 0.2);
}

// The groups hold exactly what a synchronous engine with `model` returns for the batch.
void check_equals_engine(const SampledBatch& got, const CausalLM& model, int64_t batch_index) {
  RolloutBatch batch = batch_number(batch_index);
  RolloutEngine engine(model, nullptr, sampling_options());
  std::vector<Completion> expected = engine.generate(batch.requests);
  REQUIRE(got.groups.size() == batch.requests.size());
  size_t e = 0;
  for (const SampledGroup& g : got.groups) {
    CHECK(g.record == batch.records[g.request_index]);
    REQUIRE(g.completions.size() == 3);
    for (const Completion& c : g.completions) {
      CHECK(c.request_index == g.request_index);
      CHECK(c.completion_ids == expected[e].completion_ids);
      REQUIRE(c.logprobs.size() == expected[e].logprobs.size());
      for (size_t t = 0; t < c.logprobs.size(); ++t) CHECK(c.logprobs[t] == doctest::Approx(expected[e].logprobs[t]).epsilon(1e-9));
      ++e;
    }
  }
}

}  // namespace

TEST_CASE("a worker that does not run ahead returns the synchronous engine's groups") {
  CausalLM policy = test::tiny_model(test::kTinyDeepSeekV3, 71, torch::kDouble);
  RolloutWorker worker(policy, nullptr, sampling_options(), batches(3));
  for (int64_t b = 0; b < 3; ++b) {
    std::optional<SampledBatch> got = worker.next();
    REQUIRE(got);
    CHECK(got->index == b);
    CHECK(got->policy_version == b);
    check_equals_engine(*got, policy, b);  // sampled with the live policy
    perturb(policy, b);
    worker.update_weights(policy);
  }
  CHECK_FALSE(worker.next());
  CHECK(worker.peak_queued() == 0);
}

TEST_CASE("a worker one batch ahead samples with weights at most one update old") {
  CausalLM policy = test::tiny_model(test::kTinyQwen2, 72, torch::kDouble);
  RolloutWorker worker(policy, nullptr, sampling_options(), batches(5), /*run_ahead=*/1);
  std::vector<CausalLM> versions = {clone_weights(policy)};  // weights of each published version
  int64_t lagged = 0;
  for (int64_t b = 0; b < 5; ++b) {
    std::optional<SampledBatch> got = worker.next();
    REQUIRE(got);
    CHECK(got->index == b);
    const int64_t published = static_cast<int64_t>(versions.size()) - 1;
    CHECK(got->policy_version <= published);
    CHECK(got->policy_version >= published - 1);
    lagged += got->policy_version < published;
    // The worker's copy really held that version's weights.
    check_equals_engine(*got, versions[got->policy_version], b);
    CHECK(worker.queued() <= 1);

    // "Train" long enough for the worker to sample the next batch with the old weights, then publish.
    for (int i = 0; i < 2000 && worker.queued() == 0 && b + 1 < 5; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    perturb(policy, b);
    worker.update_weights(policy);
    versions.push_back(clone_weights(policy));
  }
  CHECK_FALSE(worker.next());
  CHECK_FALSE(worker.next());  // the end stays the end
  CHECK(worker.peak_queued() == 1);
  CHECK(lagged == 4);  // every batch after the first was sampled during the previous "update"
}

TEST_CASE("a worker two batches ahead never queues more than two") {
  CausalLM policy = test::tiny_model(test::kTinyLlama, 73);
  RolloutWorker worker(policy, nullptr, sampling_options(), batches(6), /*run_ahead=*/2);
  for (int i = 0; i < 2000 && worker.queued() < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // room for a third, if the bound leaked
  CHECK(worker.queued() == 2);
  int64_t taken = 0;
  while (std::optional<SampledBatch> got = worker.next()) {
    CHECK(got->index == taken++);
    CHECK(worker.version() - got->policy_version <= 2);
    worker.update_weights(policy);
  }
  CHECK(taken == 6);
  CHECK(worker.peak_queued() == 2);
}

TEST_CASE("a worker passes errors of the source and of bad batches to the caller") {
  CausalLM policy = test::tiny_model(test::kTinyQwen2, 74);
  for (int64_t ahead : {0, 1}) {
    CAPTURE(ahead);
    int64_t calls = 0;
    RolloutWorker worker(policy, nullptr, sampling_options(), [&calls]() -> std::optional<RolloutBatch> {
      if (calls++ == 0) return batch_number(0);
      RolloutBatch bad = batch_number(1);
      bad.records.pop_back();
      return bad;
    }, ahead);
    CHECK(worker.next());
    CHECK_THROWS_WITH_AS(worker.next(), doctest::Contains("1 records for 2 requests"), std::invalid_argument);
  }
  CHECK_THROWS_AS(RolloutWorker(policy, nullptr, sampling_options(), batches(1), -1), std::invalid_argument);
}
