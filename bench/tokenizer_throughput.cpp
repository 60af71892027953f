// Encoding speed of Tokenizer on one thread: the C++ side of scripts/bench_tokenizer, which runs the
// reference implementation on the same text and prints the comparison.
//   bench_tokenizer TOKENIZER_DIR TEXT_FILE  ->  {"bytes": ..., "tokens": ..., "seconds": ..., "ids_hash": ...}
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "policy/tokenizer/tokenizer.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: bench_tokenizer TOKENIZER_DIR TEXT_FILE\n");
    return 2;
  }
  try {
    const grpo::Tokenizer tokenizer = grpo::Tokenizer::from_file(argv[1]);
    std::ifstream in(argv[2], std::ios::binary);
    if (!in) throw std::runtime_error(std::string(argv[2]) + ": cannot read");
    std::ostringstream buffer;
    buffer << in.rdbuf();
    const std::string text = buffer.str();

    // Documents are separated by '\f', encoded one by one; the first 50 once before timing, as the
    // reference side does.
    std::vector<std::string_view> docs;
    for (size_t start = 0; start <= text.size();) {
      const size_t end = std::min(text.find('\f', start), text.size());
      docs.emplace_back(text.data() + start, end - start);
      start = end + 1;
    }
    for (size_t i = 0; i < docs.size() && i < 50; ++i) tokenizer.encode(docs[i], /*allow_special=*/true);

    std::vector<std::vector<int32_t>> all;
    all.reserve(docs.size());
    const auto begin = std::chrono::steady_clock::now();
    for (std::string_view d : docs) all.push_back(tokenizer.encode(d, /*allow_special=*/true));
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();

    size_t tokens = 0;
    uint64_t hash = 0xcbf29ce484222325ull;  // FNV-1a over the ids' little-endian bytes, as the reference
    for (const auto& ids : all) {
      tokens += ids.size();
      for (int32_t id : ids) {
        for (int k = 0; k < 4; ++k) hash = (hash ^ ((static_cast<uint32_t>(id) >> (8 * k)) & 0xFF)) * 0x100000001b3ull;
      }
    }
    std::printf("{\"bytes\": %zu, \"tokens\": %zu, \"seconds\": %.6f, \"ids_hash\": \"%llx\"}\n", text.size(), tokens,
                seconds, static_cast<unsigned long long>(hash));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_tokenizer: %s\n", e.what());
    return 1;
  }
  return 0;
}
