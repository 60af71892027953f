#pragma once
// The routed experts of one DeepSeekMoE layer run on the tokens routed to them, three ways that give
// the same result (and, through autograd, the same gradients):
//
//   Loop      one expert at a time: gather its tokens, SwiGLU, scale, index_add. The reference path;
//             about 8 ops per expert forward and twice that backward, which bounds a small MoE.
//   Padded    every expert at once: the (token, slot) pairs sorted by expert are laid out as
//             [E_active, capacity, H] (capacity = the busiest expert's count, short experts padded
//             with a copy of token 0 whose outputs are dropped), and gate/up and down are two bmm over
//             stacked expert weights [E_active, 2I, H] and [E_active, H, I]. A constant number of ops,
//             paying for the padding rows and for stacking the weights each forward.
//   Segments  one gather of the sorted pairs [M, H]; each expert's gate, up and down products are a
//             matmul on its contiguous segment; SwiGLU, the gate weights and the combine run once on
//             all M rows. 3 ops per expert, no padding and no weight copy.
//
// Whichever path runs, each token's weighted expert outputs are summed into the result by one
// index_add in expert order, and an expert that receives no real token is left out entirely: its
// weights are not touched, so it gets no gradient (not a zero one that AdamW would still step).
#include <torch/torch.h>

#include <string>
#include <vector>

#include "policy/swiglu_mlp.h"

namespace grpo {

enum class ExpertPath { Loop, Padded, Segments, Auto };
// Auto, the path DeepSeekMoE layers take unless told otherwise, picks by what bench_moe_experts
// measured here at the tiny, small and R1-Zero sizes (docs/policy.md, "Grouped MoE experts"): with
// autograd (a training batch, both paths bound by the gemms) the loop, which segments never beat
// clearly and the tiny model's layer ran up to 2.7x slower on; without autograd (decoding, reference
// log-probs) segments, 1.1-1.5x faster at batches of 8-64 with fewer ops. Padded bmm loses at every
// size but the smallest batches (LibTorch's CPU bmm, stacking the weights, the padding rows).
constexpr ExpertPath kDefaultExpertPath = ExpertPath::Auto;
// The path new DeepSeekMoE layers start on: the environment variable GRPO_MOE_EXPERTS (loop, padded or
// segments or auto) when set, so that a whole run can be timed or checked on another path, else the default.
// A bad value is an error naming the variable.
ExpertPath initial_expert_path();

// "loop", "padded", "segments", "auto"; anything else is an error naming the accepted values.
ExpertPath parse_expert_path(const std::string& name);
const char* expert_path_name(ExpertPath path);

// The (token, slot) pairs of a batch grouped by expert, padding left out.
struct ExpertDispatch {
  torch::Tensor token_of_slot;   // [M] int64: the token of each real pair, sorted by expert
  torch::Tensor weight_of_slot;  // [M]: the pair's gate weight
  std::vector<int64_t> counts;   // [E]: pairs per expert; sum = M
};

// experts, weights: [N, top_k] from the router; valid: [N] bool (real tokens) or undefined (all real).
ExpertDispatch dispatch_by_expert(const torch::Tensor& experts, const torch::Tensor& weights,
                                  const torch::Tensor& valid, int64_t n_experts);

// Σ over each token's pairs of weight · Expert_e(x_token), as [N, H] (zero for tokens with no pair).
// x: [N, H]. `experts` holds the layer's E routed experts, in expert-index order. Auto resolves as
// kDefaultExpertPath describes.
torch::Tensor run_routed_experts(ExpertPath path, const torch::Tensor& x, const ExpertDispatch& dispatch,
                                 const std::vector<SwiGluMlp>& experts);

}  // namespace grpo
