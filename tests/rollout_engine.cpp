// The rollout engine against teacher-forced forwards and against itself under different batching.
#include <doctest/doctest.h>

#include <map>

#include "policy/token_logprobs.h"
#include "policy/tokenizer/tokenizer.h"
#include "policy_test_models.h"
#include "rollout/rollout_engine.h"

using namespace grpo;
using torch::Tensor;

namespace {

std::vector<PromptRequest> some_prompts(int64_t g, uint64_t seed = 0) {
  std::vector<PromptRequest> out;
  std::vector<std::vector<int32_t>> prompts = {{3, 9, 27}, {5}, {8, 1, 6, 40, 2, 7}, {11, 12}, {60, 59, 58, 57}};
  for (size_t i = 0; i < prompts.size(); ++i) out.push_back({prompts[i], g, seed + i});
  return out;
}

Tensor sequence_of(const Completion& c) {
  std::vector<int64_t> ids(c.prompt_ids.begin(), c.prompt_ids.end());
  ids.insert(ids.end(), c.completion_ids.begin(), c.completion_ids.end());
  return torch::tensor(ids, torch::kLong).unsqueeze(0);
}

}  // namespace

TEST_CASE("greedy decoding equals the arg-max of a full forward at every step") {
  for (const char* json : {test::kTinyDeepSeekV3, test::kTinyQwen2}) {
    CausalLM model = test::tiny_model(json, 51);
    CAPTURE(model->config().model_type);
    RolloutOptions o;
    o.sampling.temperature = 0;
    o.stop.max_new_tokens = 12;
    RolloutEngine engine(model, nullptr, o);
    for (const Completion& c : engine.generate(some_prompts(2))) {
      CHECK(c.completion_ids.size() == 12);
      CHECK(c.finish_reason == FinishReason::Length);
      ModelInputs in;
      in.input_ids = sequence_of(c);
      Tensor argmax = model->forward(in)[0].argmax(-1);  // prediction after each position
      const int64_t p = static_cast<int64_t>(c.prompt_ids.size());
      for (size_t t = 0; t < c.completion_ids.size(); ++t) CHECK(argmax[p - 1 + static_cast<int64_t>(t)].item<int64_t>() == c.completion_ids[t]);
    }
  }
}

TEST_CASE("returned log-probs equal teacher-forced log-probs of the same tokens") {
  for (const char* json : test::kAllTinyConfigs) {
    CausalLM model = test::tiny_model(json, 52);
    CAPTURE(model->config().model_type);
    RolloutOptions o;
    o.sampling.temperature = 0.8;
    o.sampling.top_p = 0.9;
    o.stop.max_new_tokens = 10;
    o.stop.stop_ids = {1};
    o.max_batch_rows = 6;
    RolloutEngine engine(model, nullptr, o);
    for (const Completion& c : engine.generate(some_prompts(3))) {
      LogprobOptions lo;
      lo.temperature = 0.8;
      Tensor lp = token_logprobs(model, sequence_of(c), {}, lo)[0];
      const int64_t p = static_cast<int64_t>(c.prompt_ids.size());
      for (size_t t = 0; t < c.completion_ids.size(); ++t)
        CHECK(c.logprobs[t] == doctest::Approx(lp[p - 1 + static_cast<int64_t>(t)].item<float>()).epsilon(1e-5));
      if (c.finish_reason == FinishReason::Stop) CHECK(c.completion_ids.back() == 1);
    }
  }
}

