#include "rl/pretrain.h"

#include <random>
#include <stdexcept>

#include "policy/stopwatch.h"

namespace grpo {

double pretrain(CausalLM& model, const Tokenizer& tokenizer, const std::vector<std::string>& documents,
                const PretrainConfig& config, const std::function<void(const PretrainProgress&)>& on_step) {
  std::vector<int64_t> stream;
  for (const std::string& doc : documents) {
    if (tokenizer.bos_id() >= 0) stream.push_back(tokenizer.bos_id());
    for (int32_t id : tokenizer.encode(doc, /*allow_special=*/false)) stream.push_back(id);
    if (tokenizer.eos_id() >= 0) stream.push_back(tokenizer.eos_id());
  }
  const int64_t window = config.seq_len + 1;
  if (static_cast<int64_t>(stream.size()) < window)
    throw std::invalid_argument("pretrain: the documents hold fewer tokens than one training window (seq_len + 1)");
  const torch::Device device = model->model->embed_tokens->weight.device();
  torch::Tensor all = torch::tensor(stream, torch::kLong);

  validate(config.lr);
  AdamWSettings settings = config.adamw;
  settings.lr = config.lr.peak;
  PolicyOptimizer optimizer(model->parameters(), settings);
  std::mt19937_64 rng(config.seed);
  std::uniform_int_distribution<int64_t> start(0, static_cast<int64_t>(stream.size()) - window);
  model->train();
  double tail_loss = 0;
  int64_t tail_steps = 0;
  for (int64_t step = 0; step < config.steps; ++step) {
    Stopwatch stopwatch;
    std::vector<torch::Tensor> rows;
    for (int64_t b = 0; b < config.batch_size; ++b) rows.push_back(all.narrow(0, start(rng), window));
    torch::Tensor batch = torch::stack(rows).to(device);  // [B, seq_len + 1]
    ModelInputs in;
    in.input_ids = batch.narrow(1, 0, config.seq_len);
    ModelOutputs out = model->forward_hidden(in);
    torch::Tensor logits = model->logits(out.hidden).to(torch::kFloat);
    torch::Tensor loss = torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}),
                                                              batch.narrow(1, 1, config.seq_len).reshape({-1}));
    torch::Tensor total = out.aux_loss.defined() ? loss + out.aux_loss : loss;
    optimizer.zero_grad();
    total.backward();
    const double rate = learning_rate(config.lr, step);
    const double grad_norm = optimizer.clip_and_step(config.max_grad_norm, rate);  // non-finite: skipped
    const double value = loss.item<double>();
    if (step >= config.steps - std::max<int64_t>(1, config.steps / 10)) {
      tail_loss += value;
      ++tail_steps;
    }
    if (on_step) {
      on_step({step, value, grad_norm, rate, config.batch_size * config.seq_len / stopwatch.seconds()});
    }
  }
  model->eval();
  return tail_loss / std::max<int64_t>(tail_steps, 1);
}

}  // namespace grpo
