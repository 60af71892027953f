#pragma once
// A request that carries its own settings: what DecodeBatch decodes. RolloutEngine::generate gives
// every prompt the same settings; a server gives each client request its own sampling parameters,
// stop conditions, token budget and log-prob options, and a sink that receives its tokens as they
// are sampled (for streaming) and its completions as they finish, on the decoding thread.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "rollout/rollout_engine.h"
#include "rollout/sampling.h"
#include "rollout/stop_conditions.h"

namespace grpo {

// One sampled token of one sample, as streamed.
struct SampledToken {
  int64_t sample_index = 0;  // as in Completion: first_sample + s
  int32_t token = 0;
  float logprob = 0;         // the behaviour log-prob (see Completion::logprobs)
  std::vector<TokenLogprob> top;  // the request's top_logprobs alternatives, most likely first
  std::string text;          // text this token settled (CompletionText::take_delta), when text is streamed
};

// Receives a request's results. Called on the thread that runs the DecodeBatch: implementations hand
// the results on and return quickly (a slow client must not hold up the batch).
class GenerationSink {
 public:
  virtual ~GenerationSink() = default;
  virtual void on_token(const SampledToken& token) {}
  // A finished sample; every sample of the request finishes exactly once unless the request is
  // cancelled.
  virtual void on_completion(Completion completion) = 0;
  // Polled once per decode step: a cancelled request's waiting prompt is dropped and its rows leave
  // the batch at the next step, without completions.
  virtual bool cancelled() const { return false; }
  // Decoding failed (e.g. out of memory); the request ends here.
  virtual void on_error(const std::string& message) {}
};

struct GenerationRequest {
  PromptRequest prompt;
  SamplingParams sampling;
  StopConditions stop;
  int64_t top_logprobs = 0;   // alternatives reported per token (0 = none)
  bool stream = false;        // deliver every token to the sink's on_token as it is sampled
  std::shared_ptr<GenerationSink> sink;
};

}  // namespace grpo
