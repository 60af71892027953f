#include "rollout/rollout_engine.h"

#include <fmt/core.h>

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <stdexcept>

#include "policy/kv_cache.h"

namespace grpo {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// One sample being generated: a row of the decode batch.
struct Row {
  int64_t request = 0, sample = 0;
  uint64_t seed = 0;
  int64_t next_position = 0;  // position id of the next token fed to the model
  int32_t pending_token = 0;  // sampled, not yet fed
  std::vector<int32_t> completion;
  std::vector<float> logprobs;
  std::unique_ptr<CompletionText> text;
  // Experts per consumed position, [n_moe][position][k] flattened per layer.
  std::vector<std::vector<int64_t>> experts;
};

// The decode batch: rows, their shared cache and attention mask.
struct Batch {
  std::vector<Row> rows;
  std::optional<KVCache> cache;
  torch::Tensor mask;  // [R, S] bool, S = cache length
};

// Appends, for every row, the experts of the last `positions` consumed positions (columns of the
// recorded trace); `source_row[r]` is the trace row of batch row r.
void append_experts(std::vector<Row*>& rows, const RoutingTrace& trace, const std::vector<int64_t>& source_row,
                    int64_t first_column, int64_t positions) {
  for (size_t layer = 0; layer < trace.experts.size(); ++layer) {
    torch::Tensor e = trace.experts[layer].to(torch::kCPU).contiguous();  // [P, T, k]
    const int64_t t = e.size(1), k = e.size(2);
    const int64_t* data = e.data_ptr<int64_t>();
    for (size_t r = 0; r < rows.size(); ++r) {
      if (rows[r]->experts.size() < trace.experts.size()) rows[r]->experts.resize(trace.experts.size());
      const int64_t* row_data = data + (source_row[r] * t + first_column) * k;
      rows[r]->experts[layer].insert(rows[r]->experts[layer].end(), row_data, row_data + positions * k);
    }
  }
}

}  // namespace

RolloutEngine::RolloutEngine(CausalLM model, const Tokenizer* tokenizer, RolloutOptions options)
    : model_(std::move(model)), tokenizer_(tokenizer), options_(std::move(options)) {
  if (!options_.stop.stop_strings.empty() && !tokenizer_)
    throw std::invalid_argument("rollout: stop strings need a tokenizer");
  if (options_.max_batch_rows < 1) throw std::invalid_argument("rollout: max_batch_rows must be >= 1");
  if (options_.stop.max_new_tokens < 1) throw std::invalid_argument("rollout: max_new_tokens must be >= 1");
}

