// The stage progress line and summary table, written to a real file.
#include <doctest/doctest.h>

#include <cstdio>
#include <string>

#include "rl/experiment/progress.h"

using namespace grpo;

namespace {

// Everything written to `f` so far.
std::string contents(std::FILE* f) {
  std::fflush(f);
  std::string text;
  std::rewind(f);
  for (int c = std::fgetc(f); c != EOF; c = std::fgetc(f)) text += static_cast<char>(c);
  return text;
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("durations read as m:ss or h:mm:ss") {
  CHECK(format_duration(0) == "0:00");
  CHECK(format_duration(59.6) == "1:00");
  CHECK(format_duration(133) == "2:13");
  CHECK(format_duration(3723) == "1:02:03");
  CHECK(format_duration(-1) == "?");
}

TEST_CASE("progress line: step/total, values, elapsed and ETA from the rate so far") {
  std::FILE* f = std::tmpfile();
  StageProgress p("train", 20, f, /*redraw=*/false, /*every=*/5);
  // 5 of 20 steps in 10 s: 2 s a step, 15 steps left -> 30 s.
  CHECK(p.line(5, {{"reward", 0.5}, {"tok/s", 1840.4}}, 10.0) ==
        "[train] 5/20  reward 0.5000  tok/s 1840 | 0:10 elapsed, ETA 0:30");
  std::fclose(f);
}

TEST_CASE("progress into a file: one line at the first step, every N steps and the last; then the summary table") {
  std::FILE* f = std::tmpfile();
  StageProgress p("sft", 10, f, /*redraw=*/false, /*every=*/4);
  const double losses[] = {2.0, 1.5, 1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1};
  for (int i = 0; i < 10; ++i) p.update(i + 1, {{"loss", losses[i]}}, i + 1.0);
  p.finish(10.0);
  std::string text = contents(f);
  std::fclose(f);
  // Steps 1, 4, 8 and 10.
  CHECK(count(text, "[sft] ") == 5);  // four progress lines and the "done" line
  CHECK(text.find("[sft] 1/10") != std::string::npos);
  CHECK(text.find("[sft] 4/10") != std::string::npos);
  CHECK(text.find("[sft] 8/10") != std::string::npos);
  CHECK(text.find("[sft] 10/10") != std::string::npos);
  CHECK(text.find("[sft] 5/10") == std::string::npos);
  CHECK(text.find('\r') == std::string::npos);
  CHECK(text.find("[sft] done: 10 of 10 steps in 0:10") != std::string::npos);
  // Summary row: first 2, last 0.1, min 0.1, max 2, mean of the ten values = 7.4 / 10.
  size_t row = text.rfind("\n  loss ") + 1;  // the table row, not a progress line
  REQUIRE(row != 0);
  std::string summary = text.substr(row, text.find('\n', row) - row);
  char name[16];
  double first, last, min, max, mean;
  REQUIRE(std::sscanf(summary.c_str(), "%15s %lf %lf %lf %lf %lf", name, &first, &last, &min, &max, &mean) == 6);
  CHECK(first == 2.0);
  CHECK(last == doctest::Approx(0.1));
  CHECK(min == doctest::Approx(0.1));
  CHECK(max == 2.0);
  CHECK(mean == doctest::Approx(0.74));
}

TEST_CASE("progress on a terminal: redrawn in place with a carriage return, newline before the summary") {
  std::FILE* f = std::tmpfile();
  StageProgress p("train", 3, f, /*redraw=*/true, /*every=*/1);
  for (int i = 1; i <= 3; ++i) p.update(i, {{"reward", 0.1 * i}}, i);
  p.finish(3.0);
  p.finish(4.0);  // a second call prints nothing more
  std::string text = contents(f);
  std::fclose(f);
  CHECK(count(text, "\r[train] ") == 3);
  CHECK(count(text, "\n") == 4);  // end of the live line, the "done" line, the table header and one row
  CHECK(text.find("\r[train] 3/3  reward 0.3000 | 0:03 elapsed, ETA 0:00\x1b[K\n[train] done") != std::string::npos);
}

TEST_CASE("a resumed stage counts its rate from the resume point; notes get their own line") {
  std::FILE* f = std::tmpfile();
  StageProgress p("train", 100, f, /*redraw=*/true, /*every=*/1);
  p.start_at(60);
  // 10 steps of this run in 20 s: 2 s a step, 30 steps left -> 60 s (not 20 / 70 · 30).
  CHECK(p.line(70, {}, 20.0) == "[train] 70/100 | 0:20 elapsed, ETA 1:00");
  p.update(61, {{"reward", 0.5}}, 2.0);
  p.note("warning: something");
  p.update(62, {{"reward", 0.5}}, 4.0);
  std::string text = contents(f);
  std::fclose(f);
  CHECK(text.find("\x1b[K\nwarning: something\n\r[train] 62/100") != std::string::npos);
}
