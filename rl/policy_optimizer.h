#pragma once
// The optimizer a training loop holds: AdamW (rl/optimizer.h), over float32 master copies of the
// weights when the model computes in bf16 or f16 — mixed-precision training as Micikevicius et al.
// (2018) describe it and Megatron-LM and DeepSpeed run it ("main params"). An update of 1e-6 to a
// weight near 1 is far below half a bf16 ulp (2^-8): stepping bf16 weights directly would round most
// updates of a typical GRPO learning rate away. So the gradients the backward pass leaves on the bf16
// weights are copied into the masters' (float32) before they are all-reduced and clipped, AdamW steps
// the masters, and the model receives them rounded to its dtype. A float32 or float64 model is
// stepped directly, without copies.
//
//   optimizer.zero_grad();  ... backward ...
//   auto& grads = optimizer.gradients();        // all-reduce these (data parallel)
//   double norm = optimizer.clip_and_step(max_grad_norm, learning_rate);   // NaN/inf: skipped
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "rl/optimizer.h"

namespace grpo {

class PolicyOptimizer {
 public:
  // `parameters`: the model's; those with requires_grad == false are left out (as make_adamw does).
  PolicyOptimizer(const std::vector<torch::Tensor>& parameters, const AdamWSettings& settings);

  void zero_grad();
  // The tensors the step reads gradients from — the masters, with the model's gradients copied in,
  // or the model's parameters themselves. Gradients may be modified in place (all-reduce, clipping).
  const std::vector<torch::Tensor>& gradients();
  // AdamW step at `learning_rate`; with masters, the model's weights are then set from them.
  void step(double learning_rate);
  // The end of every training step (GRPO, SFT, pretraining): clips the gradients — gradients() as they
  // are now, all-reduced or not — to `max_grad_norm` (0 = measure only) and steps at `learning_rate`. A
  // non-finite norm (a NaN or inf gradient anywhere) skips the update and clears the gradients instead.
  // Returns the norm before clipping; a non-finite value means the update was skipped.
  double clip_and_step(double max_grad_norm, double learning_rate);

  bool has_master_weights() const { return !masters_.empty(); }
  const std::vector<torch::Tensor>& master_weights() const { return masters_; }  // empty without

  // optimizer.pt (AdamW moments and step counts) and, with masters, master_weights.pt, in `directory`.
  void save(const std::string& directory) const;
  // Restores what save wrote, with the zero gradients an uninterrupted run's zero_grad() would have left
  // (AdamW steps a parameter with a zero gradient, skips one without). Masters missing from the directory (a checkpoint of a float32 run) are
  // taken from the model's weights as they are now. Throws c10::Error when the state does not fit.
  void load(const std::string& directory);

 private:
  std::vector<torch::Tensor> model_;    // the trainable parameters of the model
  std::vector<torch::Tensor> masters_;  // float32 copies, one per model_ entry; empty without
  std::unique_ptr<torch::optim::AdamW> adamw_;
  bool gradients_copied_ = false;  // gradients() ran since the last zero_grad()
};

}  // namespace grpo
