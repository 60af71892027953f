// Supervised fine-tuning: loss on completion tokens only, packing, and a tiny model that learns.
#include <doctest/doctest.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "policy/tokenizer/tokenizer.h"
#include "policy_test_models.h"
#include "rl/epoch_shuffled_batches.h"
#include "rl/sft.h"
#include "rl_sft_fixture.h"

using namespace grpo;
using torch::Tensor;

namespace {

// The float64 Qwen2-style models of these tests: the references below are float64.
struct SftFixture : test::CharSftFixture {
  CausalLM model(uint64_t seed) const { return CharSftFixture::model(test::kTinyQwen2, seed); }
};

// −log p(s[j] | s[0..j−1]) for every j >= from, by a plain forward of the whole sequence alone.
std::vector<double> reference_nll(CausalLM& model, const SftExample& e, size_t from) {
  std::vector<int64_t> s(e.prompt_ids.begin(), e.prompt_ids.end());
  s.insert(s.end(), e.completion_ids.begin(), e.completion_ids.end());
  ModelInputs in;
  in.input_ids = torch::tensor(s, torch::kLong).unsqueeze(0);
  Tensor logp = torch::log_softmax(model->forward(in).to(torch::kDouble), -1)[0];  // [n, V]
  std::vector<double> nll;
  for (size_t j = from; j < s.size(); ++j) nll.push_back(-logp[static_cast<int64_t>(j - 1)][s[j]].item<double>());
  return nll;
}

double sum(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0); }

std::vector<Tensor> gradients(CausalLM& model, const SftBatch& batch) {
  model->zero_grad();
  MaskedTokenLoss loss = completion_loss(model, batch);
  (loss.sum / static_cast<double>(loss.tokens)).backward();
  std::vector<Tensor> g;
  for (const Tensor& p : model->parameters()) g.push_back(p.grad().clone());
  return g;
}

}  // namespace

TEST_CASE("SFT loss is the mean of -log p over completion tokens, checked by a plain forward") {
  SftFixture f;
  CausalLM model = f.model(1);
  SftExample a = f.example("abc", "de"), b = f.example("h", "gfedc");
  SftBatch batch = build_sft_batch({&a, &b}, /*max_len=*/32, /*pack=*/false, f.tok.pad_id());
  REQUIRE(batch.input_ids.size(0) == 2);
  CHECK(batch.input_ids.size(1) == 7);  // b: 2 + 6 tokens -> 7 columns; a is padded
  MaskedTokenLoss loss = completion_loss(model, batch);
  // Targets are the completion tokens (EOS included): a has 3, b has 6.
  CHECK(loss.tokens == 9);
  std::vector<double> ra = reference_nll(model, a, a.prompt_ids.size()), rb = reference_nll(model, b, b.prompt_ids.size());
  CHECK(ra.size() + rb.size() == 9);
  CHECK(loss.sum.item<double>() == doctest::Approx(sum(ra) + sum(rb)).epsilon(1e-10));
  // Hand-worked layout of a = [BOS a b c | d e EOS]: column j predicts token j + 1; columns 3..5 count.
  CHECK(batch.loss_mask[0].sum().item<double>() == 3);
  CHECK(batch.loss_mask[0][2].item<float>() == 0);  // predicts 'c', a prompt token
  CHECK(batch.loss_mask[0][3].item<float>() == 1);  // predicts 'd', the first completion token
  CHECK(batch.targets[0][3].item<int64_t>() == f.tok.encode("d")[0]);
  CHECK(batch.loss_mask[0][6].item<float>() == 0);  // padding
}