TEST_CASE("continuous batching gives each sample the same result as generating its prompt alone") {
  CausalLM model = test::tiny_model(test::kTinyDeepSeekV3, 53, torch::kDouble);
  RolloutOptions o;
  o.sampling.temperature = 1.0;
  o.stop.max_new_tokens = 9;
  o.stop.stop_ids = {1, 2, 3, 4};  // frequent stops: rows leave early and others join
  o.max_batch_rows = 4;            // 5 prompts x 3 samples do not fit: continuous admission
  RolloutEngine batched(model, nullptr, o);
  std::vector<Completion> all = batched.generate(some_prompts(3, 100));
  CHECK(batched.stats().peak_rows <= 4);

  o.max_batch_rows = 64;
  RolloutEngine alone(model, nullptr, o);
  std::map<std::pair<int64_t, int64_t>, Completion> reference;
  std::vector<PromptRequest> prompts = some_prompts(3, 100);
  bool some_stopped = false, lengths_differ = false;
  for (size_t i = 0; i < prompts.size(); ++i)
    for (const Completion& c : alone.generate({prompts[i]})) reference[{static_cast<int64_t>(i), c.sample_index}] = c;
  for (const Completion& c : all) {
    const Completion& r = reference.at({c.request_index, c.sample_index});
    CHECK(c.completion_ids == r.completion_ids);
    REQUIRE(c.logprobs.size() == r.logprobs.size());
    for (size_t t = 0; t < c.logprobs.size(); ++t) CHECK(c.logprobs[t] == doctest::Approx(r.logprobs[t]).epsilon(1e-9));
    some_stopped |= c.finish_reason == FinishReason::Stop;
    lengths_differ |= c.completion_ids.size() != all[0].completion_ids.size();
  }
  CHECK(some_stopped);
  CHECK(lengths_differ);
}

TEST_CASE("shared-prefix generation equals generating each sample from its own prefill") {
  CausalLM model = test::tiny_model(test::kTinyLlama, 54, torch::kDouble);
  RolloutOptions o;
  o.stop.max_new_tokens = 8;
  RolloutEngine engine(model, nullptr, o);
  PromptRequest shared{{4, 8, 15, 16, 23, 42}, 4, 7};
  std::vector<Completion> together = engine.generate({shared});
  for (int64_t s = 0; s < 4; ++s) {
    PromptRequest single = shared;
    single.num_samples = 1;
    single.first_sample = s;
    Completion c = engine.generate({single})[0];
    CHECK(c.sample_index == s);
    CHECK(c.completion_ids == together[s].completion_ids);
  }
  CHECK(engine.stats().prompt_tokens == 6);  // one prefill per call
  CHECK(together[0].completion_ids != together[1].completion_ids);  // samples differ
}

TEST_CASE("a stop string split across tokens stops generation right after it") {
  // Character-level tokenizer: every stop string of two characters spans two tokens.
  Tokenizer tok = Tokenizer::make_char_level("abc", {"<pad>", "<eos>"});
  ModelConfig c = test::tiny_config(test::kTinyQwen2);
  c.vocab_size = tok.vocab_size();
  torch::manual_seed(55);
  CausalLM model(c);
  RolloutOptions o;
  o.stop.max_new_tokens = 40;
  o.stop.stop_strings = {"ba"};
  RolloutEngine engine(model, &tok, o);
  std::vector<int32_t> prompt = tok.encode("ab");
  int stopped = 0;
  for (const Completion& done : engine.generate({{prompt, 16, 1}})) {
    std::string text = tok.decode(done.completion_ids, /*skip_special=*/true);
    if (done.finish_reason == FinishReason::Stop && text.size() >= 2 && text.substr(text.size() - 2) == "ba") {
      ++stopped;
      CHECK(done.text == text);                              // the stop string is kept, nothing after
      CHECK(text.find("ba") == text.size() - 2);              // and it is the first occurrence
      CHECK(tok.decode({done.completion_ids.back()}) == "a");  // completed by the last token
    } else {
      CHECK(text.find("ba") == std::string::npos);  // stopped for another reason: no stop string inside
    }
  }
  CHECK(stopped > 0);

  o.stop.keep_stop_string = false;
  RolloutEngine dropping(model, &tok, o);
  for (const Completion& done : dropping.generate({{prompt, 16, 1}}))
    CHECK(done.text.find("ba") == std::string::npos);
}

