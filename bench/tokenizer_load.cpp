// Load time of a tokenizer.json, phase by phase: the C++ side of scripts/bench_tokenizer_load, which runs
// it in a fresh process per load (cold, building the cache, from the cache) and prints the tables.
//   bench_tokenizer_load from_file TOKENIZER_DIR   Tokenizer::from_file: scanner, cache (GRPO_TOKENIZER_CACHE)
//   bench_tokenizer_load reference TOKENIZER_DIR   the whole file through the JSON library's DOM, no cache
// prints {"seconds": ..., "cpu_seconds": ..., "vocab_size": ..., "ids_hash": ..., "phases": {"read the files": ..., ...}}
// seconds is wall time; cpu_seconds (user + system time of the process) moves less when other work
// shares the machine.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <time.h>

#include "policy/tokenizer/load_phases.h"
#include "policy/tokenizer/tokenizer.h"
#include "policy/tokenizer/tokenizer_impl.h"

namespace {

double cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// As from_file reads: the size, then one read.
template <typename Bytes>
Bytes read_or_empty(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  Bytes bytes;
  if (!in) return bytes;
  bytes.resize(static_cast<size_t>(in.tellg()));
  in.seekg(0);
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return bytes;
}

// Text that touches the vocabulary, merges, added tokens and the regexes, so that the hash of its ids
// shows that every way of loading built the same tokenizer.
constexpr const char* kSample =
    "The quick brown fox jumps over the lazy dog. 1234567 + 89 = 1234656; naïve café, Ünïcödé.\n"
    "def f(x):\n    return x ** 2  # comment\n\n$\\frac{a}{b}$ 你好，世界！こんにちは 안녕하세요 😀👨‍👩‍👧‍👦"
    "<|im_start|>user<|im_end|><｜end▁of▁sentence｜><|eot_id|> <think>\n</think>";

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 || (std::string(argv[1]) != "from_file" && std::string(argv[1]) != "reference")) {
    std::fprintf(stderr, "usage: bench_tokenizer_load from_file|reference TOKENIZER_DIR\n");
    return 2;
  }
  try {
    const std::string mode = argv[1], dir = argv[2];
    grpo::LoadPhases phases;
    const auto begin = std::chrono::steady_clock::now();
    const auto since = [](std::chrono::steady_clock::time_point t) {
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
    };
    double seconds = 0, cpu = 0;
    const double cpu_begin = cpu_seconds();
    grpo::LoadPhases::record_into(&phases);
    int32_t vocab_size = 0;
    std::string ids_hash = "-";
    if (mode == "from_file") {
      const grpo::Tokenizer tokenizer = grpo::Tokenizer::from_file(dir);
      seconds = since(begin);
      cpu = cpu_seconds() - cpu_begin;
      vocab_size = tokenizer.vocab_size();
      uint64_t hash = 0xcbf29ce484222325ull;  // FNV-1a over the ids' bytes, as bench_tokenizer
      for (int32_t id : tokenizer.encode(kSample)) {
        for (int k = 0; k < 4; ++k) hash = (hash ^ ((static_cast<uint32_t>(id) >> (8 * k)) & 0xFF)) * 0x100000001b3ull;
      }
      ids_hash = std::to_string(hash);
    } else {
      // Read as from_file reads, then the reference path: what every load did before the scanner and
      // the cache (tests/tokenizer_load_parity.cpp checks that the paths build the same tables).
      grpo::JsonText json = read_or_empty<grpo::JsonText>(dir + "/tokenizer.json");
      const std::string config = read_or_empty<std::string>(dir + "/tokenizer_config.json");
      if (json.empty()) throw std::runtime_error(dir + "/tokenizer.json: cannot read");
      grpo::LoadPhases::mark("read the files");
      const auto impl = grpo::parse_tokenizer_json(std::move(json), config, dir + "/tokenizer.json",
                                                   grpo::TableSource::kReference);
      seconds = since(begin);
      cpu = cpu_seconds() - cpu_begin;
      vocab_size = static_cast<int32_t>(impl->token_text.size());
    }
    grpo::LoadPhases::record_into(nullptr);

    std::printf("{\"seconds\": %.6f, \"cpu_seconds\": %.6f, \"vocab_size\": %d, \"ids_hash\": \"%s\", \"phases\": {",
                seconds, cpu, vocab_size, ids_hash.c_str());
    for (size_t i = 0; i < phases.seconds.size(); ++i) {
      std::printf("%s\"%s\": %.6f", i ? ", " : "", phases.seconds[i].first.c_str(), phases.seconds[i].second);
    }
    std::printf("}}\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_tokenizer_load: %s\n", e.what());
    return 1;
  }
  return 0;
}