TEST_CASE("SFT: targets at prompt positions have no effect on the gradient; completion targets do") {
  SftFixture f;
  CausalLM model = f.model(2);
  SftExample a = f.example("abcd", "ef"), b = f.example("ha", "bgc");
  SftBatch batch = build_sft_batch({&a, &b}, 32, false, f.tok.pad_id());
  std::vector<Tensor> base = gradients(model, batch);

  SftBatch prompt_changed = batch;
  prompt_changed.targets = batch.targets.clone();
  Tensor prompt_target = batch.attention_mask & (batch.loss_mask == 0);
  // a = [BOS a b c d | e f EOS] has 4 prompt targets (a b c d), b = [BOS h a | b g c EOS] has 2 (h a).
  REQUIRE(prompt_target.sum().item<int64_t>() == 6);
  prompt_changed.targets.masked_fill_(prompt_target, f.tok.encode("g")[0]);
  std::vector<Tensor> same = gradients(model, prompt_changed);
  for (size_t i = 0; i < base.size(); ++i) CHECK(torch::equal(base[i], same[i]));

  SftBatch completion_changed = batch;
  completion_changed.targets = batch.targets.clone();
  completion_changed.targets[0][4] = f.tok.encode("a")[0];  // a's completion target 'e'
  REQUIRE(batch.loss_mask[0][4].item<float>() == 1);
  std::vector<Tensor> other = gradients(model, completion_changed);
  double difference = 0;
  for (size_t i = 0; i < base.size(); ++i) difference += (base[i] - other[i]).abs().sum().item<double>();
  CHECK(difference > 1e-3);
}

TEST_CASE("SFT packing: same loss tokens, positions restart, each row's first example is computed exactly as alone") {
  SftFixture f;
  CausalLM model = f.model(3);
  // Columns (tokens - 1): 5, 4, 6, 3 -> with max_len 9 first fit gives rows {e0, e1}, {e2, e3}.
  SftExample e0 = f.example("abc", "d"), e1 = f.example("e", "fg"), e2 = f.example("ab", "hgf"), e3 = f.example("c", "h");
  std::vector<const SftExample*> all = {&e0, &e1, &e2, &e3};
  SftBatch unpacked = build_sft_batch(all, 9, false, f.tok.pad_id());
  SftBatch packed = build_sft_batch(all, 9, true, f.tok.pad_id());
  REQUIRE(unpacked.input_ids.size(0) == 4);
  REQUIRE(packed.input_ids.size(0) == 2);
  CHECK(packed.loss_mask.sum().item<double>() == unpacked.loss_mask.sum().item<double>());
  CHECK(packed.attention_mask.sum().item<int64_t>() == 5 + 4 + 6 + 3);
  Tensor row0 = packed.position_ids[0].contiguous();
  std::vector<int64_t> positions(row0.data_ptr<int64_t>(), row0.data_ptr<int64_t>() + 9);
  CHECK((positions == std::vector<int64_t>{0, 1, 2, 3, 4, 0, 1, 2, 3}));
  CHECK(torch::equal(packed.targets[1].narrow(0, 6, 3), unpacked.targets[3].narrow(0, 0, 3)));
  CHECK(torch::equal(packed.loss_mask[1].narrow(0, 6, 3), unpacked.loss_mask[3].narrow(0, 0, 3)));

  auto token_nll = [&](const SftBatch& batch) {
    ModelInputs in;
    in.input_ids = batch.input_ids;
    in.attention_mask = batch.attention_mask;
    in.position_ids = batch.position_ids;
    Tensor logp = torch::log_softmax(model->forward(in), -1);
    return -logp.gather(-1, batch.targets.unsqueeze(-1)).squeeze(-1);  // [B, T]
  };
  Tensor p = token_nll(packed), u = token_nll(unpacked);
  // First examples of the rows (e0, e2) see exactly what they see alone.
  CHECK(torch::allclose(p[0].narrow(0, 0, 5), u[0].narrow(0, 0, 5), 1e-12, 1e-12));
  CHECK(torch::allclose(p[1].narrow(0, 0, 6), u[2].narrow(0, 0, 6), 1e-12, 1e-12));
  // Later examples also attend to the ones before them (documented in sft.h).
  CHECK_FALSE(torch::allclose(p[0].narrow(0, 5, 4), u[1].narrow(0, 0, 4), 1e-6, 1e-6));

  // When nothing fits together, packing changes nothing.
  SftBatch lone = build_sft_batch(all, 6, true, f.tok.pad_id());
  CHECK(lone.input_ids.size(0) == 4);
  CHECK(completion_loss(model, lone).sum.item<double>() ==
        doctest::Approx(completion_loss(model, unpacked).sum.item<double>()).epsilon(1e-12));
}

