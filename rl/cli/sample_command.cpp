// grpo sample: G completions per prompt from a checkpoint, or from a model behind an OpenAI-compatible
// endpoint (--endpoint), printed or written as JSONL.
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "policy/checkpoint.h"
#include "policy/device.h"
#include "policy/tokenizer/tokenizer.h"
#include "rl/cli/commands.h"
#include "rl/experiment/conversation.h"
#include "rl/experiment/jsonl.h"
#ifdef GRPO_WITH_HTTP
#include "api/client/endpoint_sampler.h"
#include "api/client/openai_client.h"
#endif
#include "rollout/memory_budget.h"
#include "rollout/rollout_engine.h"

namespace grpo::cli {
namespace {

struct SampleOptions {
  std::string model, tokenizer, prompt, in, out, device = "auto", memory_budget;
  int64_t n = 8, max_new_tokens = 256, top_k = 0, batch_rows = 64;
  double temperature = 1.0, top_p = 1.0, min_p = 0.0;
  uint64_t seed = 0;
  std::vector<std::string> stop;
  // A model behind an OpenAI-compatible endpoint instead of a checkpoint.
  std::string endpoint, model_name, api_key_env, api = "chat";
  int64_t concurrency = 8, max_retries = 5;
  double timeout = 600;
};

#ifdef GRPO_WITH_HTTP
// The prompts of --prompt or --in as an endpoint takes them: a string `prompt`, or a conversation (a
// `prompt` message list, or `messages` up to the last user turn). Errors name the file and record.
std::vector<api::EndpointPrompt> endpoint_prompts(const SampleOptions& o) {
  if (!o.prompt.empty()) return {{o.prompt, nullptr, nlohmann::json::object()}};
  std::vector<api::EndpointPrompt> out;
  int64_t index = 0;
  for (nlohmann::json& record : read_jsonl(o.in)) {
    ++index;
    api::EndpointPrompt p;
    if (record.contains("prompt") && record["prompt"].is_string()) {
      p.text = record["prompt"].get<std::string>();
    } else if (is_conversational(record)) {
      try {
        p.messages = prompt_message_list(record, static_cast<size_t>(index));
      } catch (const std::invalid_argument& e) {
        throw std::runtime_error(fmt::format("{}: {}", o.in, e.what()));
      }
    } else {
      throw std::runtime_error(fmt::format("{}: record {} has no string \"prompt\", \"prompt\" message list or \"messages\"", o.in, index));
    }
    p.record = std::move(record);
    out.push_back(std::move(p));
  }
  return out;
}
#endif

// --endpoint: the prompts sent to the server, records appended to --out as they arrive (a rerun with the
// same --out requests only the prompts not there yet), or printed in prompt order without --out.
void run_endpoint(const SampleOptions& o) {
#ifdef GRPO_WITH_HTTP
  if (o.model_name.empty()) throw std::invalid_argument("sample: --endpoint needs --model-name (the model's name on the server)");
  if (!o.model.empty() || !o.tokenizer.empty() || !o.memory_budget.empty())
    throw std::invalid_argument("sample: --model, --tokenizer and --memory-budget are for a local checkpoint; with --endpoint give --model-name");
  if (o.api != "chat" && o.api != "completions")
    throw std::invalid_argument(fmt::format("sample: --api must be chat or completions, got \"{}\"", o.api));
  api::EndpointSamplerOptions a;
  a.url = o.endpoint;
  api::parse_endpoint_url(a.url);
  if (!o.api_key_env.empty()) {
    const char* key = std::getenv(o.api_key_env.c_str());
    if (!key || !*key) throw std::invalid_argument(fmt::format("sample: --api-key-env: the environment variable {} is not set", o.api_key_env));
    a.api_key = key;
  }
  a.api = o.api == "chat" ? api::ApiKind::Chat : api::ApiKind::Completions;
  a.request.model = o.model_name;
  a.request.n = o.n;
  a.request.temperature = o.temperature;
  a.request.top_p = o.top_p;
  a.request.top_k = o.top_k;
  a.request.max_tokens = o.max_new_tokens;
  a.request.stop = o.stop;
  a.request.seed = o.seed;
  a.concurrency = o.concurrency;
  a.timeout_s = o.timeout;
  a.retry.max_attempts = static_cast<int>(std::max<int64_t>(o.max_retries, 0) + 1);
  a.jitter_seed = o.seed;
  a.out_path = o.out;
  const std::vector<api::EndpointPrompt> prompts = endpoint_prompts(o);
  const api::EndpointSampleResult r = api::sample_endpoint(prompts, a);
  if (o.out.empty())
    for (const nlohmann::json& record : r.records) fmt::print("{}\n", record.dump());
  for (const api::PromptFailure& f : r.failures) fmt::print(stderr, "warning: {}\n", api::describe_failure(f));
  fmt::print(stderr, "{} completions of {} prompts ({} from an earlier run in {}, {} requested, {} failed); {} requests, {} retries, {} "
             "completion tokens in {:.2f} s\n",
             r.records.size(), r.prompts, r.resumed, o.out.empty() ? "-" : o.out, r.requested, r.failures.size(), r.http_requests,
             r.retries, r.completion_tokens, r.seconds);
  if (!r.failures.empty()) throw std::runtime_error(fmt::format("sample: {} prompts failed; run the same command again to request them", r.failures.size()));
#else
  (void)o;
  throw std::invalid_argument("sample: --endpoint: this grpo was built without HTTP support (cpp-httplib)");
#endif
}

// Prompts from --prompt or from a JSONL file of {"prompt": "..."} lines; errors name file and line.
std::vector<std::string> read_prompts(const SampleOptions& o) {
  if (!o.prompt.empty()) return {o.prompt};
  std::vector<std::string> prompts;
  int64_t index = 0;
  for (const nlohmann::json& record : read_jsonl(o.in)) {
    ++index;
    if (!record.contains("prompt") || !record["prompt"].is_string())
      throw std::runtime_error(fmt::format("{}: record {} has no string \"prompt\"", o.in, index));
    prompts.push_back(record["prompt"].get<std::string>());
  }
  return prompts;
}

void run(const SampleOptions& o) {
  if (o.prompt.empty() == o.in.empty()) throw std::invalid_argument("sample: give exactly one of --prompt and --in");
  if (!o.endpoint.empty()) return run_endpoint(o);
  if (o.model.empty()) throw std::invalid_argument("sample: give --model (a checkpoint) or --endpoint with --model-name");
  for (const auto& [given, flag] : {std::pair<bool, const char*>{!o.model_name.empty(), "--model-name"}, {!o.api_key_env.empty(), "--api-key-env"}})
    if (given) throw std::invalid_argument(fmt::format("sample: {} is for --endpoint", flag));
  Tokenizer tok = Tokenizer::from_file(o.tokenizer.empty() ? o.model : o.tokenizer);
  CausalLM model = load_checkpoint(o.model);
  Placement placement = resolve_placement(o.device);
  place_model(model, placement);

  RolloutOptions ro;
  ro.sampling = {o.temperature, o.top_k, o.top_p, o.min_p};
  ro.stop.max_new_tokens = o.max_new_tokens;
  ro.stop.stop_strings = o.stop;
  if (tok.eos_id() >= 0) ro.stop.stop_ids.push_back(tok.eos_id());
  ro.max_batch_rows = o.batch_rows;
  std::vector<std::string> prompts = read_prompts(o);
  std::vector<PromptRequest> requests;
  int64_t longest = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    requests.push_back({tok.encode(prompts[i]), o.n, o.seed + i});
    longest = std::max<int64_t>(longest, static_cast<int64_t>(requests.back().prompt_ids.size()));
  }
  if (!o.memory_budget.empty()) {
    ro.memory_budget_bytes = parse_byte_size(o.memory_budget);
    CacheBudget budget{ro.memory_budget_bytes, cache_bytes_per_token(model->config(), model->model->embed_tokens->weight.element_size())};
    const int64_t length = longest + o.max_new_tokens;
    fmt::print(stderr,
               "KV cache: {} bytes per position; the budget of {} holds {} positions: {} rows of {} positions (longest "
               "prompt {} + max new tokens {}), or {} rows of {} positions\n",
               budget.bytes_per_token, format_bytes(budget.budget_bytes), budget.positions(), budget.max_rows(length), length,
               longest, o.max_new_tokens, o.batch_rows, budget.max_length(o.batch_rows));
  }
  RolloutEngine engine(model, &tok, ro);
  std::vector<Completion> completions = engine.generate(requests);

