#include "policy/fused_linears.h"

#include "policy/projection.h"

namespace grpo {
namespace {

// `part` is rows [first, first + part.size(0)) of `stacked`, laid out as a contiguous block.
bool is_rows_of(const torch::Tensor& part, const torch::Tensor& stacked, int64_t first) {
  if (!part.defined() || !stacked.defined() || !part.is_alias_of(stacked) || !part.is_contiguous()) return false;
  const int64_t row = stacked.dim() == 2 ? stacked.size(1) : 1;
  return part.storage_offset() == stacked.storage_offset() + first * row;
}

}  // namespace

FusedLinears::FusedLinears(std::vector<torch::nn::Linear> layers) : layers_(std::move(layers)) {
  TORCH_CHECK(!layers_.empty(), "FusedLinears: no layers");
  const torch::Tensor& first = layers_.front()->weight;
  for (const torch::nn::Linear& layer : layers_) {
    TORCH_CHECK(layer->weight.size(1) == first.size(1), "FusedLinears: input widths differ (", layer->weight.size(1), " vs ",
                first.size(1), ")");
    TORCH_CHECK(layer->bias.defined() == layers_.front()->bias.defined(), "FusedLinears: some layers have a bias, some not");
    widths_.push_back(layer->weight.size(0));
  }
  share_storage();
}

bool FusedLinears::shares_storage() const {
  int64_t row = 0;
  for (const torch::nn::Linear& layer : layers_) {
    if (!is_rows_of(layer->weight, stacked_weight_, row)) return false;
    if (layer->bias.defined() && !is_rows_of(layer->bias, stacked_bias_, row)) return false;
    row += layer->weight.size(0);
  }
  return true;
}

void FusedLinears::share_storage() {
  // Normal (not inference) tensors without autograd history, whatever mode the caller runs in: the
  // parameters must stay usable for training.
  c10::InferenceMode normal_tensors(/*enabled=*/false);
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> weights, biases;
  for (const torch::nn::Linear& layer : layers_) {
    weights.push_back(layer->weight);
    if (layer->bias.defined()) biases.push_back(layer->bias);
  }
  stacked_weight_ = torch::cat(weights, 0);  // [sum out, in], a fresh contiguous copy
  stacked_bias_ = biases.empty() ? torch::Tensor() : torch::cat(biases, 0);
  int64_t row = 0;
  for (torch::nn::Linear& layer : layers_) {
    const int64_t out = layer->weight.size(0);
    layer->weight.set_data(stacked_weight_.narrow(0, row, out));
    if (layer->bias.defined()) layer->bias.set_data(stacked_bias_.narrow(0, row, out));
    row += out;
  }
}

torch::Tensor FusedLinears::forward(const torch::Tensor& x) {
  // Fast path (fused linear layers) for forward_separately: one product over the stacked weights.
  bool tracks_gradients = false;
  if (torch::GradMode::is_enabled())
    for (const torch::nn::Linear& layer : layers_) tracks_gradients = tracks_gradients || layer->weight.requires_grad();
  if (tracks_gradients) {
    // Each layer's weight and bias enter through cat, whose backward hands each its rows' gradient.
    std::vector<torch::Tensor> weights, biases;
    for (const torch::nn::Linear& layer : layers_) {
      weights.push_back(layer->weight);
      if (layer->bias.defined()) biases.push_back(layer->bias);
    }
    return project(x, torch::cat(weights, 0), biases.empty() ? torch::Tensor() : torch::cat(biases, 0));
  }
  torch::Tensor weight, bias;
  {
    std::lock_guard<std::mutex> lock(*sharing_);
    if (!shares_storage()) share_storage();
    weight = stacked_weight_;
    bias = stacked_bias_;
  }
  return project(x, weight, bias);
}

torch::Tensor FusedLinears::forward_separately(const torch::Tensor& x) const {
  std::vector<torch::Tensor> outputs;
  for (const torch::nn::Linear& layer : layers_) outputs.push_back(project(layer, x));
  return torch::cat(outputs, -1);
}

std::vector<torch::Tensor> FusedLinears::forward_split(const torch::Tensor& x) {
  // split rather than one narrow per layer: the backward of split joins the parts' gradients with one
  // cat, where each narrow's would fill a zero tensor of the whole output and the parts would be summed.
  return forward(x).split_with_sizes(widths_, -1);
}

}  // namespace grpo
