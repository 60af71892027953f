#pragma once
// Where the time of loading a tokenizer goes, phase by phase (reading the file, parsing, building the
// tables, the cache, ...), for bench_tokenizer_load. Recording is off unless a caller turns it on for
// its thread; the marks cost one thread-local check then.
#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace grpo {

struct LoadPhases {
  std::vector<std::pair<std::string, double>> seconds;  // phase -> seconds, in the order first seen

  // Loads on this thread record into *phases from now on (nullptr: stop). The clock starts now.
  static void record_into(LoadPhases* phases);
  // Ends the phase named phase: the time since the previous mark is added to it.
  static void mark(const char* phase);
};

}  // namespace grpo
