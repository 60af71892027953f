#include "rl/optimizer.h"

#include <cmath>
#include <stdexcept>

namespace grpo {

std::unique_ptr<torch::optim::AdamW> make_adamw(const std::vector<torch::Tensor>& parameters,
                                                const AdamWSettings& s) {
  auto fail = [](const std::string& what) { throw std::invalid_argument("AdamW settings: " + what); };
  if (!(s.lr >= 0)) fail("lr must be >= 0, got " + std::to_string(s.lr));
  if (!(s.beta1 >= 0 && s.beta1 < 1)) fail("beta1 must be in [0, 1), got " + std::to_string(s.beta1));
  if (!(s.beta2 >= 0 && s.beta2 < 1)) fail("beta2 must be in [0, 1), got " + std::to_string(s.beta2));
  if (!(s.eps > 0)) fail("eps must be > 0, got " + std::to_string(s.eps));
  if (!(s.weight_decay >= 0)) fail("weight_decay must be >= 0, got " + std::to_string(s.weight_decay));

  std::vector<torch::Tensor> decayed, exempt;
  for (const torch::Tensor& p : parameters) {
    if (!p.requires_grad()) continue;
    (s.decay_vectors || p.dim() >= 2 ? decayed : exempt).push_back(p);
  }
  auto options = [&](double weight_decay) {
    return torch::optim::AdamWOptions(s.lr)
        .betas(std::make_tuple(s.beta1, s.beta2))
        .eps(s.eps)
        .weight_decay(weight_decay);
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  if (!decayed.empty()) groups.emplace_back(decayed, std::make_unique<torch::optim::AdamWOptions>(options(s.weight_decay)));
  if (!exempt.empty()) groups.emplace_back(exempt, std::make_unique<torch::optim::AdamWOptions>(options(0.0)));
  return std::make_unique<torch::optim::AdamW>(groups, options(s.weight_decay));
}

double clip_gradients(const std::vector<torch::Tensor>& parameters, double max_norm) {
  if (max_norm > 0) return torch::nn::utils::clip_grad_norm_(parameters, max_norm);
  double squares = 0;
  for (const torch::Tensor& p : parameters)
    if (p.grad().defined()) squares += std::pow(p.grad().norm().item<double>(), 2);
  return std::sqrt(squares);
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (torch::optim::OptimizerParamGroup& group : optimizer.param_groups())
    group.options().set_lr(lr);
}

}  // namespace grpo
