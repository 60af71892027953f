#pragma once
// DAPO's soft overlong punishment (Yu et al. 2025, eq. 13): a length-aware reward added to the rules'
// reward, so that a completion running into the length limit is penalised gradually instead of being
// graded as if it had finished. With L_max = max_new_tokens and L_cache = the buffer:
//
//   R_length(y) = 0                                  if |y| ≤ L_max − L_cache
//               = ((L_max − L_cache) − |y|) / L_cache  if L_max − L_cache < |y| ≤ L_max
//               = −1                                 if |y| > L_max
//
// scaled by a penalty factor (verl's overlong_penalty_factor, default 1). DAPO used L_max = 20480 with
// L_cache = 4096; verl's docs note the best runs used this without also masking truncated samples.
#include <cstdint>

namespace grpo {

struct OverlongPenalty {
  int64_t max_length = 0;  // L_max, in completion tokens
  int64_t buffer = 0;      // L_cache; 0 turns the penalty off
  double factor = 1.0;     // the penalty at L_max (and beyond)
};

// Throws std::invalid_argument when buffer < 0, buffer > max_length or factor < 0.
void validate(const OverlongPenalty& penalty);

// R_length · factor for a completion of `length` tokens (≤ 0; 0 when the penalty is off).
double soft_overlong_penalty(const OverlongPenalty& penalty, int64_t length);

}  // namespace grpo