  std::ofstream file;
  if (!o.out.empty()) {
    file.open(o.out);
    if (!file) throw std::runtime_error(fmt::format("{}: cannot write", o.out));
  }
  for (const Completion& c : completions) {
    nlohmann::json line = {{"prompt_index", c.request_index}, {"sample_index", c.sample_index},
                           {"prompt", prompts[c.request_index]}, {"completion", c.text},
                           {"completion_ids", c.completion_ids}, {"logprobs", c.logprobs},
                           {"finish_reason", to_string(c.finish_reason)}};
    if (file.is_open()) {
      file << line.dump() << "\n";
    } else {
      fmt::print("{}\n", line.dump());
    }
  }
  const RolloutStats& s = engine.stats();
  fmt::print(stderr, "{} completions, {} tokens in {:.2f} s ({:.0f} tokens/s decoding, prefill {:.2f} s)\n", s.completions,
             s.generated_tokens, s.prefill_seconds + s.decode_seconds,
             s.decode_seconds > 0 ? s.generated_tokens / s.decode_seconds : 0.0, s.prefill_seconds);
}

}  // namespace

void add_sample_command(CLI::App& app) {
  auto o = std::make_shared<SampleOptions>();
  CLI::App* cmd = app.add_subcommand("sample", "Sample completions from a checkpoint or an OpenAI-compatible endpoint");
  cmd->add_option("--model", o->model, "Checkpoint directory (with tokenizer.json unless --tokenizer)");
  cmd->add_option("--tokenizer", o->tokenizer, "tokenizer.json or its directory");
  cmd->add_option("--prompt", o->prompt, "Prompt text");
  cmd->add_option("--in", o->in, "JSONL file of {\"prompt\": ...} lines");
  cmd->add_option("--out", o->out, "Write completions as JSONL here (default: stdout)");
  cmd->add_option("-n", o->n, "Samples per prompt");
  cmd->add_option("--temperature", o->temperature, "0 = greedy");
  cmd->add_option("--top-p", o->top_p);
  cmd->add_option("--top-k", o->top_k);
  cmd->add_option("--min-p", o->min_p);
  cmd->add_option("--max-new-tokens", o->max_new_tokens);
  cmd->add_option("--stop", o->stop, "Stop string (repeatable)");
  cmd->add_option("--seed", o->seed, "Prompt i uses seed + i");
  cmd->add_option("--batch-rows", o->batch_rows, "Samples decoded together");
  cmd->add_option("--device", o->device, "auto, cpu, cuda or cuda:N");
  cmd->add_option("--memory-budget", o->memory_budget,
                  "Bound on the KV cache, e.g. 2GiB: prints what fits, decodes fewer rows at once when needed, and refuses a "
                  "prompt whose samples cannot fit");
  cmd->add_option("--endpoint", o->endpoint,
                  "Base URL of an OpenAI-compatible server (vLLM, SGLang, Ollama, grpo serve), e.g. http://127.0.0.1:8000/v1, instead of --model");
  cmd->add_option("--model-name", o->model_name, "With --endpoint: the model's name on the server");
  cmd->add_option("--api-key-env", o->api_key_env, "With --endpoint: the environment variable holding the API key");
  cmd->add_option("--api", o->api, "With --endpoint: chat (default) or completions");
  cmd->add_option("--concurrency", o->concurrency, "With --endpoint: requests in flight");
  cmd->add_option("--timeout", o->timeout, "With --endpoint: seconds a request may wait for the server");
  cmd->add_option("--max-retries", o->max_retries, "With --endpoint: further tries of a request after 429, 5xx or a timeout");
  cmd->callback([o] { run(*o); });
}

}  // namespace grpo::cli
