#pragma once
// Training checkpoints: everything a GRPO run needs to continue exactly where it stopped, written
// every N steps into the stage's folder, in the layout TRL users know from checkpoint-N:
//
//   checkpoints/step-N/
//     config.json, model.safetensors, tokenizer.json   the policy: a Hugging Face directory (grpo sample,
//                                                      transformers and any later stage load it as is)
//     optimizer.pt          AdamW moments and step counts (torch::save)
//     master_weights.pt     float32 master weights of a bf16/f16 policy (rl/policy_optimizer.h)
//     rng.pt                the torch CPU generator state
//     reference/            the reference model, once it has been reset to the policy (before that it
//                           is the initial model, which a resumed trainer rebuilds from the stage's input)
//     trainer_state.json    step, LR-schedule position, skip streak, reward-rule failure counts, warning
//                           streaks (GrpoTrainer::counters), and the caller's own state (data order and
//                           cursor, how far metrics.jsonl and samples.jsonl had been written)
//
// Sampling and minibatch shuffling draw from counter-based seeds of (run seed, step), and MoE router
// biases are model buffers saved with the weights, so no other random state exists. A save is atomic:
// it is written under a temporary name and renamed, so a kill mid-save leaves no step-N folder that a
// resume could pick up half-written.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "policy/tokenizer/tokenizer.h"
#include "rl/grpo_trainer.h"

namespace grpo {

struct TrainCheckpoint {
  int64_t step = 0;  // steps done when it was written
  std::string directory;
};

// The complete checkpoints under `checkpoints_directory` (its step-N folders), oldest first; empty when
// the folder does not exist.
std::vector<TrainCheckpoint> list_train_checkpoints(const std::string& checkpoints_directory);

// Writes checkpoints_directory/step-N for N = trainer.steps_done(), with `caller_state` stored in
// trainer_state.json, then deletes all but the newest `keep` checkpoints (keep <= 0 keeps all).
// Returns the checkpoint's directory. Throws std::runtime_error or SafetensorsError when a write fails.
std::string save_train_checkpoint(const std::string& checkpoints_directory, GrpoTrainer& trainer, const Tokenizer& tokenizer,
                                  const nlohmann::json& caller_state, int64_t keep);

// Restores a checkpoint into a trainer built exactly as the one that wrote it (same initial model,
// rules and config): weights, optimizer state, reference model, counters and the torch generator.
// Returns the caller's state given to save_train_checkpoint. Throws std::runtime_error naming the
// checkpoint when a part is missing or does not fit the trainer.
nlohmann::json load_train_checkpoint(const std::string& directory, GrpoTrainer& trainer);

}  // namespace grpo
