#pragma once
// A `grpo serve` server in the test's process, on a loopback port the OS picks, with a tiny float64
// model (so that batched decoding gives exactly the tokens of decoding alone), a character tokenizer
// and a ChatML-like template whose generation prompt opens a "[...]" reasoning block. The reference
// model is a second copy of the same weights, for RolloutEngine::generate beside the server's thread.
#include <httplib.h>

#include <memory>
#include <string>
#include <thread>

#include "api/server/openai_server.h"
#include "policy/tokenizer/prompt_template.h"
#include "policy_test_models.h"
#include "rollout/rollout_engine.h"

namespace grpo::test {

inline Tokenizer serve_tokenizer() {
  return Tokenizer::make_char_level("abcdefghijklmnopqrstuvwxyz []\n", {"<pad>", "<eos>", "<|im_start|>", "<|im_end|>"});
}

inline const char* kServeTemplate = R"({
  "description": "test ChatML", "begin": "",
  "roles": {"system": "<|im_start|>system\n{content}<|im_end|>\n", "user": "<|im_start|>user\n{content}<|im_end|>\n",
            "assistant": "<|im_start|>assistant\n{content}<|im_end|>\n"},
  "generation_prompt": "<|im_start|>assistant\n[", "stop": ["<|im_end|>"]})";

inline CausalLM serve_model(int64_t context = 256) {
  ModelConfig c = tiny_config(kTinyQwen2);
  c.vocab_size = serve_tokenizer().vocab_size();
  c.max_position_embeddings = context;
  torch::manual_seed(71);
  CausalLM model(c);
  model->to(torch::kDouble);
  return model;
}

struct TestServer {
  explicit TestServer(api::ServerOptions options = {}, int64_t context = 256) {
    api::ServedModel served{"tiny", serve_model(context), serve_tokenizer(), std::nullopt, std::nullopt, context};
    served.chat_template = PromptTemplate::from_json(kServeTemplate, "<test template>");
    served.reasoning = api::ReasoningMarkers{"[", "]"};
    served.context_length = context;
    options.host = "127.0.0.1";
    options.port = 0;
    server = std::make_unique<api::OpenAIServer>(std::move(served), options);
    port = server->bind();
    thread = std::thread([this] { server->serve(); });
  }
  ~TestServer() { stop(); }
  void stop() {
    if (!thread.joinable()) return;
    server->shutdown();
    thread.join();
  }
  httplib::Client client(int read_timeout_s = 30) const {
    httplib::Client c("127.0.0.1", port);
    c.set_connection_timeout(5);
    c.set_read_timeout(read_timeout_s);
    c.set_write_timeout(5);
    return c;
  }

  std::unique_ptr<api::OpenAIServer> server;
  int port = 0;
  std::thread thread;
};

}  // namespace grpo::test
