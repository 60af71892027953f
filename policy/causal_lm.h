#pragma once
// CausalLM: a decoder-only language model of any supported family (DeepSeek-V2/V3 with MLA and
// DeepSeekMoE, Qwen2, Llama). Module names reproduce transformers' state-dict names exactly
// ("model.layers.3.self_attn.kv_b_proj.weight", "lm_head.weight"), so a checkpoint maps 1:1.
#include <torch/torch.h>

#include "policy/decoder_layer.h"
#include "policy/forward_context.h"
#include "policy/kv_cache.h"
#include "policy/model_config.h"
#include "policy/moe_router.h"
#include "policy/rms_norm.h"

namespace grpo {

struct ModelInputs {
  torch::Tensor input_ids;       // [B, T] int64
  // [B, S] with S = cache length + T; 1 = real token, 0 = padding (left padding for generation).
  // Undefined = all real.
  torch::Tensor attention_mask;
  // [B, T] int64. Undefined = derived from attention_mask (count of real tokens before each one), so
  // a left-padded row's first real token gets position 0.
  torch::Tensor position_ids;
  KVCache* cache = nullptr;        // when set, the new positions are appended to it
  RoutingTrace* routing = nullptr; // MoE: record the experts chosen, or replay given ones
};

struct ModelOutputs {
  torch::Tensor hidden;    // [B, T, H] after the final norm
  torch::Tensor aux_loss;  // MoE sequence-wise balance loss (training mode, alpha > 0); else undefined
};

// The transformer body, registered as "model" (embed_tokens, layers.N, norm).
class TransformerImpl : public torch::nn::Module {
 public:
  explicit TransformerImpl(const ModelConfig& config);
  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  RMSNorm norm{nullptr};
  std::vector<DecoderLayer> decoder_layers;  // typed views of `layers`
};
TORCH_MODULE(Transformer);

class CausalLMImpl : public torch::nn::Module {
 public:
  // Allocates the model with transformers' initialisation: normal(0, initializer_range) for linear and
  // embedding weights, ones for norms, zeros for biases. Seed torch beforehand for reproducibility.
  explicit CausalLMImpl(const ModelConfig& config);

  const ModelConfig& config() const { return config_; }

  ModelOutputs forward_hidden(const ModelInputs& inputs);
  // Projects hidden states to vocabulary logits: [..., H] -> [..., V]. Separate from the body so a
  // trainer can project a few positions at a time and never hold [B, T, V].
  torch::Tensor logits(const torch::Tensor& hidden);
  torch::Tensor forward(const ModelInputs& inputs) { return logits(forward_hidden(inputs).hidden); }

  // A cache sized for this model.
  KVCache new_cache(int64_t batch, int64_t capacity) const;

  // MoE routers in layer order (empty for dense models): load counts and bias updates.
  std::vector<MoeRouter> routers() const;
  // Aux-loss-free balancing step on every router; see MoeRouterImpl::update_bias.
  void update_routing_biases(double gamma);

  Transformer model{nullptr};
  torch::nn::Linear lm_head{nullptr};  // unset when tie_word_embeddings

 private:
  void initialise_weights();
  ModelConfig config_;
  RotaryEmbedding rope_;  // angles for the whole forward, shared by every layer
};
TORCH_MODULE(CausalLM);

// A new model with the same config and a deep copy of every parameter and buffer (the reference model,
// snapshots). The copy lives on the same device and dtype and has no gradients.
CausalLM clone_weights(const CausalLM& model);
// Copies every parameter and buffer of `source` into `target` (same config), in place.
void copy_weights(const CausalLM& source, CausalLM& target);

}  // namespace grpo