TEST_CASE("SFT truncates long examples and drops those left without a completion target") {
  SftFixture f;
  SftExample longer = f.example("abcdef", "gh"), fits = f.example("a", "b");
  SftBatch batch = build_sft_batch({&longer, &fits}, 5, false, f.tok.pad_id());
  CHECK(batch.truncated == 1);
  CHECK(batch.dropped == 1);  // 6 kept tokens are BOS + "abcde": no completion target left
  CHECK(batch.input_ids.size(0) == 1);
  SftExample empty = f.example("ab", "");
  empty.completion_ids.clear();
  CHECK_THROWS_AS(build_sft_batch({&empty}, 8, false, 0), std::invalid_argument);
  CHECK_THROWS_AS(build_sft_batch({&fits}, 0, false, 0), std::invalid_argument);
}

TEST_CASE("SFT teaches a tiny model a fixed prompt -> completion mapping") {
  SftFixture f;
  ModelConfig c = test::tiny_config(test::kTinyQwen2);
  c.vocab_size = f.tok.vocab_size();
  torch::manual_seed(4);
  CausalLM model(c);
  std::vector<SftExample> data = {f.example("ab", "cd"), f.example("ef", "gh"), f.example("ba", "hg"),
                                  f.example("fe", "dc"), f.example("ca", "ee"), f.example("hd", "ab")};
  SftConfig config;
  config.steps = 120;
  config.batch_size = 6;
  config.max_len = 16;
  config.pack = true;
  config.lr = {1e-2, 10, LrDecay::Cosine, 0, 0.1};
  config.seed = 1;
  double first = -1;
  int64_t calls = 0;
  SftResult r = sft(model, data, config, f.tok.pad_id(), [&](const SftProgress& p) {
    if (p.step == 0) first = p.loss;
    CHECK(p.total_steps == 120);
    CHECK(p.completion_tokens == 18);  // 6 examples x (2 characters + EOS)
    ++calls;
  });
  MESSAGE("SFT loss: first step " << first << ", last 10% of steps " << r.final_loss);
  CHECK(calls == 120);
  CHECK(first > 1.5);
  CHECK(r.final_loss < 0.05);
  CHECK(r.skipped_updates == 0);
  // Greedy continuation reproduces every mapping.
  torch::NoGradGuard no_grad;
  for (const SftExample& e : data) {
    std::vector<int64_t> ids(e.prompt_ids.begin(), e.prompt_ids.end());
    for (int32_t expected : e.completion_ids) {
      ModelInputs in;
      in.input_ids = torch::tensor(ids, torch::kLong).unsqueeze(0);
      int64_t next = model->forward(in)[0][-1].argmax().item<int64_t>();
      CHECK(next == expected);
      ids.push_back(expected);
    }
  }
}

TEST_CASE("the epoch walk: every example once per epoch, reshuffled per epoch, batches spanning epochs") {
  EpochShuffledBatches walk(5, 11);
  CHECK(walk.epoch() == -1);
  std::vector<int64_t> seen;
  for (int i = 0; i < 5; ++i)
    for (int64_t index : walk.next(2)) seen.push_back(index);  // 10 indices: two epochs of 5
  CHECK(walk.epoch() == 1);
  std::vector<int64_t> first(seen.begin(), seen.begin() + 5), second(seen.begin() + 5, seen.end());
  std::vector<int64_t> all = {0, 1, 2, 3, 4};
  CHECK(std::is_permutation(first.begin(), first.end(), all.begin()));
  CHECK(std::is_permutation(second.begin(), second.end(), all.begin()));
  CHECK(first != second);  // reshuffled (seed 11 gives two different orders)
  EpochShuffledBatches again(5, 11);
  std::vector<int64_t> replay;
  for (int i = 0; i < 2; ++i)
    for (int64_t index : again.next(5)) replay.push_back(index);
  CHECK(replay == seen);  // the order depends on (seed, epoch) only, not on the batch size
  CHECK(EpochShuffledBatches(3, 1).next(8).size() == 3);  // a batch is at most the whole set
}
