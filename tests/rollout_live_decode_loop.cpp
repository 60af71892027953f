// The live decode loop (requests arriving while the batch decodes, each with its own settings) against
// RolloutEngine::generate of each request alone, and its streaming, cancellation and bounds.
#include <doctest/doctest.h>

#include <chrono>
#include <condition_variable>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <map>
#include <mutex>
#include <thread>

#include "policy/tokenizer/tokenizer.h"
#include "policy_test_models.h"
#include "rollout/live_decode_loop.h"
#include "rollout/rollout_engine.h"

using namespace grpo;
using namespace std::chrono_literals;

namespace {

// Records what the loop delivers; wait_for() blocks until a condition on it holds (bounded).
class RecordingSink : public GenerationSink {
 public:
  void on_token(const SampledToken& t) override {
    std::lock_guard<std::mutex> lock(mutex_);
    tokens.push_back(t);
    changed_.notify_all();
  }
  void on_completion(Completion c) override {
    std::lock_guard<std::mutex> lock(mutex_);
    completions[c.sample_index] = std::move(c);
    changed_.notify_all();
  }
  void on_error(const std::string& message) override {
    std::lock_guard<std::mutex> lock(mutex_);
    errors.push_back(message);
    changed_.notify_all();
  }
  bool cancelled() const override { return cancel.load(); }

  template <class Pred>
  bool wait_for(Pred pred, std::chrono::milliseconds timeout = 20s) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return pred(*this); });
  }

  std::vector<SampledToken> tokens;
  std::map<int64_t, Completion> completions;
  std::vector<std::string> errors;
  std::atomic<bool> cancel{false};

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
};

struct Settings {
  std::vector<int32_t> prompt;
  int64_t samples;
  uint64_t seed;
  SamplingParams sampling;
  int64_t max_new;
};

GenerationRequest request_of(const Settings& s, std::vector<int32_t> stop_ids, std::shared_ptr<GenerationSink> sink) {
  GenerationRequest g;
  g.prompt = {s.prompt, s.samples, s.seed};
  g.sampling = s.sampling;
  g.stop.stop_ids = std::move(stop_ids);
  g.stop.max_new_tokens = s.max_new;
  g.sink = std::move(sink);
  return g;
}

}  // namespace

TEST_CASE("requests that arrive while the batch decodes get what generate gives each of them alone") {
  CausalLM model = test::tiny_model(test::kTinyDeepSeekV3, 61, torch::kDouble);
  const std::vector<int32_t> stops = {1, 2, 3};  // frequent stops: rows leave early and others join
  const std::vector<Settings> settings = {
      {{3, 9, 27}, 3, 100, {1.0, 0, 1.0, 0.0}, 9},   {{5}, 2, 101, {0.7, 5, 1.0, 0.0}, 12},
      {{8, 1, 6, 40, 2, 7}, 3, 102, {1.3, 0, 0.8, 0.0}, 6}, {{11, 12}, 1, 103, {0.0, 0, 1.0, 0.0}, 10},
      {{60, 59, 58, 57}, 2, 104, {1.0, 0, 1.0, 0.1}, 15}};
  std::vector<std::shared_ptr<RecordingSink>> sinks;
  {
    RolloutOptions o;
    o.max_batch_rows = 4;  // 11 samples do not fit: continuous admission
    LiveDecodeLoop loop(model, nullptr, o, /*max_waiting=*/16);
    std::vector<std::thread> clients;
    for (size_t i = 0; i < settings.size(); ++i) {
      sinks.push_back(std::make_shared<RecordingSink>());
      clients.emplace_back([&, i] {
        std::this_thread::sleep_for(std::chrono::milliseconds(3 * i));  // arrivals spread over the decoding
        CHECK(loop.submit(request_of(settings[i], stops, sinks[i])) == LiveDecodeLoop::Submitted::Queued);
      });
    }
    for (std::thread& t : clients) t.join();
    CHECK(loop.wait_idle(20000));
    CHECK(loop.live_rows() == 0);
  }
  bool some_stopped = false;
  for (size_t i = 0; i < settings.size(); ++i) {
    CAPTURE(i);
    RolloutOptions alone;
    alone.sampling = settings[i].sampling;
    alone.stop.stop_ids = stops;
    alone.stop.max_new_tokens = settings[i].max_new;
    RolloutEngine engine(model, nullptr, alone);
    std::vector<Completion> reference = engine.generate({{settings[i].prompt, settings[i].samples, settings[i].seed}});
    REQUIRE(sinks[i]->completions.size() == reference.size());
    CHECK(sinks[i]->errors.empty());
    for (const Completion& r : reference) {
      const Completion& c = sinks[i]->completions.at(r.sample_index);
      CHECK(c.completion_ids == r.completion_ids);
      CHECK(c.finish_reason == r.finish_reason);
      REQUIRE(c.logprobs.size() == r.logprobs.size());
      for (size_t t = 0; t < c.logprobs.size(); ++t) CHECK(c.logprobs[t] == doctest::Approx(r.logprobs[t]).epsilon(1e-9));
      some_stopped |= c.finish_reason == FinishReason::Stop;
    }
  }
  CHECK(some_stopped);
}

