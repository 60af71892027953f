#pragma once
// Memory planning for rollouts. What grows with batch × length is the KV cache (the weights are fixed
// and one decode step's activations are small beside it), so a memory budget bounds the cache: how many
// bytes one cached position of one row takes, and which batch × length fits.
#include <cstdint>
#include <stdexcept>
#include <string>

#include "policy/model_config.h"

namespace grpo {

// KV-cache bytes per cached position of one row, over all layers, with elements of `element_bytes`
// (4 for float32, 2 for bfloat16). MLA models cache only the latent and the rope key.
int64_t cache_bytes_per_token(const ModelConfig& config, int64_t element_bytes);

struct CacheBudget {
  int64_t budget_bytes = 0;
  int64_t bytes_per_token = 0;

  // Cached positions the budget holds, summed over rows (rows × length).
  int64_t positions() const { return bytes_per_token > 0 ? budget_bytes / bytes_per_token : 0; }
  // Rows of `length` positions that fit; 0 when not even one does.
  int64_t max_rows(int64_t length) const { return length > 0 ? positions() / length : 0; }
  // Positions per row when `rows` rows share the budget.
  int64_t max_length(int64_t rows) const { return rows > 0 ? positions() / rows : 0; }
  bool fits(int64_t rows, int64_t length) const { return rows * length <= positions(); }
};

// A request that cannot fit the budget; the message says what was asked and what fits.
class MemoryBudgetExceeded : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Parses a size such as "2GiB", "512MiB", "1.5GB", "64k" or "1000000" (bytes; suffixes k/M/G/T are
// powers of 1000, Ki/Mi/Gi/Ti powers of 1024, a trailing B is optional). Throws std::invalid_argument
// naming the text when it is not a positive size.
int64_t parse_byte_size(const std::string& text);
// "1.50 GiB", "512.00 KiB", "100 B".
std::string format_bytes(int64_t bytes);

}  // namespace grpo