TEST_CASE("ids past a padded vocabulary's tokenizer are never sampled, greedy or not") {
  // 61 embedding rows for a tokenizer of 7 ids (<pad>, <eos>, <unk>, a-d), and an output head that makes
  // the padded ids the likeliest.
  Tokenizer tok = Tokenizer::make_char_level("abcd", {"<pad>", "<eos>"});
  const int32_t v = tok.vocab_size();
  REQUIRE(v < 61);
  CausalLM model = test::tiny_model(test::kTinyQwen2, 57);
  {
    torch::NoGradGuard no_grad;
    torch::Tensor head = model->named_parameters()["model.embed_tokens.weight"];  // tied: the output head
    head.narrow(0, v, 61 - v).mul_(40.0);
  }
  std::vector<int32_t> prompt = tok.encode("ab");
  RolloutOptions o;
  o.stop.max_new_tokens = 12;
  RolloutOptions unmasked = o;
  // Without the tokenizer the engine cannot know the padding: the padded ids do get sampled.
  int64_t padded_without_tokenizer = 0;
  for (const Completion& done : RolloutEngine(model, nullptr, unmasked).generate({{prompt, 8, 3}}))
    for (int32_t id : done.completion_ids) padded_without_tokenizer += id >= v;
  CHECK(padded_without_tokenizer > 0);
  for (double temperature : {0.0, 1.0, 2.0}) {
    o.sampling.temperature = temperature;
    for (const Completion& done : RolloutEngine(model, &tok, o).generate({{prompt, 8, 3}})) {
      for (int32_t id : done.completion_ids) CHECK(id < v);
      // The reported log-probs are the trainer's: log_softmax over all 61 logits.
      LogprobOptions lo;
      lo.temperature = temperature > 0 ? temperature : 1.0;
      const Tensor lps = token_logprobs(model, sequence_of(done), {}, lo)[0];
      const int64_t p = static_cast<int64_t>(done.prompt_ids.size());
      for (size_t t = 0; t < done.logprobs.size(); ++t)
        CHECK(done.logprobs[t] == doctest::Approx(lps[p - 1 + static_cast<int64_t>(t)].item<float>()).epsilon(1e-4));
    }
  }
}

TEST_CASE("MoE rollouts record the experts a teacher-forced forward would use") {
  CausalLM model = test::tiny_model(test::kTinyDeepSeekV3, 56, torch::kDouble);
  RolloutOptions o;
  o.stop.max_new_tokens = 6;
  o.record_experts = true;
  o.max_batch_rows = 3;
  RolloutEngine engine(model, nullptr, o);
  for (const Completion& c : engine.generate(some_prompts(2))) {
    REQUIRE(c.experts.defined());
    const int64_t positions = static_cast<int64_t>(c.prompt_ids.size() + c.completion_ids.size()) - 1;
    CHECK(c.experts.sizes() == torch::IntArrayRef({2, positions, 2}));
    RoutingTrace trace;
    ModelInputs in;
    in.input_ids = sequence_of(c).narrow(1, 0, positions);
    in.routing = &trace;
    model->forward(in);
    for (int64_t l = 0; l < 2; ++l) {
      Tensor expected = std::get<0>(trace.experts[l][0].sort(-1));
      Tensor got = std::get<0>(c.experts[l].sort(-1));
      CHECK(torch::equal(got, expected));
    }
  }
}

TEST_CASE("bad requests are rejected with the request named") {
  CausalLM model = test::tiny_model(test::kTinyQwen2, 57);
  RolloutEngine engine(model, nullptr, {});
  CHECK_THROWS_WITH_AS(engine.generate({{{1, 2}, 1, 0}, {{}, 1, 0}}), doctest::Contains("request 1"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(engine.generate({{{1, 99}, 1, 0}}), doctest::Contains("outside the vocabulary"), std::invalid_argument);
  RolloutOptions o;
  o.stop.stop_strings = {"x"};
  CHECK_THROWS_AS(RolloutEngine(model, nullptr, o), std::invalid_argument);
}
