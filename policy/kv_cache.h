#pragma once
// KVCache: what incremental decoding keeps per layer so each new token attends to the past without
// recomputing it. GQA layers keep rotated keys and values per KV head; MLA layers keep only the
// normalised compressed latent c_kv and the shared rotated key k_pe (kv_lora_rank + qk_rope_head_dim
// values per token and layer, independent of the number of heads: the point of MLA), side by side in
// one [B, capacity, kv_lora_rank + qk_rope_head_dim] tensor, so that decoding scores its queries
// against the cache as it lies, with no per-step concatenation of the whole cache.
//
// Storage is preallocated for `capacity` positions and grows geometrically when exceeded. All rows
// share one length; rows of different prompt lengths are left-padded and masked by the caller's
// attention_mask, as in transformers. GQA entries are stored head-major, [B, n_kv, capacity, head_dim],
// so that each head's keys are one strided matrix that attention reads in place.
#include <torch/torch.h>

#include <vector>

#include "policy/model_config.h"

namespace grpo {

class KVCache {
 public:
  KVCache(const ModelConfig& config, int64_t batch, int64_t capacity, torch::TensorOptions options);

  int64_t batch() const { return batch_; }
  int64_t length() const { return length_; }  // positions cached so far
  int64_t capacity() const { return capacity_; }
  bool is_latent() const { return latent_; }

  // GQA: writes the T new keys and values of `layer`, given as [B, T, n_kv, head_dim], at positions
  // [length, length + T) and returns all cached ones as views [B, n_kv, S, head_dim], S = length + T.
  std::pair<torch::Tensor, torch::Tensor> append(int64_t layer, const torch::Tensor& keys, const torch::Tensor& values);
  // MLA: writes latent [B, T, kv_lora_rank] and rope key [B, T, qk_rope_head_dim] and returns all
  // cached positions as one view [B, S, kv_lora_rank + qk_rope_head_dim] (latent first).
  torch::Tensor append_latent(int64_t layer, const torch::Tensor& latent, const torch::Tensor& rope_key);
  // Commits the positions appended by every layer in this forward.
  void advance(int64_t new_tokens);

  // Keeps, repeats or reorders batch rows: row i of the result is row rows[i] of this cache. This is
  // how one prefilled prompt is shared by its G samples, and how finished samples leave the batch.
  void select_rows(const torch::Tensor& rows);
  // A deep copy (the cache is large: copying is explicit).
  KVCache clone() const;

  // Continuous batching keeps rows of different lengths in one cache, aligned on the right:
  // pad_front inserts n empty (to be masked) positions before every row's entries; trim_front drops
  // the first n positions once every row masks them; append_rows adds the rows of a cache of the same
  // length below these.
  void pad_front(int64_t n);
  void trim_front(int64_t n);
  void append_rows(const KVCache& other);

  int64_t bytes() const;                 // allocated storage
  int64_t bytes_per_token() const;       // per cached position of one row, all layers

 private:
  void grow(int64_t needed);
  // Checks layer and batch of an append of `entries` ([B, T, ...]) and grows the storage to fit it.
  void prepare_append(int64_t layer, const torch::Tensor& entries);

  int64_t batch_;
  int64_t capacity_;
  int64_t length_ = 0;
  bool latent_;
  int64_t latent_width_ = 0;  // MLA: kv_lora_rank, where the rope key starts in a stored row
  int64_t position_dim_;      // the storage dimension that indexes positions: 1 (MLA) or 2 (GQA)
  // What is stored, layer by layer: MLA one [B, capacity, d_c + d_r] tensor per layer; GQA two, keys
  // then values, each [B, n_kv, capacity, head_dim].
  std::vector<torch::Tensor> stored_;
};

}  // namespace grpo
