#pragma once
// OpenAIServer: `grpo serve`'s HTTP side (cpp-httplib). Routes:
//
//   GET  /health                 200 {"status": "ok", ...} (no key needed)
//   GET  /v1/models              the served model
//   POST /v1/completions         a prompt continued
//   POST /v1/chat/completions    messages answered through the chat template
//
// Every request's samples are decoded by one LiveDecodeLoop (rollout/live_decode_loop.h): concurrent
// requests share the batch, a request that arrives mid-decode joins it, a finished one leaves at once.
// Handler threads submit and then wait (or stream server-sent events) on their RequestChannel. Errors
// are OpenAI's JSON shape with their status (api/openai_errors.h), never a crash: 400 bad request, 401
// key, 404 model or path, 413 body or prompt too large, 429 queue full, 503 shutting down.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "api/reasoning_split.h"
#include "policy/causal_lm.h"
#include "policy/tokenizer/prompt_template.h"
#include "policy/tokenizer/tokenizer.h"

namespace grpo::api {

struct ServedModel {
  std::string name;  // what requests name in "model"
  CausalLM model;
  Tokenizer tokenizer;
  std::optional<PromptTemplate> chat_template;   // none: chat requests are refused
  std::optional<ReasoningMarkers> reasoning;     // none: no reasoning_content
  int64_t context_length = 0;                    // max_position_embeddings: prompt + completion
};

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;                  // 0: one the OS picks (bind() returns it)
  std::string api_key;              // empty: no key needed
  int64_t max_batch_rows = 64;      // samples decoded together (and the largest n)
  int64_t max_queue = 64;           // requests waiting for rows; more are refused with 429
  size_t max_body_bytes = 8u << 20;
  double drain_seconds = 10;        // on shutdown, in-flight requests get this long before they are cancelled
  int64_t memory_budget_bytes = 0;  // bound on the KV cache (rollout/memory_budget.h); 0 = none
};

class OpenAIServer {
 public:
  OpenAIServer(ServedModel model, ServerOptions options);
  ~OpenAIServer();
  OpenAIServer(const OpenAIServer&) = delete;
  OpenAIServer& operator=(const OpenAIServer&) = delete;

  // Binds the listening socket; returns the port (the OS's choice for port 0). Throws
  // std::runtime_error when the address cannot be bound.
  int bind();
  // Serves until shutdown() (call bind() first). Returns once every connection is closed.
  void serve();
  // From any thread: stops accepting connections and requests (503), lets in-flight requests finish
  // for up to drain_seconds, cancels what is left (streams end with an error event, waiting requests
  // get 503), and makes serve() return.
  void shutdown();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// The reasoning markers for a model: "auto" finds them in the tokenizer (a "</think>" token, as Qwen3's
// and DeepSeek-R1's have) or in the chat template's generation prompt; "none" turns the split off; any
// other value is the end marker itself ("</reasoning>": the start marker is the same without '/').
std::optional<ReasoningMarkers> reasoning_markers_for(const std::string& option, const Tokenizer& tokenizer,
                                                      const PromptTemplate* chat_template);

}  // namespace grpo::api
