#pragma once
// A Lua 5.4 state for untrusted reward rules. Rules run millions of times inside a training run, so
// nothing a rule does may hang, crash or slow the host:
//   - only string, table, math, utf8, coroutine, the safe base functions and `verify` are reachable;
//     no io, os, debug, package, file loading or bytecode; `require` serves the shipped rule library;
//   - every call has an instruction budget, enforced by a count hook whose error is sticky: once the
//     budget is spent, pcall/xpcall/coroutine.resume re-raise it and the hook raises again every few
//     instructions, so neither pcall, coroutines nor C callbacks (table.sort, gsub) can swallow it;
//     pattern matching and string.rep/table.move charge their steps to the same budget;
//   - a wall-clock limit per call, checked by the same hook;
//   - a memory cap over everything the state holds, enforced by the allocator;
//   - metatables with __gc are refused (finalisers run with hooks disabled and could hang the host).
// A LuaSandbox is used by one thread at a time.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

struct lua_State;
struct lua_Debug;

namespace grpo::rewards {

struct SandboxLimits {
  std::int64_t instructions = 20'000'000;  // per call: VM instructions plus pattern-matching steps
  std::size_t memory_bytes = 64u << 20;    // per state: everything the state holds
  double seconds = 5.0;                    // per call, wall clock
};

// How a protected call ended. Every failure leaves the stack as it was before the call's function.
enum class CallFailure {
  none,
  error,         // the code raised an error (message kept)
  instructions,  // the instruction budget ran out
  time,          // the wall-clock limit passed
  memory,        // the memory cap was hit and not recovered from
};

struct CallStatus {
  CallFailure failure = CallFailure::none;
  std::string message;  // empty when failure == none
  bool ok() const { return failure == CallFailure::none; }
  // A limit failure may leave the state half-updated (a loop stopped anywhere): callers rebuild it.
  bool hit_limit() const {
    return failure == CallFailure::instructions || failure == CallFailure::time ||
           failure == CallFailure::memory;
  }
};

const char* to_string(CallFailure failure);

class LuaSandbox {
 public:
  explicit LuaSandbox(SandboxLimits limits = {});
  ~LuaSandbox();
  LuaSandbox(const LuaSandbox&) = delete;
  LuaSandbox& operator=(const LuaSandbox&) = delete;

  lua_State* state() const { return state_; }
  const SandboxLimits& limits() const { return limits_; }
  std::size_t memory_in_use() const { return memory_.used; }

  // Calls the function below the top `nargs` values, like lua_pcall, under the per-call limits
  // (`limits` overrides the instruction and time budget of this call only). On success its
  // `nresults` results are on the stack; on failure nothing is.
  CallStatus call(int nargs, int nresults);
  CallStatus call(int nargs, int nresults, const SandboxLimits& limits);

  // Runs `function(data)` (data passed as a light userdata) in protected mode under the limits:
  // host code that allocates in the state (building tables, loading chunks) must run this way,
  // because a Lua error outside protected mode aborts the process.
  CallStatus run(int (*function)(lua_State*), void* data, int nresults);

  // Compiles `source` as text (never bytecode) into a function whose globals are a fresh table that
  // reads through to the safe library; pushes it on success. `chunkname` names it in error messages
  // ("@rules.lua" reads as rules.lua:LINE).
  CallStatus load(std::string_view source, const std::string& chunkname);

  // Charges `steps` to the running call's instruction budget, raising the budget error when spent.
  // For C functions whose cost the count hook cannot see (pattern matching, string.rep).
  static void charge(lua_State* state, std::int64_t steps);
  // Whether the running call has run out of budget or time: pcall wrappers re-raise then.
  static bool expired(lua_State* state);

 private:
  struct Memory {
    std::size_t used = 0;
    std::size_t limit = 0;
    bool refused = false;  // the allocator refused a request during the current call
  };
  static void* allocate(void* memory, void* block, std::size_t old_size, std::size_t new_size);
  static void count_hook(lua_State* state, lua_Debug* debug);
  static LuaSandbox& of(lua_State* state);
  void arm(const SandboxLimits& limits);
  CallStatus finish(int status);

  SandboxLimits limits_;
  Memory memory_;
  lua_State* state_ = nullptr;

  // Budget of the call in progress.
  std::int64_t budget_ = 0;
  std::int64_t spent_ = 0;
  std::chrono::steady_clock::time_point deadline_;
  CallFailure expired_ = CallFailure::none;  // sticky until the next call
};

}  // namespace grpo::rewards
