#pragma once
// AdamW for the policy, gradient-norm clipping and learning-rate updates: the three optimizer
// operations of a GRPO update, with the defaults GRPO runs use (verl actor: betas 0.9/0.999, weight
// decay 0.01, grad clip 1.0; DAPO's script: weight decay 0.1).
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace grpo {

struct AdamWSettings {
  double lr = 1e-6;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.01;
  // Hugging Face Trainer (hence TRL) exempts biases and norm weights (every parameter with fewer than
  // two dimensions) from weight decay; verl decays everything. Default: exempt, as TRL.
  bool decay_vectors = false;
};

// An AdamW over the given parameters, in two groups when decay_vectors is false: matrices (≥ 2-D) with
// weight_decay, vectors (< 2-D) without. Parameters with requires_grad == false are left out. Throws
// std::invalid_argument for lr < 0, betas outside [0, 1), eps <= 0 or weight_decay < 0.
std::unique_ptr<torch::optim::AdamW> make_adamw(const std::vector<torch::Tensor>& parameters,
                                                const AdamWSettings& settings);

// Scales all gradients so their global L2 norm is at most max_norm (torch::nn::utils::clip_grad_norm_)
// and returns the norm BEFORE clipping, the `grad_norm` every toolkit logs. A non-finite return means
// some gradient is NaN or inf: the gradients are then unusable and the caller must skip the step.
// max_norm <= 0 measures without clipping. Parameters without a gradient are ignored.
double clip_gradients(const std::vector<torch::Tensor>& parameters, double max_norm);

// Sets the learning rate of every parameter group (driven each step by learning_rate() of lr_schedule.h).
void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);

}  // namespace grpo
