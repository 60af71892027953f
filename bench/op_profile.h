#pragma once
// Where the time of a LibTorch region goes, op by op: a RecordFunction observer on the calling thread
// that records each operator's self time (its wall time minus that of the operators it calls), so the
// rows add up to the time spent inside operators without counting a nested call twice. Autograd
// nodes (MmBackward0, ...) appear with the time of their own bookkeeping; the matmuls they run appear
// under their aten names. Matrix products (mm, addmm, bmm, mv, ...) are summed apart: the rest is
// what batching and fusing can cut.
#include <ATen/record_function.h>
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace grpo::bench {

struct OpTime {
  int64_t calls = 0;
  double self_seconds = 0;
};

class OpProfile {
 public:
  // Starts recording on this thread (ops that other threads run are not seen).
  OpProfile() {
    instance() = this;
    handle_ = at::addThreadLocalCallback(at::RecordFunctionCallback(on_enter, on_exit)
                                             .scopes({at::RecordScope::FUNCTION, at::RecordScope::BACKWARD_FUNCTION})
                                             .needsInputs(false));
  }
  ~OpProfile() { stop(); }
  void stop() {
    if (handle_ == 0) return;
    at::removeCallback(handle_);
    handle_ = 0;
    instance() = nullptr;
  }

  static bool is_matrix_product(const std::string& op) {
    static const std::set<std::string> products = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm",
                                                   "aten::mv", "aten::addmv", "aten::dot", "aten::addbmm"};
    return products.count(op) > 0;
  }
  double total_seconds() const {
    double s = 0;
    for (const auto& [name, t] : ops_) s += t.self_seconds;
    return s;
  }
  double matrix_product_seconds() const {
    double s = 0;
    for (const auto& [name, t] : ops_)
      if (is_matrix_product(name)) s += t.self_seconds;
    return s;
  }

  // One row per op, slowest first: calls and self time per `unit` (a generated token, a training
  // step), and the share of `wall` seconds.
  void print(double units, const std::string& unit, double wall, size_t rows) const {
    std::vector<std::pair<std::string, OpTime>> sorted(ops_.begin(), ops_.end());
    std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.second.self_seconds > b.second.self_seconds; });
    int64_t calls = 0;
    for (const auto& [name, t] : sorted) calls += t.calls;
    const double in_ops = total_seconds(), products = matrix_product_seconds();
    fmt::print("{:.3f} ms per {} (wall), {:.0f} op calls per {}; matrix products {:.1f}%, other ops {:.1f}%, "
               "outside ops {:.1f}% of the wall time\n",
               1e3 * wall / units, unit, calls / units, unit, 100.0 * products / wall, 100.0 * (in_ops - products) / wall,
               100.0 * (wall - in_ops) / wall);
    fmt::print("{:<34} {:>10} {:>12} {:>9} {:>7}\n", "op (self time)", "calls/" + unit.substr(0, 5), "us/" + unit.substr(0, 5),
               "us/call", "share");
    for (size_t i = 0; i < std::min(rows, sorted.size()); ++i) {
      const auto& [name, t] = sorted[i];
      fmt::print("{:<34} {:>10.1f} {:>12.1f} {:>9.2f} {:>6.1f}%\n", name, t.calls / units, 1e6 * t.self_seconds / units,
                 1e6 * t.self_seconds / t.calls, 100.0 * t.self_seconds / wall);
    }
  }

 private:
  using Clock = std::chrono::steady_clock;
  struct Frame {
    Clock::time_point start;
    double children = 0;  // seconds inside nested ops
  };

  static OpProfile*& instance() {
    static OpProfile* current = nullptr;
    return current;
  }
  static std::unique_ptr<at::ObserverContext> on_enter(const at::RecordFunction&) {
    if (OpProfile* p = instance()) p->stack_.push_back({Clock::now(), 0.0});
    return nullptr;
  }
  static void on_exit(const at::RecordFunction& fn, at::ObserverContext*) {
    OpProfile* p = instance();
    if (!p || p->stack_.empty()) return;
    const Frame frame = p->stack_.back();
    p->stack_.pop_back();
    const double total = std::chrono::duration<double>(Clock::now() - frame.start).count();
    OpTime& t = p->ops_[fn.name()];
    t.calls += 1;
    t.self_seconds += total - frame.children;
    if (!p->stack_.empty()) p->stack_.back().children += total;
  }

  at::CallbackHandle handle_ = 0;
  std::vector<Frame> stack_;
  std::map<std::string, OpTime> ops_;
};

}  // namespace grpo::bench
