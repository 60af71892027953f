#include "rl/experiment/progress.h"

#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

namespace grpo {

namespace {

// Four significant digits, never exponent notation for the magnitudes metrics usually have.
std::string format_value(double v) {
  if (!std::isfinite(v)) return fmt::format("{}", v);
  const double a = std::fabs(v);
  if (a >= 1000) return fmt::format("{:.0f}", v);
  if (a >= 1 || a == 0) return fmt::format("{:.4g}", v);
  if (a >= 1e-4) return fmt::format("{:.4f}", v);
  return fmt::format("{:.2e}", v);
}

}  // namespace

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const int64_t s = static_cast<int64_t>(std::llround(seconds));
  if (s < 3600) return fmt::format("{}:{:02d}", s / 60, s % 60);
  return fmt::format("{}:{:02d}:{:02d}", s / 3600, (s / 60) % 60, s % 60);
}

StageProgress::StageProgress(std::string stage, int64_t total, std::FILE* out)
    : StageProgress(std::move(stage), total, out, isatty(fileno(out)) != 0, std::max<int64_t>(1, total / 20)) {}

StageProgress::StageProgress(std::string stage, int64_t total, std::FILE* out, bool redraw, int64_t every)
    : stage_(std::move(stage)), total_(total), out_(out), redraw_(redraw), every_(std::max<int64_t>(1, every)) {}

double StageProgress::elapsed() const { return stopwatch_.seconds(); }

std::string StageProgress::line(int64_t done, const ProgressValues& values, double elapsed_seconds) const {
  std::string text = fmt::format("[{}] {}/{}", stage_, done, total_);
  for (const auto& [name, value] : values) text += fmt::format("  {} {}", name, format_value(value));
  const int64_t this_run = done - first_;
  const double eta =
      this_run > 0 ? elapsed_seconds / static_cast<double>(this_run) * static_cast<double>(total_ - done) : -1;
  text += fmt::format(" | {} elapsed, ETA {}", format_duration(elapsed_seconds), format_duration(eta));
  return text;
}

void StageProgress::start_at(int64_t done) {
  first_ = done;
  done_ = done;
}

void StageProgress::note(const std::string& message) {
  if (line_open_) fmt::print(out_, "\n");
  line_open_ = false;
  fmt::print(out_, "{}\n", message);
  std::fflush(out_);
}

void StageProgress::update(int64_t done, const ProgressValues& values) { update(done, values, elapsed()); }

void StageProgress::add_to_summary(const ProgressValues& values, bool only_if_nonzero) {
  for (const auto& [name, value] : values) {
    auto it = std::find_if(summary_.begin(), summary_.end(), [&](const Summary& s) { return s.name == name; });
    if (it == summary_.end()) {
      summary_.push_back({name, value, value, value, value, 0, 0, only_if_nonzero});
      it = summary_.end() - 1;
    }
    it->last = value;
    it->min = std::min(it->min, value);
    it->max = std::max(it->max, value);
    it->sum += value;
    ++it->count;
  }
}

void StageProgress::tally(const ProgressValues& values) { add_to_summary(values, /*only_if_nonzero=*/true); }

void StageProgress::update(int64_t done, const ProgressValues& values, double elapsed_seconds) {
  done_ = done;
  add_to_summary(values, /*only_if_nonzero=*/false);
  const std::string text = line(done, values, elapsed_seconds);
  if (redraw_) {
    // Clear to the end of the line: the new text may be shorter than the old.
    fmt::print(out_, "\r{}\x1b[K", text);
    line_open_ = true;
  } else if (done == total_ || done == first_ + 1 || done % every_ == 0) {
    fmt::print(out_, "{}\n", text);
  }
  std::fflush(out_);
}

void StageProgress::finish() { finish(elapsed()); }

void StageProgress::finish(double elapsed_seconds) {
  if (finished_) return;
  finished_ = true;
  if (line_open_) fmt::print(out_, "\n");
  fmt::print(out_, "[{}] done: {} of {} steps in {}\n", stage_, done_, total_, format_duration(elapsed_seconds));
  if (summary_.empty()) return;
  size_t width = 6;
  for (const Summary& s : summary_) width = std::max(width, s.name.size());
  fmt::print(out_, "  {:<{}}  {:>10}  {:>10}  {:>10}  {:>10}  {:>10}\n", "metric", width, "first", "last", "min", "max", "mean");
  for (const Summary& s : summary_) {
    if (s.only_if_nonzero && s.min == 0 && s.max == 0) continue;
    fmt::print(out_, "  {:<{}}  {:>10}  {:>10}  {:>10}  {:>10}  {:>10}\n", s.name, width, format_value(s.first),
               format_value(s.last), format_value(s.min), format_value(s.max),
               format_value(s.sum / static_cast<double>(s.count)));
  }
  std::fflush(out_);
}

}  // namespace grpo
