#include "policy/kv_cache.h"

#include <fmt/core.h>

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
      first_.push_back(torch::zeros({batch, capacity_, config.mla.kv_lora_rank}, options));
      second_.push_back(torch::zeros({batch, capacity_, config.mla.qk_rope_head_dim}, options));
    } else {
      first_.push_back(torch::zeros({batch, config.num_key_value_heads, capacity_, config.head_dim}, options));
      second_.push_back(torch::zeros({batch, config.num_key_value_heads, capacity_, config.head_dim}, options));
    }
  }
}

void KVCache::grow(int64_t needed) {
  int64_t new_capacity = std::max(needed, capacity_ * 2);
  for (size_t l = 0; l < first_.size(); ++l) {
    for (torch::Tensor* t : {&first_[l], &second_[l]}) {
      torch::Tensor bigger = torch::zeros(with_length(*t, position_dim_, new_capacity), t->options());
      bigger.narrow(position_dim_, 0, length_).copy_(t->narrow(position_dim_, 0, length_));
      *t = bigger;
    }
  }
  capacity_ = new_capacity;
}

std::pair<torch::Tensor, torch::Tensor> KVCache::append(int64_t layer, const torch::Tensor& first,
                                                         const torch::Tensor& second) {
  TORCH_CHECK(layer >= 0 && layer < static_cast<int64_t>(first_.size()), "KVCache: no layer ", layer);
  TORCH_CHECK(first.size(0) == batch_, "KVCache: batch ", first.size(0), " given, cache holds ", batch_);
  const int64_t t = first.size(1);
  if (length_ + t > capacity_) grow(length_ + t);
  const int64_t d = position_dim_;
  first_[layer].narrow(d, length_, t).copy_(latent_ ? first : first.transpose(1, 2));
  second_[layer].narrow(d, length_, t).copy_(latent_ ? second : second.transpose(1, 2));
  return {first_[layer].narrow(d, 0, length_ + t), second_[layer].narrow(d, 0, length_ + t)};
}

void KVCache::advance(int64_t new_tokens) { length_ += new_tokens; }

void KVCache::select_rows(const torch::Tensor& rows) {
  torch::Tensor index = rows.to(first_.empty() ? torch::kCPU : first_[0].device(), torch::kLong);
  for (size_t l = 0; l < first_.size(); ++l) {
    first_[l] = first_[l].index_select(0, index);
    second_[l] = second_[l].index_select(0, index);
  }
  batch_ = index.size(0);
}

KVCache KVCache::clone() const {
  KVCache copy = *this;
  for (size_t l = 0; l < first_.size(); ++l) {
    copy.first_[l] = first_[l].clone();
    copy.second_[l] = second_[l].clone();
  }
  return copy;
}

void KVCache::pad_front(int64_t n) {
  if (n <= 0) return;
  const int64_t new_capacity = std::max(capacity_, length_ + n);
  for (size_t l = 0; l < first_.size(); ++l) {
    for (torch::Tensor* t : {&first_[l], &second_[l]}) {
      torch::Tensor padded = torch::zeros(with_length(*t, position_dim_, new_capacity), t->options());
      padded.narrow(position_dim_, n, length_).copy_(t->narrow(position_dim_, 0, length_));
      *t = padded;
    }
  }
  capacity_ = new_capacity;
  length_ += n;
}

void KVCache::trim_front(int64_t n) {
  TORCH_CHECK(n >= 0 && n <= length_, "KVCache::trim_front: ", n, " of ", length_, " positions");
  if (n == 0) return;
  // A view: O(1), the storage is released at the next grow or row selection.
  for (size_t l = 0; l < first_.size(); ++l) {
    first_[l] = first_[l].narrow(position_dim_, n, capacity_ - n);
    second_[l] = second_[l].narrow(position_dim_, n, capacity_ - n);
  }
  capacity_ -= n;
  length_ -= n;
}

void KVCache::append_rows(const KVCache& other) {
  TORCH_CHECK(other.length_ == length_, "KVCache::append_rows: lengths differ (", length_, " vs ", other.length_, ")");
  TORCH_CHECK(other.first_.size() == first_.size(), "KVCache::append_rows: layer counts differ");
  const int64_t new_capacity = std::max(capacity_, other.capacity_);
  for (size_t l = 0; l < first_.size(); ++l) {
    for (auto [mine, theirs] : {std::pair{&first_[l], &other.first_[l]}, std::pair{&second_[l], &other.second_[l]}}) {
      const int64_t d = position_dim_;
      std::vector<int64_t> shape = with_length(*mine, d, new_capacity);
      shape[0] = mine->size(0) + theirs->size(0);
      torch::Tensor out = torch::zeros(shape, mine->options());
      out.narrow(0, 0, mine->size(0)).narrow(d, 0, length_).copy_(mine->narrow(d, 0, length_));
      out.narrow(0, mine->size(0), theirs->size(0)).narrow(d, 0, length_).copy_(theirs->narrow(d, 0, length_));
      *mine = out;
    }
  }
  capacity_ = new_capacity;
  batch_ += other.batch_;
}

int64_t KVCache::bytes() const {
  int64_t total = 0;
  for (size_t l = 0; l < first_.size(); ++l)
    total += first_[l].numel() * first_[l].element_size() + second_[l].numel() * second_[l].element_size();
  return total;
}

int64_t KVCache::bytes_per_token() const {
  return batch_ == 0 || capacity_ == 0 ? 0 : bytes() / (batch_ * capacity_);
}

}  // namespace grpo
