#pragma once
// `grpo run x.lua --rerun-from STAGE`: run a stage and every later one again, in the same run directory.
// A rerun reuses finished stages and refuses changed ones (run_directory.h); after an edit to a stage's
// options or inputs, this is how the edited stage and the ones after it (which took its outputs) run
// again while the earlier ones are reused. Nothing is deleted: the stage records from STAGE on, and the
// checkpoints/ folders of those stages' outputs (a train stage would resume from them), move to
// RUN/stages/replaced-<UTC time>/, where they can be looked at or moved back.
#include <string>
#include <vector>

namespace grpo {

// STAGE is a record number as the file names show it (`3` or `03` for stages/03-train.json), a stage
// name (its first record: `train`), or a name and which of its calls (`train:2`, the second). Moves the
// records from there on, of rank 0 and of the other ranks (RUN/.ranks/N/stages), and their checkpoints.
// Returns one line per thing moved. Throws std::invalid_argument naming STAGE and listing the records
// when STAGE names none.
std::vector<std::string> set_aside_stages_from(const std::string& run_directory, const std::string& stage);

}  // namespace grpo
