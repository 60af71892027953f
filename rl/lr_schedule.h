#pragma once
// Learning-rate schedule: linear warm-up, then constant or cosine decay to a floor.
// DAPO: constant 1e-6 after 20 warm-up rollouts; DeepSeek-R1 SFT and distillation: cosine decay to
// 1/10 of the initial rate; GRPO runs in verl and TRL default to constant.
#include <cstdint>

namespace grpo {

enum class LrDecay {
  Constant,  // peak after warm-up
  Cosine,    // floor + (peak − floor) · ½(1 + cos(π·progress)), progress 0 → 1 over the decay steps
};

struct LrSchedule {
  double peak = 1e-6;         // learning rate after warm-up (verl and TRL GRPO default 1e-6)
  int64_t warmup_steps = 0;   // optimizer steps of linear warm-up (0 = none)
  LrDecay decay = LrDecay::Constant;
  int64_t total_steps = 0;    // Cosine: the step at which the floor is reached (> warmup_steps)
  double floor_ratio = 0.0;   // Cosine: floor = floor_ratio · peak (R1 SFT: 0.1)
};

// Throws std::invalid_argument naming the field when peak < 0, warmup_steps < 0, floor_ratio is outside
// [0, 1], or a cosine schedule has total_steps <= warmup_steps.
void validate(const LrSchedule& schedule);

// The rate for optimizer step `step` (0-based: the first update is step 0).
//   warm-up  (step < W):  peak · (step + 1) / W   — the first update already moves (peak / W), the
//                          W-th reaches peak; a zero-rate step would waste a whole rollout
//   constant (step ≥ W):  peak
//   cosine   (step ≥ W):  floor + (peak − floor) · ½(1 + cos(π · min(1, (step − W) / (S − W))))
//                          with S = total_steps: peak at W, floor from S on.
// Throws std::invalid_argument for an invalid schedule or a negative step.
double learning_rate(const LrSchedule& schedule, int64_t step);

}  // namespace grpo
