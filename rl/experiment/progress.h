#pragma once
// The terminal view of a running stage: one live progress line, then a summary table.
//
//   [train] 12/50  reward 0.4120  accuracy 0.3750  kl 0.0021  tok/s 1840 | 0:42 elapsed, ETA 2:13
//
// On a terminal the line is redrawn in place (carriage return); into a file or a pipe (a log, CI) a full
// line is written every `every` steps and at the last one, so logs stay readable. At the end, finish()
// prints first / last / min / max / mean of every value seen, one row per value.
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "policy/stopwatch.h"

namespace grpo {

using ProgressValues = std::vector<std::pair<std::string, double>>;  // shown in this order

// "m:ss" below an hour, "h:mm:ss" above; "?" for negative or non-finite seconds.
std::string format_duration(double seconds);

class StageProgress {
 public:
  // Writes to `out`; redraws in place when `out` is a terminal, else one line per max(1, total / 20) steps.
  StageProgress(std::string stage, int64_t total, std::FILE* out = stderr);
  // Explicit mode (tests, or a caller that knows better). every >= 1.
  StageProgress(std::string stage, int64_t total, std::FILE* out, bool redraw, int64_t every);

  // Step `done` (1-based) finished with these values. The overload without `elapsed_seconds` reads the clock
  // from construction. ETA = elapsed / (done − start) · (total − done), start = 0 unless start_at().
  void update(int64_t done, const ProgressValues& values);
  void update(int64_t done, const ProgressValues& values, double elapsed_seconds);

  // Values kept for the summary table only, not shown on the line: a row appears once one of them is
  // not 0 (a rule's failure rate: a table row for every rule that ever failed, none for the others).
  void tally(const ProgressValues& values);

  // A resumed stage starts at step `done`: the rate and ETA count only the steps of this run.
  void start_at(int64_t done);

  // Prints a message (a warning) on its own line, without tearing the live line.
  void note(const std::string& message);

  // Ends the live line and prints the summary table. Safe to call once; later calls do nothing.
  void finish();
  void finish(double elapsed_seconds);

  // The text of the progress line for these numbers (no carriage return or newline).
  std::string line(int64_t done, const ProgressValues& values, double elapsed_seconds) const;

 private:
  struct Summary {
    std::string name;
    double first = 0, last = 0, min = 0, max = 0, sum = 0;
    int64_t count = 0;
    bool only_if_nonzero = false;  // a tally()'d value
  };
  void add_to_summary(const ProgressValues& values, bool only_if_nonzero);
  double elapsed() const;

  std::string stage_;
  int64_t total_;
  std::FILE* out_;
  bool redraw_;
  int64_t every_;
  Stopwatch stopwatch_;  // from construction
  int64_t done_ = 0, first_ = 0;
  bool line_open_ = false, finished_ = false;
  std::vector<Summary> summary_;  // in first-seen order
};

}  // namespace grpo
