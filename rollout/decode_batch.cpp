#include "rollout/decode_batch.h"

#include <limits>

#include <algorithm>
#include <utility>

#include "rollout/sampling.h"

namespace grpo {
namespace {

// The k likeliest tokens of one row of logits [V] under the same tempered distribution as the
// reported log-probs (sampled_token_logprobs), most likely first.
std::vector<TokenLogprob> top_alternatives(const torch::Tensor& logits, const SamplingParams& params, int64_t k) {
  torch::Tensor scaled = logits.to(torch::kFloat);
  if (!params.greedy() && params.temperature != 1.0) scaled = scaled / params.temperature;
  auto [values, ids] = torch::log_softmax(scaled, -1).topk(std::min<int64_t>(k, scaled.size(-1)));
  values = values.to(torch::kCPU).contiguous();
  ids = ids.to(torch::kCPU).contiguous();
  std::vector<TokenLogprob> out;
  for (int64_t i = 0; i < values.size(0); ++i)
    out.push_back({static_cast<int32_t>(ids[i].item<int64_t>()), values[i].item<float>()});
  return out;
}

}  // namespace

DecodeBatch::DecodeBatch(CausalLM model, const Tokenizer* tokenizer, const RolloutOptions& options, RolloutStats& stats)
    : model_(std::move(model)),
      tokenizer_(tokenizer),
      options_(options),
      stats_(stats),
      record_(options.record_experts && model_->config().has_moe()),
      device_(model_->model->embed_tokens->weight.device()),
      budget_{options.memory_budget_bytes,
              cache_bytes_per_token(model_->config(), model_->model->embed_tokens->weight.element_size())} {}

void DecodeBatch::enqueue(GenerationRequest request, int64_t index) {
  auto entry = std::make_shared<Entry>();
  entry->request = std::move(request);
  entry->index = index;
  waiting_.push_back(std::move(entry));
  stats_.prompts += 1;
  stats_.completions += waiting_.back()->request.prompt.num_samples;
}

std::vector<std::shared_ptr<DecodeBatch::Entry>> DecodeBatch::take_admissible(int64_t& longest, int64_t& longest_new) {
  std::vector<std::shared_ptr<Entry>> admitted;
  int64_t rows = static_cast<int64_t>(rows_.size());
  const int64_t current = cache_ ? cache_->length() : 0;
  const int64_t capacity = cache_ ? cache_->capacity() : 0;
  longest = 0;
  longest_new = 0;
  while (!waiting_.empty()) {
    if (waiting_.front()->request.sink->cancelled()) {
      waiting_.pop_front();
      continue;
    }
    const GenerationRequest& next = waiting_.front()->request;
    const int64_t g = next.prompt.num_samples;
    const int64_t with = std::max<int64_t>(longest, static_cast<int64_t>(next.prompt.prompt_ids.size()));
    const int64_t with_new = std::max(longest_new, next.stop.max_new_tokens);
    if (rows > 0 && rows + g > options_.max_batch_rows) break;  // an oversized group still runs alone
    // Merged, the cache must hold every row to its last token: the longer of the batch and the new
    // prompts, plus max_new_tokens. A lone group always fits (generate checks that up front).
    const int64_t merged_length = std::max(capacity, std::max(current, with) + with_new);
    if (budget_.budget_bytes > 0 && rows > 0 && !budget_.fits(rows + g, merged_length)) break;
    admitted.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
    rows += g;
    longest = with;
    longest_new = with_new;
  }
  return admitted;
}

void DecodeBatch::admit() {
  int64_t longest = 0, longest_new = 0;
  const std::vector<std::shared_ptr<Entry>> admitted = take_admissible(longest, longest_new);
  if (admitted.empty()) return;
  const int64_t p = static_cast<int64_t>(admitted.size());
  // Left-padded: every prompt ends in the last column.
  torch::Tensor ids = torch::zeros({p, longest}, torch::kLong);    // [P, L]
  torch::Tensor mask = torch::zeros({p, longest}, torch::kBool);  // [P, L]
  auto ids_at = ids.accessor<int64_t, 2>();
  auto mask_at = mask.accessor<bool, 2>();
  for (int64_t j = 0; j < p; ++j) {
    const std::vector<int32_t>& prompt = admitted[j]->request.prompt.prompt_ids;
    const int64_t pad = longest - static_cast<int64_t>(prompt.size());
    for (size_t t = 0; t < prompt.size(); ++t) {
      ids_at[j][pad + static_cast<int64_t>(t)] = prompt[t];
      mask_at[j][pad + static_cast<int64_t>(t)] = true;
    }
    stats_.prompt_tokens += static_cast<int64_t>(prompt.size());
  }
  // Capacity for the merged batch, so that no row ever makes the cache grow.
  const int64_t current = cache_ ? cache_->length() : 0;
  KVCache cache = model_->new_cache(p, std::max(current, longest) + longest_new);
  RoutingTrace trace;
  ModelInputs in;
  in.input_ids = ids.to(device_);
  in.attention_mask = mask.to(device_);
  in.cache = &cache;
  if (record_) in.routing = &trace;
  torch::Tensor last_logits = model_->forward(in).select(1, longest - 1);  // [P, V]

  // Each prompt's G samples share its prefill: its cache rows are copied to them.
  std::vector<int64_t> source;  // prompt (row of the prefill) of each new row
  std::vector<Row> new_rows;
  for (int64_t j = 0; j < p; ++j) {
    const PromptRequest& r = admitted[j]->request.prompt;
    for (int64_t s = 0; s < r.num_samples; ++s) {
      source.push_back(j);
      Row row;
      row.entry = admitted[j];
      row.sample = s;
      row.seed = sample_seed(r.seed, r.first_sample + s);
      row.next_position = static_cast<int64_t>(r.prompt_ids.size());
      row.text = std::make_unique<CompletionText>(tokenizer_, &admitted[j]->request.stop);
      new_rows.push_back(std::move(row));
    }
  }
  torch::Tensor source_index = torch::tensor(source, torch::kLong).to(device_);
  cache.select_rows(source_index);
  torch::Tensor new_mask = mask.to(device_).index_select(0, source_index);  // [R', L]
  torch::Tensor new_logits = last_logits.index_select(0, source_index);     // [R', V]
  if (record_) {
    // The prompt occupies the last `len` columns of its prefill row.
    std::vector<int64_t> first, count;
    for (const Row& row : new_rows) {
      const int64_t len = static_cast<int64_t>(row.entry->request.prompt.prompt_ids.size());
      first.push_back(longest - len);
      count.push_back(len);
    }
    append_experts(new_rows, trace, source, first, count);
  }
  sample_rows(new_rows, new_logits);
  merge(new_rows, std::move(cache), new_mask);
  retire();
}

void DecodeBatch::step() {
  if (rows_.empty()) return;
  const int64_t r = static_cast<int64_t>(rows_.size());
  stats_.peak_rows = std::max(stats_.peak_rows, r);
  stats_.peak_cache_bytes = std::max(stats_.peak_cache_bytes, cache_->bytes());
  std::vector<int64_t> ids(r), positions(r);
  for (int64_t i = 0; i < r; ++i) {
    ids[i] = rows_[i].pending_token;
    positions[i] = rows_[i].next_position++;
  }
  mask_ = torch::cat({mask_, torch::ones({r, 1}, torch::TensorOptions().dtype(torch::kBool).device(device_))}, 1);
  RoutingTrace trace;
  ModelInputs in;
  in.input_ids = torch::tensor(ids, torch::kLong).view({r, 1}).to(device_);
  in.position_ids = torch::tensor(positions, torch::kLong).view({r, 1}).to(device_);
  in.attention_mask = mask_;
  in.cache = &*cache_;
  if (record_) in.routing = &trace;
  logits_ = model_->forward(in).select(1, 0);  // [R, V]
  if (record_) {
    std::vector<int64_t> identity(static_cast<size_t>(r));
    for (int64_t i = 0; i < r; ++i) identity[i] = i;
    append_experts(rows_, trace, identity, std::vector<int64_t>(r, 0), std::vector<int64_t>(r, 1));
  }
  ++stats_.decode_steps;
}

void DecodeBatch::sample() {
  if (!logits_.defined()) return;
  sample_rows(rows_, logits_);
  logits_ = torch::Tensor();
}

void DecodeBatch::retire() {
  std::vector<int64_t> keep;
  for (size_t r = 0; r < rows_.size(); ++r) {
    if (rows_[r].entry->request.sink->cancelled()) continue;  // leaves without a completion
    if (rows_[r].finish)
      emit(rows_[r]);
    else
      keep.push_back(static_cast<int64_t>(r));
  }
  if (keep.size() == rows_.size()) return;
  std::vector<Row> rows;
  for (int64_t r : keep) rows.push_back(std::move(rows_[r]));
  rows_ = std::move(rows);
  if (rows_.empty()) {
    cache_.reset();
    mask_ = torch::Tensor();
    return;
  }
  torch::Tensor index = torch::tensor(keep, torch::kLong).to(device_);
  cache_->select_rows(index);
  mask_ = mask_.index_select(0, index);
  // Positions no remaining row attends to cost compute in every later step: drop them.
  torch::Tensor used = mask_.any(0).to(torch::kCPU);
  auto used_at = used.accessor<bool, 1>();
  int64_t leading = 0;
  while (leading < used.size(0) && !used_at[leading]) ++leading;
  if (leading > 0) {
    cache_->trim_front(leading);
    mask_ = mask_.narrow(1, leading, mask_.size(1) - leading);
  }
}

void DecodeBatch::sample_rows(std::vector<Row>& rows, const torch::Tensor& logits) {
  // Counter-based randomness: a row's uniform depends on its seed and token index alone.
  std::vector<double> uniforms;
  for (const Row& row : rows)
    uniforms.push_back(sampling_uniform(row.seed, static_cast<int64_t>(row.completion.size())));
  // Ids past the tokenizer's vocabulary (embeddings padded to a round size, as Qwen's are) decode to
  // nothing: they are never sampled. Their log-probs stay in the reported ones' normaliser, which is
  // the trainer's log_softmax over the whole vocabulary (the padded rows' mass is what training sees).
  torch::Tensor allowed = logits;
  if (tokenizer_ && tokenizer_->vocab_size() < logits.size(-1)) {
    allowed = logits.clone();
    allowed.narrow(-1, tokenizer_->vocab_size(), logits.size(-1) - tokenizer_->vocab_size()).fill_(-std::numeric_limits<float>::infinity());
  }
  // Rows are sampled in groups of equal sampling parameters; one group (every row of generate()) is
  // sampled in one call on the logits as they are. Every operation of sampling works row by row, so
  // a row's token and log-prob do not depend on the other rows of its group.
  const int64_t n = static_cast<int64_t>(rows.size());
  std::vector<int64_t> group_of(static_cast<size_t>(n), -1);
  std::vector<int64_t> leaders;  // first row of each group
  for (int64_t r = 0; r < n; ++r) {
    const SamplingParams& p = rows[r].entry->request.sampling;
    for (int64_t g = 0; g < static_cast<int64_t>(leaders.size()) && group_of[r] < 0; ++g) {
      const SamplingParams& q = rows[leaders[g]].entry->request.sampling;
      if (p.temperature == q.temperature && p.top_k == q.top_k && p.top_p == q.top_p && p.min_p == q.min_p) group_of[r] = g;
    }
    if (group_of[r] < 0) {
      group_of[r] = static_cast<int64_t>(leaders.size());
      leaders.push_back(r);
    }
  }
  std::vector<int64_t> tokens(static_cast<size_t>(n));
  std::vector<float> lps(static_cast<size_t>(n));
  for (int64_t g = 0; g < static_cast<int64_t>(leaders.size()); ++g) {
    const SamplingParams& params = rows[leaders[g]].entry->request.sampling;
    std::vector<int64_t> members;
    std::vector<double> group_uniforms;
    for (int64_t r = 0; r < n; ++r)
      if (group_of[r] == g) members.push_back(r), group_uniforms.push_back(uniforms[r]);
    torch::Tensor group_allowed = allowed, group_logits = logits;
    if (leaders.size() > 1) {
      torch::Tensor index = torch::tensor(members, torch::kLong).to(logits.device());
      group_allowed = allowed.index_select(0, index);
      group_logits = logits.index_select(0, index);
    }
    torch::Tensor t = sample_tokens(group_allowed, group_uniforms, params);
    torch::Tensor lp = sampled_token_logprobs(group_logits, t, params).to(torch::kCPU).contiguous();  // [R_g]
    t = t.to(torch::kCPU).contiguous();                                                               // [R_g]
    auto t_at = t.accessor<int64_t, 1>();
    auto lp_at = lp.accessor<float, 1>();
    for (size_t m = 0; m < members.size(); ++m) {
      tokens[members[m]] = t_at[static_cast<int64_t>(m)];
      lps[members[m]] = lp_at[static_cast<int64_t>(m)];
    }
  }
  for (int64_t r = 0; r < n; ++r) {
    Row& row = rows[r];
    const GenerationRequest& request = row.entry->request;
    const int32_t token = static_cast<int32_t>(tokens[r]);
    row.completion.push_back(token);
    row.logprobs.push_back(lps[r]);
    row.pending_token = token;
    row.finish = row.text->push(token, static_cast<int64_t>(row.completion.size()));
    if (request.top_logprobs > 0) row.top_logprobs.push_back(top_alternatives(logits[r], request.sampling, request.top_logprobs));
    if (request.stream) {
      SampledToken event;
      event.sample_index = request.prompt.first_sample + row.sample;
      event.token = token;
      event.logprob = lps[r];
      if (request.top_logprobs > 0) event.top = row.top_logprobs.back();
      event.text = row.text->take_delta();
      request.sink->on_token(event);
    }
  }
}

void DecodeBatch::append_experts(std::vector<Row>& rows, const RoutingTrace& trace,
                                 const std::vector<int64_t>& source, const std::vector<int64_t>& first,
                                 const std::vector<int64_t>& count) const {
  for (size_t layer = 0; layer < trace.experts.size(); ++layer) {
    torch::Tensor e = trace.experts[layer].to(torch::kCPU).contiguous();  // [P, T, k]
    const int64_t t = e.size(1), k = e.size(2);
    const int64_t* data = e.data_ptr<int64_t>();
    for (size_t r = 0; r < rows.size(); ++r) {
      if (rows[r].experts.size() < trace.experts.size()) rows[r].experts.resize(trace.experts.size());
      const int64_t* row_data = data + (source[r] * t + first[r]) * k;
      rows[r].experts[layer].insert(rows[r].experts[layer].end(), row_data, row_data + count[r] * k);
    }
  }
}

void DecodeBatch::merge(std::vector<Row>& rows, KVCache cache, torch::Tensor mask) {
  if (cache_) {
    const auto bool_opts = torch::TensorOptions().dtype(torch::kBool).device(device_);
    const int64_t current = cache_->length(), incoming = cache.length();
    if (current > incoming) {
      cache.pad_front(current - incoming);
      mask = torch::cat({torch::zeros({mask.size(0), current - incoming}, bool_opts), mask}, 1);
    } else if (incoming > current) {
      cache_->pad_front(incoming - current);
      mask_ = torch::cat({torch::zeros({mask_.size(0), incoming - current}, bool_opts), mask_}, 1);
    }
    cache_->append_rows(cache);
    mask_ = torch::cat({mask_, mask}, 0);
  } else {
    cache_.emplace(std::move(cache));
    mask_ = mask;
  }
  for (Row& row : rows) rows_.push_back(std::move(row));
}

void DecodeBatch::emit(Row& row) {
  const PromptRequest& request = row.entry->request.prompt;
  Completion c;
  c.request_index = row.entry->index;
  c.sample_index = request.first_sample + row.sample;
  c.prompt_ids = request.prompt_ids;
  c.completion_ids = std::move(row.completion);
  c.logprobs = std::move(row.logprobs);
  c.top_logprobs = std::move(row.top_logprobs);
  c.finish_reason = *row.finish;
  c.text = row.text->take_text();
  if (record_) {
    const int64_t k = model_->config().moe.num_experts_per_tok;
    const int64_t positions = static_cast<int64_t>(c.prompt_ids.size() + c.completion_ids.size()) - 1;
    c.experts = torch::empty({static_cast<int64_t>(row.experts.size()), positions, k}, torch::kLong);
    for (size_t l = 0; l < row.experts.size(); ++l)
      std::copy(row.experts[l].begin(), row.experts[l].end(), c.experts[l].data_ptr<int64_t>());
  }
  stats_.generated_tokens += static_cast<int64_t>(c.completion_ids.size());
  row.entry->request.sink->on_completion(std::move(c));
}

void DecodeBatch::fail_all(const std::string& message) {
  std::vector<std::shared_ptr<Entry>> failed(waiting_.begin(), waiting_.end());
  for (const Row& row : rows_)
    if (std::find(failed.begin(), failed.end(), row.entry) == failed.end()) failed.push_back(row.entry);
  waiting_.clear();
  rows_.clear();
  cache_.reset();
  mask_ = torch::Tensor();
  logits_ = torch::Tensor();
  for (const std::shared_ptr<Entry>& entry : failed) entry->request.sink->on_error(message);
}

}  // namespace grpo
