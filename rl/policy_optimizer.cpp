#include "rl/policy_optimizer.h"

#include <cmath>
#include <filesystem>

namespace grpo {
namespace {

bool is_half_precision(const torch::Tensor& t) {
  return t.scalar_type() == torch::kBFloat16 || t.scalar_type() == torch::kHalf;
}

std::string master_name(size_t i) { return "master." + std::to_string(i); }

}  // namespace

PolicyOptimizer::PolicyOptimizer(const std::vector<torch::Tensor>& parameters, const AdamWSettings& settings) {
  for (const torch::Tensor& p : parameters)
    if (p.requires_grad()) model_.push_back(p);
  bool half = false;
  for (const torch::Tensor& p : model_) half = half || is_half_precision(p);
  if (half) {
    torch::NoGradGuard no_grad;
    for (const torch::Tensor& p : model_) masters_.push_back(p.detach().to(torch::kFloat, /*non_blocking=*/false, /*copy=*/true).requires_grad_(true));
  }
  adamw_ = make_adamw(half ? masters_ : model_, settings);
}

void PolicyOptimizer::zero_grad() {
  adamw_->zero_grad();
  gradients_copied_ = false;
  if (!has_master_weights()) return;
  for (torch::Tensor& p : model_)
    if (p.grad().defined()) p.mutable_grad().zero_();
}

const std::vector<torch::Tensor>& PolicyOptimizer::gradients() {
  if (!has_master_weights()) return model_;
  gradients_copied_ = true;
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < model_.size(); ++i) {
    const torch::Tensor& g = model_[i].grad();
    if (!g.defined()) continue;  // no backward reached it: the master keeps its own (zeroed or none)
    torch::Tensor& master_grad = masters_[i].mutable_grad();
    if (master_grad.defined())
      master_grad.copy_(g);
    else
      master_grad = g.to(torch::kFloat);
  }
  return masters_;
}

void PolicyOptimizer::step(double learning_rate) {
  set_learning_rate(*adamw_, learning_rate);
  adamw_->step();
  if (!has_master_weights()) return;
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < model_.size(); ++i) model_[i].copy_(masters_[i]);
}

double PolicyOptimizer::clip_and_step(double max_grad_norm, double learning_rate) {
  const std::vector<torch::Tensor>& grads = gradients_copied_ ? masters_ : gradients();
  const double norm = clip_gradients(grads, max_grad_norm);
  if (std::isfinite(norm))
    step(learning_rate);
  else
    zero_grad();
  return norm;
}

void PolicyOptimizer::save(const std::string& directory) const {
  torch::save(*adamw_, directory + "/optimizer.pt");
  if (!has_master_weights()) return;
  torch::serialize::OutputArchive archive;
  for (size_t i = 0; i < masters_.size(); ++i) archive.write(master_name(i), masters_[i].detach());
  archive.save_to(directory + "/master_weights.pt");
}

void PolicyOptimizer::load(const std::string& directory) {
  torch::load(*adamw_, directory + "/optimizer.pt");
  // zero_grad() leaves a zero gradient on every parameter that ever had one, and AdamW still steps
  // those (moments decay, weight decay applies) where a parameter without a gradient is skipped: MoE
  // experts that no token reached this step are the common case. The uninterrupted run had such zero
  // gradients exactly on the parameters that have optimizer state, so the resumed one gets them too.
  for (torch::optim::OptimizerParamGroup& group : adamw_->param_groups())
    for (torch::Tensor& p : group.params())
      if (!p.grad().defined() && adamw_->state().count(c10::guts::to_string(p.unsafeGetTensorImpl())))
        p.mutable_grad() = torch::zeros_like(p);
  if (!has_master_weights()) return;
  torch::NoGradGuard no_grad;
  const std::string path = directory + "/master_weights.pt";
  if (!std::filesystem::exists(path)) {
    for (size_t i = 0; i < masters_.size(); ++i) masters_[i].copy_(model_[i]);
    return;
  }
  torch::serialize::InputArchive archive;
  archive.load_from(path);
  for (size_t i = 0; i < masters_.size(); ++i) {
    torch::Tensor saved;
    archive.read(master_name(i), saved);
    TORCH_CHECK(saved.sizes() == masters_[i].sizes(), "master weight ", i, " has shape ", saved.sizes(), ", the model's ",
                masters_[i].sizes());
    masters_[i].copy_(saved);
  }
}

}  // namespace grpo
