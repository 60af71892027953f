#pragma once
// Several linear layers that read the same input (q/k/v projections, SwiGLU's gate and up), computed
// as one matrix product over their weights stacked by rows. One product of [N, in] x [in, sum out]
// instead of one per layer: the input is packed once, the BLAS call overhead is paid once, and at
// batch 8-256 the wider product runs closer to the GEMM peak.
//
// The layers stay what checkpoints and optimizers see (their parameters keep their Hugging Face names
// and shapes). Without autograd their parameters are views into one stacked [sum out, in] tensor (made
// at construction, made again when a parameter was given new storage, e.g. by Module::to), so in-place
// updates (optimizer steps, checkpoint loads, copy_weights) reach the stacked weight and no copy is
// made per call. With autograd the product runs over torch::cat of the weights, so each layer's weight
// gets its own gradient (the copy is small next to a training-sized product).
#include <torch/torch.h>

#include <memory>
#include <mutex>
#include <vector>

namespace grpo {

class FusedLinears {
 public:
  // Layers with the same input width, dtype and device; all with a bias or all without.
  explicit FusedLinears(std::vector<torch::nn::Linear> layers);

  // x: [..., in] -> [..., sum of out]: the layers' outputs side by side, in the order given.
  torch::Tensor forward(const torch::Tensor& x);
  // The layers' outputs as views of one forward: [..., out_i] each.
  std::vector<torch::Tensor> forward_split(const torch::Tensor& x);
  // The general path forward shortcuts: each layer's own product, concatenated. Parity test:
  // tests/policy_fast_paths.cpp ("fast path: fused linear layers").
  torch::Tensor forward_separately(const torch::Tensor& x) const;

  const std::vector<int64_t>& widths() const { return widths_; }

 private:
  // True when every layer's parameters are still the rows of stacked_weight_ (stacked_bias_).
  bool shares_storage() const;
  // Allocates the stacked tensors, copies the layers' current values in and makes each layer's
  // parameters views of its rows.
  void share_storage();

  std::vector<torch::nn::Linear> layers_;
  std::vector<int64_t> widths_;
  torch::Tensor stacked_weight_;  // [sum out, in]
  torch::Tensor stacked_bias_;    // [sum out] or undefined
  // Held while checking and remaking the sharing, so concurrent no-grad forwards of one model agree.
  std::shared_ptr<std::mutex> sharing_ = std::make_shared<std::mutex>();
};

}  // namespace grpo
