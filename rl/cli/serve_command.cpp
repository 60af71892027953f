// grpo serve: an OpenAI-compatible HTTP server for a checkpoint (api/server/openai_server.h).
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "rl/cli/commands.h"

#ifdef GRPO_WITH_HTTP
#include <unistd.h>

#include <cerrno>

#include "api/server/openai_server.h"
#include "policy/checkpoint.h"
#include "policy/device.h"
#include "rollout/memory_budget.h"
#endif

namespace grpo::cli {
namespace {

#ifdef GRPO_WITH_HTTP
int g_signal_pipe[2] = {-1, -1};

extern "C" void on_stop_signal(int signal) {
  const char byte = static_cast<char>(signal);
  const ssize_t written = ::write(g_signal_pipe[1], &byte, 1);  // async-signal-safe
  (void)written;
}
#endif

struct ServeOptions {
  std::string model, tokenizer, served_model_name, chat_template, api_key_env, reasoning_marker = "auto";
  std::string host = "127.0.0.1", device = "auto", dtype = "auto", memory_budget;
  int port = 8000;
  int64_t max_batch_rows = 64, max_queue = 64, max_body_bytes = 8 << 20;
  double drain_seconds = 10;
};

#ifdef GRPO_WITH_HTTP
void run(const ServeOptions& o) {
  std::signal(SIGPIPE, SIG_IGN);  // a client that has gone is a failed write, not the end of the server
  api::ServerOptions so;
  so.host = o.host;
  so.port = o.port;
  if (o.max_batch_rows < 1) throw std::invalid_argument("serve: --max-batch-rows must be >= 1");
  // A request waits in the queue until the decode loop admits it, even into free rows: 0 would refuse all.
  if (o.max_queue < 1) throw std::invalid_argument("serve: --max-queue must be >= 1");
  if (o.max_body_bytes < 1024) throw std::invalid_argument("serve: --max-body-bytes must be >= 1024");
  so.max_batch_rows = o.max_batch_rows;
  so.max_queue = o.max_queue;
  so.max_body_bytes = static_cast<size_t>(o.max_body_bytes);
  so.drain_seconds = o.drain_seconds;
  if (!o.memory_budget.empty()) so.memory_budget_bytes = parse_byte_size(o.memory_budget);
  if (!o.api_key_env.empty()) {
    const char* key = std::getenv(o.api_key_env.c_str());
    if (!key || !*key) throw std::invalid_argument(fmt::format("serve: --api-key-env {}: the variable is not set", o.api_key_env));
    so.api_key = key;
  }

  api::ServedModel served{std::string(), load_checkpoint(o.model), Tokenizer::from_file(o.tokenizer.empty() ? o.model : o.tokenizer),
                          std::nullopt, std::nullopt, 0};
  place_model(served.model, resolve_placement(o.device, o.dtype));
  std::filesystem::path dir = std::filesystem::path(o.model).lexically_normal();
  if (!dir.has_filename()) dir = dir.parent_path();
  served.name = o.served_model_name.empty() ? dir.filename().string() : o.served_model_name;
  if (!o.chat_template.empty())
    served.chat_template = PromptTemplate::load(o.chat_template);
  else
    served.chat_template = PromptTemplate::from_checkpoint(o.model);
  served.reasoning = api::reasoning_markers_for(o.reasoning_marker, served.tokenizer,
                                                served.chat_template ? &*served.chat_template : nullptr);
  served.context_length = served.model->config().max_position_embeddings;
  const bool has_template = served.chat_template.has_value();
  const bool reasoning = served.reasoning.has_value();
  const std::string name = served.name;


  api::OpenAIServer server(std::move(served), so);
  const int port = server.bind();
  fmt::print("grpo serve: listening on http://{}:{}/v1 (model \"{}\"; chat template: {}; reasoning_content: {})\n", o.host, port,
             name, has_template ? "yes" : "none", reasoning ? "yes" : "no");
  std::fflush(stdout);
  // SIGTERM and SIGINT may arrive on any thread (BLAS starts its own before main): the handler only
  // writes the signal's number to a pipe, and a watcher thread does the shutdown a handler may not.
  if (::pipe(g_signal_pipe) != 0) throw std::runtime_error("serve: cannot create the signal pipe");
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  std::thread watcher([&server] {
    char signal = 0;
    ssize_t got = 0;
    do {
      got = ::read(g_signal_pipe[0], &signal, 1);
    } while (got < 0 && errno == EINTR);
    if (got != 1 || signal == 0) return;  // woken at the end of serve()
    fmt::print(stderr, "grpo serve: signal {}: finishing in-flight requests, then exiting\n", static_cast<int>(signal));
    server.shutdown();
  });
  server.serve();
  const char wake = 0;
  if (::write(g_signal_pipe[1], &wake, 1) != 1) fmt::print(stderr, "grpo serve: cannot wake the signal watcher\n");
  watcher.join();
  fmt::print(stderr, "grpo serve: stopped\n");
}
#else
void run(const ServeOptions&) {
  throw std::runtime_error("serve: this grpo was built without cpp-httplib (libcpp-httplib-dev); rebuild with it to serve");
}
#endif

}  // namespace

void add_serve_command(CLI::App& app) {
  auto o = std::make_shared<ServeOptions>();
  CLI::App* cmd = app.add_subcommand("serve", "Serve a checkpoint over an OpenAI-compatible HTTP API");
  cmd->add_option("--model", o->model, "Checkpoint directory (with tokenizer.json unless --tokenizer)")->required();
  cmd->add_option("--tokenizer", o->tokenizer, "tokenizer.json or its directory");
  cmd->add_option("--host", o->host, "Address to listen on");
  cmd->add_option("--port", o->port, "Port to listen on; 0 = one the system picks (printed)");
  cmd->add_option("--served-model-name", o->served_model_name, "The name requests use (default: the checkpoint's folder name)");
  cmd->add_option("--template", o->chat_template,
                  "Chat template: a built-in name or a file (default: the checkpoint's own chat template)");
  cmd->add_option("--reasoning-marker", o->reasoning_marker,
                  "End-of-thinking marker that splits reasoning_content from content: auto (</think> when the tokenizer "
                  "or template has it), none, or the marker");
  cmd->add_option("--api-key-env", o->api_key_env, "Environment variable holding the API key clients must send");
  cmd->add_option("--max-batch-rows", o->max_batch_rows, "Samples decoded together (and the largest n)");
  cmd->add_option("--max-queue", o->max_queue, "Requests that may wait for rows; more get 429");
  cmd->add_option("--max-body-bytes", o->max_body_bytes, "Largest request body; larger ones get 413");
  cmd->add_option("--memory-budget", o->memory_budget, "Bound on the KV cache, e.g. 2GiB");
  cmd->add_option("--drain-seconds", o->drain_seconds, "On SIGTERM, how long in-flight requests may finish before they are cancelled");
  cmd->add_option("--device", o->device, "auto, cpu, cuda or cuda:N");
  cmd->add_option("--dtype", o->dtype, "auto (bfloat16 on CUDA, float32 on the CPU), float32 or bfloat16");
  cmd->callback([o] { run(*o); });
}

}  // namespace grpo::cli
