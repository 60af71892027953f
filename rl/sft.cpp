#include "rl/sft.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include "policy/stopwatch.h"
#include "rl/epoch_shuffled_batches.h"

namespace grpo {

namespace {

// One example's columns, before they are placed in a row.
struct ExampleColumns {
  std::vector<int64_t> inputs, targets;
  std::vector<float> mask;
};

ExampleColumns columns_of(const SftExample& e, int64_t max_len, bool* truncated) {
  std::vector<int64_t> s(e.prompt_ids.begin(), e.prompt_ids.end());
  s.insert(s.end(), e.completion_ids.begin(), e.completion_ids.end());
  *truncated = static_cast<int64_t>(s.size()) > max_len + 1;
  if (*truncated) s.resize(static_cast<size_t>(max_len + 1));
  ExampleColumns c;
  const size_t prompt = e.prompt_ids.size();
  for (size_t j = 1; j < s.size(); ++j) {  // column j − 1 predicts token j
    c.inputs.push_back(s[j - 1]);
    c.targets.push_back(s[j]);
    const bool target = j >= prompt && (e.completion_mask.empty() || e.completion_mask[j - prompt]);
    c.mask.push_back(target ? 1.0f : 0.0f);
  }
  return c;
}

}  // namespace

SftBatch build_sft_batch(const std::vector<const SftExample*>& examples, int64_t max_len, bool pack, int32_t pad_id) {
  if (max_len < 1) throw std::invalid_argument(fmt::format("sft: max_len must be >= 1, got {}", max_len));
  SftBatch batch;
  std::vector<std::vector<ExampleColumns>> rows;
  std::vector<int64_t> row_width;
  for (const SftExample* e : examples) {
    if (e->completion_ids.empty()) throw std::invalid_argument("sft: an example has no completion tokens");
    if (!e->completion_mask.empty() && e->completion_mask.size() != e->completion_ids.size())
      throw std::invalid_argument(fmt::format("sft: an example has {} completion tokens but a completion_mask of {}",
                                              e->completion_ids.size(), e->completion_mask.size()));
    bool truncated = false;
    ExampleColumns c = columns_of(*e, max_len, &truncated);
    batch.truncated += truncated;
    if (std::accumulate(c.mask.begin(), c.mask.end(), 0.0f) == 0.0f) {
      ++batch.dropped;
      continue;
    }
    const int64_t width = static_cast<int64_t>(c.inputs.size());
    size_t row = rows.size();
    if (pack)  // first fit, in order
      for (size_t r = 0; r < rows.size(); ++r)
        if (row_width[r] + width <= max_len) {
          row = r;
          break;
        }
    if (row == rows.size()) {
      rows.emplace_back();
      row_width.push_back(0);
    }
    rows[row].push_back(std::move(c));
    row_width[row] += width;
  }
  const int64_t b = static_cast<int64_t>(rows.size());
  const int64_t t = rows.empty() ? 0 : *std::max_element(row_width.begin(), row_width.end());
  batch.input_ids = torch::full({b, t}, static_cast<int64_t>(pad_id), torch::kLong);
  batch.attention_mask = torch::zeros({b, t}, torch::kBool);
  batch.position_ids = torch::zeros({b, t}, torch::kLong);
  batch.targets = torch::zeros({b, t}, torch::kLong);
  batch.loss_mask = torch::zeros({b, t}, torch::kFloat);
  auto ids = batch.input_ids.accessor<int64_t, 2>();
  auto real = batch.attention_mask.accessor<bool, 2>();
  auto pos = batch.position_ids.accessor<int64_t, 2>();
  auto tgt = batch.targets.accessor<int64_t, 2>();
  auto mask = batch.loss_mask.accessor<float, 2>();
  for (int64_t r = 0; r < b; ++r) {
    int64_t col = 0;
    for (const ExampleColumns& c : rows[static_cast<size_t>(r)])
      for (size_t j = 0; j < c.inputs.size(); ++j, ++col) {
        ids[r][col] = c.inputs[j];
        real[r][col] = true;
        pos[r][col] = static_cast<int64_t>(j);
        tgt[r][col] = c.targets[j];
        mask[r][col] = c.mask[j];
      }
  }
  return batch;
}

MaskedTokenLoss completion_loss(CausalLM& model, const SftBatch& batch) {
  const torch::Device device = model->model->embed_tokens->weight.device();
  ModelInputs in;
  in.input_ids = batch.input_ids.to(device);
  in.attention_mask = batch.attention_mask.to(device);
  in.position_ids = batch.position_ids.to(device);
  torch::Tensor hidden = model->forward_hidden(in).hidden;  // [B, T, H]
  // Project only the positions that count: [N, H] -> [N, V], never the whole [B, T, V].
  torch::Tensor keep = batch.loss_mask.to(device) > 0;  // [B, T]
  torch::Tensor logits = model->logits(hidden.index({keep}));  // [N, V]
  if (logits.scalar_type() != torch::kDouble) logits = logits.to(torch::kFloat);  // bf16 -> float32 softmax
  torch::Tensor targets = batch.targets.to(device).index({keep});  // [N]
  MaskedTokenLoss loss;
  loss.tokens = targets.size(0);
  loss.sum = torch::nn::functional::cross_entropy(
      logits, targets, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
  return loss;
}

int64_t sft_steps(const SftConfig& config, size_t examples) {
  const int64_t n = static_cast<int64_t>(examples), per_epoch = (n + config.batch_size - 1) / std::max<int64_t>(1, config.batch_size);
  return config.steps > 0 ? config.steps : std::max<int64_t>(1, config.epochs) * std::max<int64_t>(1, per_epoch);
}

SftResult sft(CausalLM& model, const std::vector<SftExample>& examples, const SftConfig& config, int32_t pad_id,
              const std::function<void(const SftProgress&)>& on_step) {
  if (examples.empty()) throw std::invalid_argument("sft: no examples");
  if (config.batch_size < 1) throw std::invalid_argument(fmt::format("sft: batch_size must be >= 1, got {}", config.batch_size));
  const int64_t n = static_cast<int64_t>(examples.size());
  const int64_t steps = sft_steps(config, examples.size());
  LrSchedule schedule = config.lr;
  if (schedule.total_steps == 0) schedule.total_steps = std::max<int64_t>(steps, schedule.warmup_steps + 1);
  validate(schedule);
  AdamWSettings settings = config.adamw;
  settings.lr = schedule.peak;
  PolicyOptimizer optimizer(model->parameters(), settings);

  // A deterministic reshuffle at every epoch boundary, as the GRPO stage walks its prompts.
  EpochShuffledBatches walk(n, config.seed);

  SftResult result;
  result.steps = steps;
  const int64_t tail_from = steps - std::max<int64_t>(1, steps / 10);
  double tail_loss = 0;
  int64_t tail_steps = 0;
  model->train();
  for (int64_t step = 0; step < steps; ++step) {
    Stopwatch stopwatch;
    std::vector<const SftExample*> chosen;
    for (int64_t i : walk.next(config.batch_size)) chosen.push_back(&examples[static_cast<size_t>(i)]);
    SftBatch batch = build_sft_batch(chosen, config.max_len, config.pack, pad_id);
    result.truncated += batch.truncated;
    result.dropped += batch.dropped;
    SftProgress p;
    p.step = step;
    p.total_steps = steps;
    p.epoch = walk.epoch();
    p.learning_rate = learning_rate(schedule, step);
    optimizer.zero_grad();
    if (batch.input_ids.size(0) > 0) {
      MaskedTokenLoss loss = completion_loss(model, batch);
      torch::Tensor mean = loss.sum / static_cast<double>(loss.tokens);
      mean.backward();
      p.loss = mean.item<double>();
      p.completion_tokens = loss.tokens;
      p.grad_norm = optimizer.clip_and_step(config.max_grad_norm, p.learning_rate);
      p.skipped = !std::isfinite(p.grad_norm);
    } else {
      p.skipped = true;  // every example of the step was dropped
    }
    result.skipped_updates += p.skipped;
    result.completion_tokens += p.completion_tokens;
    if (step >= tail_from) {
      tail_loss += p.loss;
      ++tail_steps;
    }
    p.tokens_per_second = batch.attention_mask.sum().item<double>() / std::max(stopwatch.seconds(), 1e-9);
    if (on_step) on_step(p);
  }
  model->eval();
  result.final_loss = tail_loss / std::max<int64_t>(tail_steps, 1);
  return result;
}

}  // namespace grpo
