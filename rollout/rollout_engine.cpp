#include "rollout/rollout_engine.h"

#include <fmt/core.h>

#include <stdexcept>

#include "policy/stopwatch.h"
#include "rollout/decode_batch.h"

namespace grpo {
namespace {

// Throws std::invalid_argument naming the request with an empty prompt, no samples or a token outside
// the vocabulary.
void check_requests(const std::vector<PromptRequest>& requests, const ModelConfig& config) {
  for (size_t i = 0; i < requests.size(); ++i) {
    const PromptRequest& r = requests[i];
    if (r.prompt_ids.empty()) throw std::invalid_argument(fmt::format("rollout: request {} has an empty prompt", i));
    if (r.num_samples < 1) throw std::invalid_argument(fmt::format("rollout: request {} asks for {} samples", i, r.num_samples));
    for (int32_t id : r.prompt_ids)
      if (id < 0 || id >= config.vocab_size)
        throw std::invalid_argument(fmt::format("rollout: request {} has token id {} outside the vocabulary [0, {})", i, id, config.vocab_size));
  }
}

// Throws MemoryBudgetExceeded for the first request whose G rows of prompt + max_new_tokens positions
// do not fit the budget even alone, saying what was asked and what fits.
void check_budget(const std::vector<PromptRequest>& requests, const CacheBudget& budget, int64_t max_new) {
  if (budget.budget_bytes <= 0) return;
  for (size_t i = 0; i < requests.size(); ++i) {
    const int64_t g = requests[i].num_samples, prompt = static_cast<int64_t>(requests[i].prompt_ids.size());
    const int64_t length = prompt + max_new;
    if (!budget.fits(g, length))
      throw MemoryBudgetExceeded(fmt::format(
          "rollout: request {} needs {} rows x {} positions (prompt {} + max_new_tokens {}) of KV cache at {} bytes per "
          "position = {}, over the memory budget of {}, which holds {} positions: at most {} rows of {} positions, or {} "
          "rows of {} positions",
          i, g, length, prompt, max_new, budget.bytes_per_token, format_bytes(g * length * budget.bytes_per_token),
          format_bytes(budget.budget_bytes), budget.positions(), budget.max_rows(length), length, g, budget.max_length(g)));
  }
}

// Writes each completion to its (request, sample) slot.
class CollectingSink : public GenerationSink {
 public:
  CollectingSink(std::vector<Completion>& out, const std::vector<int64_t>& first_output, const std::vector<PromptRequest>& requests)
      : out_(out), first_output_(first_output), requests_(requests) {}
  void on_completion(Completion c) override {
    const size_t slot = static_cast<size_t>(first_output_[c.request_index] + c.sample_index - requests_[c.request_index].first_sample);
    out_[slot] = std::move(c);
  }

 private:
  std::vector<Completion>& out_;
  const std::vector<int64_t>& first_output_;
  const std::vector<PromptRequest>& requests_;
};

// Puts the model in eval mode for its lifetime and restores training mode after, also when generation
// throws.
class EvalModeGuard {
 public:
  explicit EvalModeGuard(CausalLM& model) : model_(model), was_training_(model->is_training()) { model_->eval(); }
  ~EvalModeGuard() {
    if (was_training_) model_->train();
  }
  EvalModeGuard(const EvalModeGuard&) = delete;
  EvalModeGuard& operator=(const EvalModeGuard&) = delete;

 private:
  CausalLM& model_;
  bool was_training_;
};

}  // namespace

RolloutEngine::RolloutEngine(CausalLM model, const Tokenizer* tokenizer, RolloutOptions options)
    : model_(std::move(model)), tokenizer_(tokenizer), options_(std::move(options)) {
  if (!options_.stop.stop_strings.empty() && !tokenizer_)
    throw std::invalid_argument("rollout: stop strings need a tokenizer");
  if (options_.max_batch_rows < 1) throw std::invalid_argument("rollout: max_batch_rows must be >= 1");
  if (options_.stop.max_new_tokens < 1) throw std::invalid_argument("rollout: max_new_tokens must be >= 1");
}

std::vector<Completion> RolloutEngine::generate(const std::vector<PromptRequest>& requests) {
  stats_ = {};
  const ModelConfig& config = model_->config();
  check_requests(requests, config);
  const int64_t element_bytes = model_->model->embed_tokens->weight.element_size();
  check_budget(requests, {options_.memory_budget_bytes, cache_bytes_per_token(config, element_bytes)},
               options_.stop.max_new_tokens);

  c10::InferenceMode inference;
  EvalModeGuard eval(model_);
  // Every request with the engine's settings; completions land in (request, sample) order.
  std::vector<Completion> completions;
  std::vector<int64_t> first_output(requests.size() + 1, 0);
  for (size_t i = 0; i < requests.size(); ++i) first_output[i + 1] = first_output[i] + requests[i].num_samples;
  completions.resize(static_cast<size_t>(first_output.back()));
  auto sink = std::make_shared<CollectingSink>(completions, first_output, requests);
  DecodeBatch batch(model_, tokenizer_, options_, stats_);
  for (size_t i = 0; i < requests.size(); ++i)
    batch.enqueue({requests[i], options_.sampling, options_.stop, /*top_logprobs=*/0, /*stream=*/false, sink}, static_cast<int64_t>(i));
  Stopwatch phase;
  while (batch.has_work()) {
    batch.admit();   // waiting prompts into free rows: prefill, first tokens
    stats_.prefill_seconds += phase.restart();
    batch.step();    // one decode forward of the live rows
    batch.sample();  // their next tokens and behaviour log-probs
    batch.retire();  // finished rows out, completions emitted
    stats_.decode_seconds += phase.restart();
  }
  return completions;
}

}  // namespace grpo