TEST_CASE("streamed tokens and text pieces add up to the completion, a stop string held back until decided") {
  Tokenizer tok = Tokenizer::make_char_level("abc", {"<pad>", "<eos>"});
  ModelConfig c = test::tiny_config(test::kTinyQwen2);
  c.vocab_size = tok.vocab_size();
  torch::manual_seed(62);
  CausalLM model(c);
  RolloutOptions o;
  LiveDecodeLoop loop(model, &tok, o, 8);
  auto sink = std::make_shared<RecordingSink>();
  GenerationRequest g;
  g.prompt = {tok.encode("ab"), 6, 5};
  g.stop.max_new_tokens = 30;
  g.stop.stop_strings = {"bca"};
  g.stop.keep_stop_string = false;  // as OpenAI's API: the stop string is not returned
  g.stream = true;
  g.sink = sink;
  REQUIRE(loop.submit(g) == LiveDecodeLoop::Submitted::Queued);
  REQUIRE(sink->wait_for([](RecordingSink& s) { return s.completions.size() == 6; }));
  int stopped_by_string = 0;
  for (const auto& [index, done] : sink->completions) {
    std::string text;
    std::vector<int32_t> ids;
    for (const SampledToken& t : sink->tokens)
      if (t.sample_index == index) text += t.text, ids.push_back(t.token);
    CHECK(ids == done.completion_ids);
    CHECK(text == done.text);
    const std::string full = tok.decode(done.completion_ids, /*skip_special=*/true);
    if (done.finish_reason == FinishReason::Stop && full.size() >= 3 && full.substr(full.size() - 3) == "bca") {
      ++stopped_by_string;
      CHECK(text == full.substr(0, full.size() - 3));  // no piece of the stop string was ever streamed
    }
  }
  CHECK(stopped_by_string > 0);
}

TEST_CASE("top_logprobs are the likeliest tokens under the tempered distribution of a full forward") {
  CausalLM model = test::tiny_model(test::kTinyQwen2, 63, torch::kDouble);
  RolloutOptions o;
  LiveDecodeLoop loop(model, nullptr, o, 8);
  auto sink = std::make_shared<RecordingSink>();
  GenerationRequest g;
  g.prompt = {{4, 8, 15}, 1, 9};
  g.sampling.temperature = 0.8;
  g.stop.max_new_tokens = 6;
  g.top_logprobs = 3;
  g.sink = sink;
  REQUIRE(loop.submit(g) == LiveDecodeLoop::Submitted::Queued);
  REQUIRE(sink->wait_for([](RecordingSink& s) { return s.completions.size() == 1; }));
  const Completion& c = sink->completions.at(0);
  REQUIRE(c.top_logprobs.size() == c.completion_ids.size());
  std::vector<int64_t> ids = {4, 8, 15};
  ids.insert(ids.end(), c.completion_ids.begin(), c.completion_ids.end());
  torch::Tensor logits = test::full_logits(model, torch::tensor(ids).unsqueeze(0))[0].to(torch::kDouble);  // [T, V]
  for (size_t t = 0; t < c.completion_ids.size(); ++t) {
    // Independent: float64 log-softmax of logits / T at the position before token t, sorted by hand.
    torch::Tensor row = logits[static_cast<int64_t>(2 + t)] / 0.8;
    const double lse = std::log(torch::exp(row - row.max()).sum().item<double>()) + row.max().item<double>();
    std::vector<std::pair<double, int32_t>> all;
    for (int64_t v = 0; v < row.size(0); ++v) all.emplace_back(row[v].item<double>() - lse, static_cast<int32_t>(v));
    std::sort(all.rbegin(), all.rend());
    REQUIRE(c.top_logprobs[t].size() == 3);
    for (size_t k = 0; k < 3; ++k) {
      CHECK(c.top_logprobs[t][k].token == all[k].second);
      CHECK(c.top_logprobs[t][k].logprob == doctest::Approx(all[k].first).epsilon(1e-5));
    }
  }
}

TEST_CASE("a cancelled request leaves the batch at once; a full queue refuses; cancel_all ends the rest") {
  CausalLM model = test::tiny_model(test::kTinyQwen2, 64);
  RolloutOptions o;
  o.max_batch_rows = 2;
  LiveDecodeLoop loop(model, nullptr, o, /*max_waiting=*/1);
  Settings endless{{1, 2, 3}, 2, 1, {1.0, 0, 1.0, 0.0}, 1000000};  // only cancellation ends it
  auto a = std::make_shared<RecordingSink>();
  GenerationRequest ga = request_of(endless, {}, a);
  ga.stream = true;
  REQUIRE(loop.submit(ga) == LiveDecodeLoop::Submitted::Queued);
  REQUIRE(a->wait_for([](RecordingSink& s) { return s.tokens.size() >= 4; }));
  CHECK(loop.live_rows() == 2);
  // The batch is full: the next request waits, and the one after finds no waiting place.
  auto b = std::make_shared<RecordingSink>();
  auto c = std::make_shared<RecordingSink>();
  GenerationRequest gb = request_of(endless, {}, b);
  gb.stream = true;  // its tokens wake the wait below
  CHECK(loop.submit(gb) == LiveDecodeLoop::Submitted::Queued);
  CHECK(loop.submit(request_of(endless, {}, c)) == LiveDecodeLoop::Submitted::QueueFull);
  a->cancel = true;  // a's rows leave; b is admitted into them
  REQUIRE(b->wait_for([&](RecordingSink&) { return loop.live_rows() == 2 && loop.waiting() == 0; }, 20s));
  CHECK(a->completions.empty());
  loop.cancel_all("shutting down");
  REQUIRE(b->wait_for([](RecordingSink& s) { return !s.errors.empty(); }));
  CHECK(b->errors[0] == "shutting down");
  CHECK(loop.wait_idle(20000));
  CHECK(loop.live_rows() == 0);
  loop.stop_accepting();
  CHECK(loop.submit(request_of(endless, {}, c)) == LiveDecodeLoop::Submitted::Stopped);
}