std::vector<Completion> RolloutEngine::generate(const std::vector<PromptRequest>& requests) {
  c10::InferenceMode inference;
  const bool was_training = model_->is_training();
  model_->eval();
  stats_ = {};
  const ModelConfig& config = model_->config();
  const bool record = options_.record_experts && config.has_moe();
  const int64_t k = config.moe.num_experts_per_tok;
  const auto device = model_->model->embed_tokens->weight.device();
  const auto bool_opts = torch::TensorOptions().dtype(torch::kBool).device(device);

  std::vector<int64_t> first_output(requests.size() + 1, 0);
  for (size_t i = 0; i < requests.size(); ++i) {
    const PromptRequest& r = requests[i];
    if (r.prompt_ids.empty()) throw std::invalid_argument(fmt::format("rollout: request {} has an empty prompt", i));
    if (r.num_samples < 1) throw std::invalid_argument(fmt::format("rollout: request {} asks for {} samples", i, r.num_samples));
    for (int32_t id : r.prompt_ids)
      if (id < 0 || id >= config.vocab_size)
        throw std::invalid_argument(fmt::format("rollout: request {} has token id {} outside the vocabulary [0, {})", i, id, config.vocab_size));
    first_output[i + 1] = first_output[i] + r.num_samples;
  }
  const int64_t max_new = options_.stop.max_new_tokens;
  const CacheBudget budget{options_.memory_budget_bytes,
                           cache_bytes_per_token(config, model_->model->embed_tokens->weight.element_size())};
  if (budget.budget_bytes > 0) {
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
  std::vector<Completion> out(static_cast<size_t>(first_output.back()));
  stats_.prompts = static_cast<int64_t>(requests.size());
  stats_.completions = first_output.back();

  Batch batch;
  std::deque<int64_t> waiting;
  for (size_t i = 0; i < requests.size(); ++i) waiting.push_back(static_cast<int64_t>(i));

  // Samples one token for every row from logits [R, V]; returns which rows finished.
  auto sample_rows = [&](std::vector<Row*>& rows, const torch::Tensor& logits) {
    std::vector<double> uniforms;
    for (Row* row : rows) uniforms.push_back(sampling_uniform(row->seed, static_cast<int64_t>(row->completion.size())));
    torch::Tensor tokens = sample_tokens(logits, uniforms, options_.sampling);
    torch::Tensor lps = sampled_token_logprobs(logits, tokens, options_.sampling).to(torch::kCPU).contiguous();
    tokens = tokens.to(torch::kCPU).contiguous();
    auto tokens_at = tokens.accessor<int64_t, 1>();
    auto lps_at = lps.accessor<float, 1>();
    std::vector<bool> finished(rows.size(), false);
    for (size_t r = 0; r < rows.size(); ++r) {
      Row& row = *rows[r];
      int32_t token = static_cast<int32_t>(tokens_at[r]);
      row.completion.push_back(token);
      row.logprobs.push_back(lps_at[r]);
      row.pending_token = token;
      std::optional<FinishReason> reason = row.text->push(token, static_cast<int64_t>(row.completion.size()));
      if (reason) {
        Completion& c = out[first_output[row.request] + row.sample];
        c.request_index = row.request;
        c.sample_index = requests[row.request].first_sample + row.sample;
        c.prompt_ids = requests[row.request].prompt_ids;
        c.completion_ids = std::move(row.completion);
        c.logprobs = std::move(row.logprobs);
        c.finish_reason = *reason;
        c.text = row.text->take_text();
        if (record) {
          const int64_t positions = static_cast<int64_t>(c.prompt_ids.size() + c.completion_ids.size()) - 1;
          c.experts = torch::empty({static_cast<int64_t>(row.experts.size()), positions, k}, torch::kLong);
          for (size_t l = 0; l < row.experts.size(); ++l)
            std::copy(row.experts[l].begin(), row.experts[l].end(), c.experts[l].data_ptr<int64_t>());
        }
        stats_.generated_tokens += static_cast<int64_t>(c.completion_ids.size());
        finished[r] = true;
      }
    }
    return finished;
  };

  // Keeps the rows not finished, in the cache, the mask and the row list.
  auto drop_finished = [&](const std::vector<bool>& finished) {
    std::vector<int64_t> keep;
    for (size_t r = 0; r < finished.size(); ++r)
      if (!finished[r]) keep.push_back(static_cast<int64_t>(r));
    if (keep.size() == finished.size()) return;
    std::vector<Row> rows;
    for (int64_t r : keep) rows.push_back(std::move(batch.rows[r]));
    batch.rows = std::move(rows);
    if (batch.rows.empty()) {
      batch.cache.reset();
      batch.mask = torch::Tensor();
      return;
    }
    torch::Tensor index = torch::tensor(keep, torch::kLong).to(device);
    batch.cache->select_rows(index);
    batch.mask = batch.mask.index_select(0, index);
    // Positions no remaining row attends to cost compute in every later step: drop them.
    torch::Tensor used = batch.mask.any(0).to(torch::kCPU);
    auto used_at = used.accessor<bool, 1>();
    int64_t leading = 0;
    while (leading < used.size(0) && !used_at[leading]) ++leading;
    if (leading > 0) {
      batch.cache->trim_front(leading);
      batch.mask = batch.mask.narrow(1, leading, batch.mask.size(1) - leading);
    }
  };

  // Prefills waiting prompts that fit and merges their samples into the batch.
  auto admit = [&] {
    std::vector<int64_t> admitted;
    int64_t rows = static_cast<int64_t>(batch.rows.size());
    const int64_t current = batch.cache ? batch.cache->length() : 0;
    const int64_t capacity = batch.cache ? batch.cache->capacity() : 0;
    int64_t longest = 0;
    while (!waiting.empty()) {
      const int64_t g = requests[waiting.front()].num_samples;
      const int64_t with = std::max<int64_t>(longest, static_cast<int64_t>(requests[waiting.front()].prompt_ids.size()));
      if (rows > 0 && rows + g > options_.max_batch_rows) break;  // an oversized group still runs alone
      // Merged, the cache must hold every row to its last token: the longer of the batch and the new
      // prompts, plus max_new_tokens. A lone group always fits (checked up front).
      if (budget.budget_bytes > 0 && rows > 0 && !budget.fits(rows + g, std::max(capacity, std::max(current, with) + max_new))) break;
      admitted.push_back(waiting.front());
      waiting.pop_front();
      rows += g;
      longest = with;
    }
    if (admitted.empty()) return;
    auto start = Clock::now();
    const int64_t p = static_cast<int64_t>(admitted.size());
    // Left-padded: every prompt ends in the last column.
    torch::Tensor ids = torch::zeros({p, longest}, torch::kLong);
    torch::Tensor mask = torch::zeros({p, longest}, torch::kBool);
    auto ids_at = ids.accessor<int64_t, 2>();
    auto mask_at = mask.accessor<bool, 2>();
    for (int64_t j = 0; j < p; ++j) {
      const std::vector<int32_t>& prompt = requests[admitted[j]].prompt_ids;
      const int64_t pad = longest - static_cast<int64_t>(prompt.size());
      for (size_t t = 0; t < prompt.size(); ++t) {
        ids_at[j][pad + static_cast<int64_t>(t)] = prompt[t];
        mask_at[j][pad + static_cast<int64_t>(t)] = true;
      }
      stats_.prompt_tokens += static_cast<int64_t>(prompt.size());
    }
    // Capacity for the merged batch, so that no row ever makes the cache grow.
    KVCache cache = model_->new_cache(p, std::max(current, longest) + max_new);
    RoutingTrace trace;
    ModelInputs in;
    in.input_ids = ids.to(device);
    in.attention_mask = mask.to(device);
    in.cache = &cache;
    if (record) in.routing = &trace;
    torch::Tensor last_logits = model_->forward(in).select(1, longest - 1);  // [P, V]

    // Copy each prompt's cache rows to its G samples.
    std::vector<int64_t> source;
    std::vector<Row> new_rows;
    for (int64_t j = 0; j < p; ++j) {
      const PromptRequest& r = requests[admitted[j]];
      for (int64_t s = 0; s < r.num_samples; ++s) {
        source.push_back(j);
        Row row;
        row.request = admitted[j];
        row.sample = s;
        row.seed = sample_seed(r.seed, r.first_sample + s);
        row.next_position = static_cast<int64_t>(r.prompt_ids.size());
        row.text = std::make_unique<CompletionText>(tokenizer_, &options_.stop);
        new_rows.push_back(std::move(row));
      }
    }
    torch::Tensor source_index = torch::tensor(source, torch::kLong).to(device);
    cache.select_rows(source_index);
    torch::Tensor new_mask = mask.to(device).index_select(0, source_index);
    torch::Tensor new_logits = last_logits.index_select(0, source_index);
    if (record) {
      for (size_t i = 0; i < new_rows.size(); ++i) {
        const int64_t len = static_cast<int64_t>(requests[new_rows[i].request].prompt_ids.size());
        std::vector<Row*> one = {&new_rows[i]};
        append_experts(one, trace, {source[i]}, longest - len, len);
      }
    }
    std::vector<Row*> ptrs;
    for (Row& row : new_rows) ptrs.push_back(&row);
    std::vector<bool> finished = sample_rows(ptrs, new_logits);

    // Right-align the new rows with the batch and merge.
    if (batch.cache) {
      const int64_t current = batch.cache->length();
      if (current > longest) {
        cache.pad_front(current - longest);
        new_mask = torch::cat({torch::zeros({new_mask.size(0), current - longest}, bool_opts), new_mask}, 1);
      } else if (longest > current) {
        batch.cache->pad_front(longest - current);
        batch.mask = torch::cat({torch::zeros({batch.mask.size(0), longest - current}, bool_opts), batch.mask}, 1);
      }
      batch.cache->append_rows(cache);
      batch.mask = torch::cat({batch.mask, new_mask}, 0);
    } else {
      batch.cache.emplace(std::move(cache));
      batch.mask = new_mask;
    }
    std::vector<bool> all_finished(batch.rows.size(), false);
    for (Row& row : new_rows) batch.rows.push_back(std::move(row));
    all_finished.insert(all_finished.end(), finished.begin(), finished.end());
    stats_.prefill_seconds += seconds_since(start);
    drop_finished(all_finished);
  };

  while (!waiting.empty() || !batch.rows.empty()) {
    admit();
    if (batch.rows.empty()) continue;
    auto start = Clock::now();
    const int64_t r = static_cast<int64_t>(batch.rows.size());
    stats_.peak_rows = std::max(stats_.peak_rows, r);
    stats_.peak_cache_bytes = std::max(stats_.peak_cache_bytes, batch.cache->bytes());
    std::vector<int64_t> ids(r), positions(r);
    for (int64_t i = 0; i < r; ++i) {
      ids[i] = batch.rows[i].pending_token;
      positions[i] = batch.rows[i].next_position++;
    }
    batch.mask = torch::cat({batch.mask, torch::ones({r, 1}, bool_opts)}, 1);
    RoutingTrace trace;
    ModelInputs in;
    in.input_ids = torch::tensor(ids, torch::kLong).view({r, 1}).to(device);
    in.position_ids = torch::tensor(positions, torch::kLong).view({r, 1}).to(device);
    in.attention_mask = batch.mask;
    in.cache = &*batch.cache;
    if (record) in.routing = &trace;
    torch::Tensor logits = model_->forward(in).select(1, 0);  // [R, V]
    std::vector<Row*> ptrs;
    std::vector<int64_t> identity;
    for (int64_t i = 0; i < r; ++i) {
      ptrs.push_back(&batch.rows[i]);
      identity.push_back(i);
    }
    if (record) append_experts(ptrs, trace, identity, 0, 1);
    std::vector<bool> finished = sample_rows(ptrs, logits);
    ++stats_.decode_steps;
    stats_.decode_seconds += seconds_since(start);
    drop_finished(finished);
  }
  if (was_training) model_->train();
  return out;
}

}  // namespace grpo
