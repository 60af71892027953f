#include "rl/experiment/train_checkpoint.h"

#include <fmt/core.h>
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <mutex>

#include "policy/checkpoint.h"
#include "rl/experiment/run_directory.h"

namespace grpo {
namespace {

namespace fs = std::filesystem;
const char* const kPrefix = "step-";
const char* const kTemporaryPrefix = ".tmp-step-";

}  // namespace

std::vector<TrainCheckpoint> list_train_checkpoints(const std::string& checkpoints_directory) {
  std::vector<TrainCheckpoint> out;
  if (!fs::is_directory(checkpoints_directory)) return out;
  for (const fs::directory_entry& entry : fs::directory_iterator(checkpoints_directory)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory() || name.rfind(kPrefix, 0) != 0) continue;
    const std::string digits = name.substr(std::string(kPrefix).size());
    if (digits.empty() || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) continue;
    out.push_back({std::stoll(digits), entry.path().string()});
  }
  std::sort(out.begin(), out.end(), [](const TrainCheckpoint& a, const TrainCheckpoint& b) { return a.step < b.step; });
  return out;
}

std::string save_train_checkpoint(const std::string& checkpoints_directory, GrpoTrainer& trainer, const Tokenizer& tokenizer,
                                  const nlohmann::json& caller_state, int64_t keep) {
  const int64_t step = trainer.steps_done();
  const fs::path final_path = fs::path(checkpoints_directory) / (kPrefix + std::to_string(step));
  const fs::path temporary = fs::path(checkpoints_directory) / (kTemporaryPrefix + std::to_string(step));
  fs::remove_all(temporary);  // left by a save that was killed
  fs::create_directories(temporary);

  save_checkpoint(trainer.policy(), temporary.string());
  tokenizer.save((temporary / "tokenizer.json").string());
  if (trainer.reference_was_reset()) save_checkpoint(trainer.reference()->model(), (temporary / "reference").string());
  trainer.optimizer().save(temporary.string());
  {
    at::Generator generator = at::detail::getDefaultCPUGenerator();
    torch::Tensor state;
    {
      std::lock_guard<std::mutex> lock(generator.mutex());
      state = generator.get_state();
    }
    torch::serialize::OutputArchive archive;
    archive.write("cpu_generator", state);
    archive.save_to((temporary / "rng.pt").string());
  }
  write_json_atomically((temporary / "trainer_state.json").string(),
                        {{"step", step}, {"trainer", trainer.counters()}, {"caller", caller_state}});

  fs::remove_all(final_path);  // a checkpoint of the same step from a run that was killed after it
  fs::rename(temporary, final_path);

  if (keep > 0) {
    std::vector<TrainCheckpoint> all = list_train_checkpoints(checkpoints_directory);
    for (size_t i = 0; i + static_cast<size_t>(keep) < all.size(); ++i) fs::remove_all(all[i].directory);
  }
  return final_path.string();
}

nlohmann::json load_train_checkpoint(const std::string& directory, GrpoTrainer& trainer) {
  const nlohmann::json state = read_json_file(directory + "/trainer_state.json");
  try {
    trainer.restore_counters(state.at("trainer"));
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("{}: {}", directory, e.what()));
  }
  load_weights(trainer.policy(), CheckpointWeights::open(directory));
  if (trainer.reference_was_reset()) {
    if (!fs::exists(directory + "/reference/config.json"))
      throw std::runtime_error(fmt::format("{}: the reference model had been reset by step {}, but reference/ is missing", directory,
                                           trainer.steps_done()));
    load_weights(trainer.reference()->model(), CheckpointWeights::open(directory + "/reference"));
  }
  try {
    trainer.optimizer().load(directory);
    torch::serialize::InputArchive archive;
    archive.load_from(directory + "/rng.pt");
    torch::Tensor generator_state;
    archive.read("cpu_generator", generator_state);
    at::Generator generator = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(generator_state);
  } catch (const c10::Error& e) {
    throw std::runtime_error(fmt::format("{}: optimizer or generator state does not fit this run: {}", directory, e.what_without_backtrace()));
  }
  return state.value("caller", nlohmann::json::object());
}

}  // namespace grpo
