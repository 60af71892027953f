// Reward throughput: math-answer rule evaluations per second on a pool of sandboxed Lua states over
// generated R1-style completions, and sandboxed run_program runs per second for a trivial program.
// Built and run by scripts/bench_rewards.
#include <fmt/core.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "rewards/program_runner.h"
#include "rewards/scorer_pool.h"

using namespace grpo::rewards;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// A MATH-style sample: a few hundred to ~2000 characters of reasoning with LaTeX, then an answer in
// one of the forms models write (boxed fraction, decimal, integer, radical, answer tag), right or wrong.
Sample realistic_sample(std::mt19937_64& rng) {
  static const char* kSteps[] = {
      "First, we rewrite the expression as $\\frac{a}{b} + \\frac{c}{d} = \\frac{ad + bc}{bd}$. ",
      "Let $x$ be the number of apples; then $3x + 5 = 20$, so $x = 5$. ",
      "We check the boundary case $n = 0$ separately, where the sum is empty. ",
      "By the Pythagorean theorem, $c = \\sqrt{a^2 + b^2} = \\sqrt{9 + 16}$. ",
      "Wait, that is not right. Let me recompute: $12 \\times 7 = 84$, and $84 / 4 = 21$. ",
      "Multiplying both sides by $2$ gives $2y = 14 - y$, hence $3y = 14$. ",
      "The probability is the ratio of favourable outcomes to all outcomes, $\\binom{5}{2} / 2^5$. ",
  };
  std::uniform_int_distribution<int> step(0, 6), steps(3, 20), value(1, 500), form(0, 5), coin(0, 9);
  const int numerator = value(rng), denominator = value(rng) % 12 + 2;
  Sample sample;
  std::string gold;
  std::string right, wrong;
  switch (form(rng)) {
    case 0: gold = fmt::format("\\frac{{{}}}{{{}}}", numerator, denominator);
            right = fmt::format("\\dfrac{{{}}}{{{}}}", numerator * 2, denominator * 2);
            wrong = fmt::format("\\frac{{{}}}{{{}}}", numerator + 1, denominator); break;
    case 1: gold = std::to_string(numerator); right = fmt::format("{}.0", numerator);
            wrong = std::to_string(numerator + 2); break;
    case 2: gold = fmt::format("{}\\sqrt{{2}}", numerator); right = fmt::format("\\sqrt{{{}}}", 2 * numerator * numerator);
            wrong = fmt::format("{}\\sqrt{{3}}", numerator); break;
    case 3: gold = fmt::format("{}.5", numerator); right = fmt::format("\\frac{{{}}}{{2}}", 2 * numerator + 1);
            wrong = fmt::format("{}.25", numerator); break;
    case 4: gold = fmt::format("({}, {})", numerator, denominator); right = fmt::format("\\left({},{}\\right)", numerator, denominator);
            wrong = fmt::format("({}, {})", denominator, numerator); break;
    default: gold = fmt::format("{}\\pi", numerator); right = fmt::format("{}\\pi", numerator);
             wrong = fmt::format("{}", numerator * 3); break;
  }
  std::string think;
  for (int i = steps(rng); i > 0; --i) think += kSteps[step(rng)];
  const std::string& answer = coin(rng) < 6 ? right : wrong;
  sample.completion = coin(rng) < 5 ? fmt::format("<think>{}</think>\n<answer>The answer is $\\boxed{{{}}}$.</answer>", think, answer)
                                    : fmt::format("<think>{}</think>\nSo the final answer is \\boxed{{{}}}.", think, answer);
  sample.prompt = "Solve the problem and put the final answer in \\boxed{}.";
  sample.record = {{"answer", gold}};
  sample.completion_tokens = static_cast<std::int64_t>(sample.completion.size() / 4);
  sample.finish_reason = "stop";
  return sample;
}

void bench_math_rule(int threads, int samples) {
  std::mt19937_64 rng(7);
  std::vector<Sample> all;
  all.reserve(static_cast<std::size_t>(samples));
  std::size_t characters = 0;
  for (int i = 0; i < samples; ++i) {
    all.push_back(realistic_sample(rng));
    characters += all.back().completion.size();
  }
  ScorerPool pool(RuleSet::from_source("return require('math_answer')()", "math_answer.lua"), threads);
  constexpr std::size_t kBatch = 1024;
  double correct = 0;
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t first = 0; first < all.size(); first += kBatch) {
    std::vector<Sample> batch(all.begin() + static_cast<std::ptrdiff_t>(first),
                              all.begin() + static_cast<std::ptrdiff_t>(std::min(all.size(), first + kBatch)));
    for (const SampleScore& score : pool.score(batch)) correct += score.total;
  }
  const double seconds = seconds_since(start);
  fmt::print("| math_answer rule, {} threads | {:>8} completions (mean {:>4} chars) | {:>7.2f} s | {:>9.0f} evals/s | "
             "accuracy {:.3f}, failures {} |\n",
             threads, samples, characters / all.size(), seconds, samples / seconds, correct / samples,
             pool.failures()[0].count);
}

void bench_run_program(int threads, int runs_per_thread) {
  ProgramRequest request;
  request.language = "python";
  request.source = "print(int(input()) * 2)\n";
  request.tests = {ProgramTest{"21\n", "42\n", ""}};
  int passed = 0;
  std::vector<int> passes(static_cast<std::size_t>(threads), 0);
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 0; i < runs_per_thread; ++i) passes[static_cast<std::size_t>(t)] += run_program(request).passed;
    });
  }
  for (std::thread& worker : workers) worker.join();
  const double seconds = seconds_since(start);
  for (int p : passes) passed += p;
  const int runs = threads * runs_per_thread;
  fmt::print("| run_program python, {} threads | {:>8} runs | {:>7.2f} s | {:>9.1f} runs/s | passed {}/{} |\n",
             threads, runs, seconds, runs / seconds, passed, runs);
}

}  // namespace

int main(int argc, char** argv) {
  const int samples = argc > 1 ? std::atoi(argv[1]) : 100000;
  const int runs = argc > 2 ? std::atoi(argv[2]) : 40;
  fmt::print("| benchmark | work | time | throughput | check |\n|---|---|---|---|---|\n");
  bench_math_rule(1, samples / 4);
  bench_math_rule(2, samples);
  bench_run_program(1, runs / 2);
  bench_run_program(2, runs / 2);
  return 0;
}
