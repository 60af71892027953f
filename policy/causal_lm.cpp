#include "policy/causal_lm.h"

#include <fmt/core.h>

#include "policy/cpu_allocator.h"
#include "policy/device.h"
#include "policy/projection.h"

namespace grpo {

TransformerImpl::TransformerImpl(const ModelConfig& c) {
  embed_tokens = register_module("embed_tokens", torch::nn::Embedding(c.vocab_size, c.hidden_size));
  layers = register_module("layers", torch::nn::ModuleList());
  int64_t moe_index = 0;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    decoder_layers.push_back(DecoderLayer(c, l, c.is_moe_layer(l) ? moe_index++ : -1));
    layers->push_back(decoder_layers.back());
  }
  norm = register_module("norm", RMSNorm(c.hidden_size, c.rms_norm_eps));
}

CausalLMImpl::CausalLMImpl(const ModelConfig& config) : config_(config), rope_(config.rope, config.rope_dim()) {
  retain_freed_cpu_memory();  // activations reuse freed memory instead of page-faulting on fresh blocks
  model = register_module("model", Transformer(config));
  if (!config.tie_word_embeddings)
    lm_head = register_module("lm_head", torch::nn::Linear(torch::nn::LinearOptions(config.hidden_size, config.vocab_size).bias(false)));
  initialise_weights();
}

void CausalLMImpl::initialise_weights() {
  torch::NoGradGuard no_grad;
  for (auto& item : named_parameters()) {
    const std::string& name = item.key();
    torch::Tensor& p = item.value();
    if (name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0)
      p.zero_();
    else if (p.dim() == 1)
      p.fill_(1.0);  // RMSNorm weights
    else
      p.normal_(0.0, config_.initializer_range);
  }
}

ModelOutputs CausalLMImpl::forward_hidden(const ModelInputs& in) {
  TORCH_CHECK(in.input_ids.dim() == 2, "input_ids must be [B, T], got ", in.input_ids.sizes());
  const int64_t b = in.input_ids.size(0), t = in.input_ids.size(1);
  const auto device = in.input_ids.device();
  ForwardContext ctx;
  ctx.cache = in.cache;
  ctx.past = in.cache ? in.cache->length() : 0;
  ctx.routing = in.routing;
  const int64_t s = ctx.past + t;
  if (in.cache) TORCH_CHECK(in.cache->batch() == b, "KV cache holds ", in.cache->batch(), " rows, input has ", b);

  torch::Tensor attention_mask = in.attention_mask.defined()
                                     ? in.attention_mask.to(device, torch::kBool)
                                     : torch::ones({b, s}, torch::TensorOptions().dtype(torch::kBool).device(device));
  TORCH_CHECK(attention_mask.size(0) == b && attention_mask.size(1) == s, "attention_mask must be [", b, ", ", s,
              "] (cached + new positions), got ", attention_mask.sizes());
  ctx.token_mask = attention_mask.narrow(1, ctx.past, t);

  torch::Tensor position_ids = in.position_ids;
  if (!position_ids.defined())
    position_ids = (attention_mask.to(torch::kLong).cumsum(1) - 1).clamp_min(0).narrow(1, ctx.past, t);

  // Future keys and padding, or for a decode step only padding, or nothing (see blocked_keys).
  ctx.blocked = blocked_keys(attention_mask, ctx.past, t);  // [B, 1, T, S] or undefined

  torch::Tensor h = model->embed_tokens(in.input_ids);  // [B, T, H]
  ctx.rope = rope_.angles(position_ids, h.scalar_type());
  for (DecoderLayer& layer : model->decoder_layers) h = layer(h, ctx);
  if (in.cache) in.cache->advance(t);
  return {model->norm(h), ctx.aux_loss};
}

torch::Tensor CausalLMImpl::logits(const torch::Tensor& hidden) {
  return project(hidden, lm_head ? lm_head->weight : model->embed_tokens->weight);
}

KVCache CausalLMImpl::new_cache(int64_t batch, int64_t capacity) const {
  const torch::Tensor& w = model->embed_tokens->weight;
  return KVCache(config_, batch, capacity, w.options().requires_grad(false));
}

std::vector<MoeRouter> CausalLMImpl::routers() const {
  std::vector<MoeRouter> out;
  for (const DecoderLayer& layer : model->decoder_layers)
    if (layer->moe) out.push_back(layer->moe->gate);
  return out;
}

void CausalLMImpl::update_routing_biases(double gamma) {
  for (MoeRouter& router : routers()) router->update_bias(gamma);
}

}  // namespace grpo

namespace grpo {

void copy_weights(const CausalLM& source, CausalLM& target) {
  torch::NoGradGuard no_grad;
  auto from_params = source->named_parameters();
  for (auto& item : target->named_parameters()) item.value().copy_(*from_params.find(item.key()));
  auto from_buffers = source->named_buffers();
  for (auto& item : target->named_buffers()) item.value().copy_(*from_buffers.find(item.key()));
}

CausalLM clone_weights(const CausalLM& model) {
  CausalLM copy(model->config());
  const torch::Tensor& w = model->model->embed_tokens->weight;
  place_model(copy, {w.device(), w.scalar_type()});  // with the MoE correction biases in float32, as placed
  copy_weights(model, copy);
  return copy;
}

}  // namespace grpo
