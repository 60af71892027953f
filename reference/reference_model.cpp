#include "reference/reference_model.h"

#include "policy/checkpoint.h"

namespace grpo {

ReferenceModel::ReferenceModel(CausalLM model, torch::Device device) : model_(std::move(model)), device_(device) {
  model_->to(device_);
  model_->eval();
  for (torch::Tensor& p : model_->parameters()) p.set_requires_grad(false);
}

ReferenceModel ReferenceModel::copy_of(const CausalLM& policy, torch::Device device) {
  return ReferenceModel(clone_weights(policy), device);
}

ReferenceModel ReferenceModel::from_checkpoint(const std::string& directory, torch::Device device) {
  return ReferenceModel(load_checkpoint(directory), device);
}

torch::Tensor ReferenceModel::logprobs(const ModelInputs& inputs, int64_t first_position, const torch::Tensor& targets,
                                       const LogprobOptions& options) {
  torch::NoGradGuard no_grad;
  const auto home = inputs.input_ids.device();
  ModelInputs moved = inputs;
  moved.input_ids = inputs.input_ids.to(device_);
  if (inputs.attention_mask.defined()) moved.attention_mask = inputs.attention_mask.to(device_);
  if (inputs.position_ids.defined()) moved.position_ids = inputs.position_ids.to(device_);
  moved.cache = nullptr;
  moved.routing = nullptr;  // the reference routes with its own router, as it would when sampling
  torch::Tensor hidden = model_->forward_hidden(moved).hidden;
  hidden = hidden.narrow(1, first_position, targets.size(1));
  return logprobs_from_hidden(model_, hidden, targets.to(device_), options).to(home);
}

void ReferenceModel::reset_to(const CausalLM& policy) {
  copy_weights(policy, model_);
}

}  // namespace grpo
