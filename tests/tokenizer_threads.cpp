// encode() from several threads at once gives the same ids as from one (one thread uses the word
// cache, the others go without: both paths must agree).
#include "tests/tokenizer_test_files.h"

#include <thread>

TEST_CASE("threads: concurrent encode gives the single-threaded ids") {
  const grpo::Tokenizer* t = grpo::test::shared_tokenizer("qwen3");
  if (!t) return;
  const auto corpus = grpo::test::load_corpus();
  std::vector<std::vector<int32_t>> expected;
  for (const auto& c : corpus) expected.push_back(t->encode(c.bytes));

  constexpr int kThreads = 4, kRounds = 20;
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> threads;
  for (int k = 0; k < kThreads; ++k) {
    threads.emplace_back([&, k] {
      for (int round = 0; round < kRounds; ++round) {
        for (size_t i = 0; i < corpus.size(); ++i) mismatches[k] += t->encode(corpus[i].bytes) != expected[i];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int k = 0; k < kThreads; ++k) CHECK(mismatches[k] == 0);
}
