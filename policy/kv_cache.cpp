#include "policy/kv_cache.h"

namespace grpo {
namespace {

std::vector<int64_t> with_length(const torch::Tensor& t, int64_t dim, int64_t length) {
  std::vector<int64_t> shape = t.sizes().vec();
  shape[dim] = length;
  return shape;
}

}  // namespace

KVCache::KVCache(const ModelConfig& config, int64_t batch, int64_t capacity, torch::TensorOptions options)
    : batch_(batch), capacity_(std::max<int64_t>(capacity, 1)), latent_(config.uses_mla()), position_dim_(latent_ ? 1 : 2) {
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    if (latent_) {
      latent_width_ = config.mla.kv_lora_rank;
      stored_.push_back(torch::zeros({batch, capacity_, config.mla.kv_lora_rank + config.mla.qk_rope_head_dim}, options));
    } else {
      for (int i = 0; i < 2; ++i)
        stored_.push_back(torch::zeros({batch, config.num_key_value_heads, capacity_, config.head_dim}, options));
    }
  }
}

void KVCache::grow(int64_t needed) {
  int64_t new_capacity = std::max(needed, capacity_ * 2);
  for (torch::Tensor& t : stored_) {
    torch::Tensor bigger = torch::zeros(with_length(t, position_dim_, new_capacity), t.options());
    bigger.narrow(position_dim_, 0, length_).copy_(t.narrow(position_dim_, 0, length_));
    t = bigger;
  }
  capacity_ = new_capacity;
}

void KVCache::prepare_append(int64_t layer, const torch::Tensor& entries) {
  const int64_t layers = static_cast<int64_t>(stored_.size()) / (latent_ ? 1 : 2);
  TORCH_CHECK(layer >= 0 && layer < layers, "KVCache: no layer ", layer);
  TORCH_CHECK(entries.size(0) == batch_, "KVCache: batch ", entries.size(0), " given, cache holds ", batch_);
  if (length_ + entries.size(1) > capacity_) grow(length_ + entries.size(1));
}

std::pair<torch::Tensor, torch::Tensor> KVCache::append(int64_t layer, const torch::Tensor& keys,
                                                         const torch::Tensor& values) {
  TORCH_CHECK(!latent_, "KVCache::append: an MLA cache takes append_latent");
  prepare_append(layer, keys);
  const int64_t t = keys.size(1);
  torch::Tensor& k = stored_[2 * layer];
  torch::Tensor& v = stored_[2 * layer + 1];
  k.narrow(2, length_, t).copy_(keys.transpose(1, 2));
  v.narrow(2, length_, t).copy_(values.transpose(1, 2));
  return {k.narrow(2, 0, length_ + t), v.narrow(2, 0, length_ + t)};
}

torch::Tensor KVCache::append_latent(int64_t layer, const torch::Tensor& latent, const torch::Tensor& rope_key) {
  TORCH_CHECK(latent_, "KVCache::append_latent: a GQA cache takes append");
  prepare_append(layer, latent);
  const int64_t t = latent.size(1);
  torch::Tensor rows = stored_[layer].narrow(1, length_, t);  // [B, T, d_c + d_r]
  rows.narrow(2, 0, latent_width_).copy_(latent);
  rows.narrow(2, latent_width_, rows.size(2) - latent_width_).copy_(rope_key);
  return stored_[layer].narrow(1, 0, length_ + t);
}

void KVCache::advance(int64_t new_tokens) { length_ += new_tokens; }

void KVCache::select_rows(const torch::Tensor& rows) {
  torch::Tensor index = rows.to(stored_.empty() ? torch::kCPU : stored_[0].device(), torch::kLong);
  for (torch::Tensor& t : stored_) t = t.index_select(0, index);
  batch_ = index.size(0);
}

KVCache KVCache::clone() const {
  KVCache copy = *this;
  for (torch::Tensor& t : copy.stored_) t = t.clone();
  return copy;
}

void KVCache::pad_front(int64_t n) {
  if (n <= 0) return;
  const int64_t new_capacity = std::max(capacity_, length_ + n);
  for (torch::Tensor& t : stored_) {
    torch::Tensor padded = torch::zeros(with_length(t, position_dim_, new_capacity), t.options());
    padded.narrow(position_dim_, n, length_).copy_(t.narrow(position_dim_, 0, length_));
    t = padded;
  }
  capacity_ = new_capacity;
  length_ += n;
}

void KVCache::trim_front(int64_t n) {
  TORCH_CHECK(n >= 0 && n <= length_, "KVCache::trim_front: ", n, " of ", length_, " positions");
  if (n == 0) return;
  // A view: O(1), the storage is released at the next grow or row selection.
  for (torch::Tensor& t : stored_) t = t.narrow(position_dim_, n, capacity_ - n);
  capacity_ -= n;
  length_ -= n;
}

void KVCache::append_rows(const KVCache& other) {
  TORCH_CHECK(other.length_ == length_, "KVCache::append_rows: lengths differ (", length_, " vs ", other.length_, ")");
  TORCH_CHECK(other.stored_.size() == stored_.size(), "KVCache::append_rows: layer counts differ");
  const int64_t new_capacity = std::max(capacity_, other.capacity_);
  const int64_t d = position_dim_;
  for (size_t i = 0; i < stored_.size(); ++i) {
    torch::Tensor& mine = stored_[i];
    const torch::Tensor& theirs = other.stored_[i];
    std::vector<int64_t> shape = with_length(mine, d, new_capacity);
    shape[0] = mine.size(0) + theirs.size(0);
    torch::Tensor out = torch::zeros(shape, mine.options());
    out.narrow(0, 0, mine.size(0)).narrow(d, 0, length_).copy_(mine.narrow(d, 0, length_));
    out.narrow(0, mine.size(0), theirs.size(0)).narrow(d, 0, length_).copy_(theirs.narrow(d, 0, length_));
    mine = out;
  }
  capacity_ = new_capacity;
  batch_ += other.batch_;
}

int64_t KVCache::bytes() const {
  int64_t total = 0;
  for (const torch::Tensor& t : stored_) total += t.numel() * t.element_size();
  return total;
}

int64_t KVCache::bytes_per_token() const {
  return batch_ == 0 || capacity_ == 0 ? 0 : bytes() / (batch_ * capacity_);
}

}  // namespace grpo
