// grpo serve's throughput on loopback beside the offline engine, in one run: for each concurrency C,
// C clients send completion requests (each a fixed prompt, max_tokens new tokens, EOS ignored so that
// every request decodes the same number of tokens) back to back; then RolloutEngine::generate (what
// `grpo sample` runs) decodes the same requests with C rows at once. The two alternate for ROUNDS
// rounds and the best round of each is kept (on a shared machine, the one least disturbed by other
// processes). Prints requests/s, p50/p99 latency and tokens/s of each, and the server's share of the
// offline rate.
//
//   bench_serve CONFIG.json NEW_TOKENS CONCURRENCIES REQUESTS_PER_CLIENT [ROUNDS]
#include <fmt/core.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "api/server/openai_server.h"
#include "policy/model_config.h"
#include "rollout/rollout_engine.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

std::vector<int64_t> parse_list(const std::string& text) {
  std::vector<int64_t> out;
  size_t at = 0;
  while (at < text.size()) {
    size_t comma = text.find(',', at);
    out.push_back(std::stoll(text.substr(at, comma == std::string::npos ? std::string::npos : comma - at)));
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return out;
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5));
  return v[i];
}

grpo::CausalLM make_model(const grpo::ModelConfig& config) {
  torch::manual_seed(1);  // both copies get the same weights
  grpo::CausalLM model(config);
  return model;
}
struct ServerRound {
  std::vector<double> latencies_ms;
  int64_t tokens = 0, failed = 0;
  double seconds = 0;
};

// C clients against a fresh server with C rows, each sending `per_client` requests back to back.
ServerRound run_server(const grpo::ModelConfig& config, const grpo::Tokenizer& tokenizer, const std::string& prompt,
                       int64_t c, int64_t per_client, int64_t new_tokens) {
  grpo::api::ServedModel served{"bench", make_model(config), tokenizer, std::nullopt, std::nullopt, 0};
  served.context_length = config.max_position_embeddings > 0 ? config.max_position_embeddings : 1 << 20;
  grpo::api::ServerOptions options;
  options.port = 0;
  options.max_batch_rows = c;
  options.max_queue = c;
  grpo::api::OpenAIServer server(std::move(served), options);
  const int port = server.bind();
  std::thread serving([&] { server.serve(); });
  {
    // One untimed request first: the first forward of a model pays for allocations the rest reuse.
    httplib::Client warm("127.0.0.1", port);
    warm.set_read_timeout(600);
    warm.Post("/v1/completions", nlohmann::json({{"model", "bench"}, {"prompt", prompt}, {"max_tokens", 4}}).dump(), "application/json");
  }
  std::vector<ServerRound> per(static_cast<size_t>(c));
  const Clock::time_point start = Clock::now();
  std::vector<std::thread> clients;
  for (int64_t k = 0; k < c; ++k)
    clients.emplace_back([&, k] {
      ServerRound& mine = per[static_cast<size_t>(k)];
      httplib::Client client("127.0.0.1", port);
      client.set_read_timeout(600);
      client.set_tcp_nodelay(true);  // the request's header and body leave at once
      for (int64_t i = 0; i < per_client; ++i) {
        const nlohmann::json body = {{"model", "bench"}, {"prompt", prompt}, {"max_tokens", new_tokens}, {"ignore_eos", true},
                                     {"temperature", 1.0}, {"seed", k * per_client + i}};
        const Clock::time_point sent = Clock::now();
        auto res = client.Post("/v1/completions", body.dump(), "application/json");
        if (!res || res->status != 200) {
          ++mine.failed;
          continue;
        }
        mine.latencies_ms.push_back(seconds_since(sent) * 1000);
        mine.tokens += nlohmann::json::parse(res->body)["usage"]["completion_tokens"].get<int64_t>();
      }
    });
  for (std::thread& t : clients) t.join();
  ServerRound all;
  all.seconds = seconds_since(start);
  server.shutdown();
  serving.join();
  for (const ServerRound& r : per) {
    all.latencies_ms.insert(all.latencies_ms.end(), r.latencies_ms.begin(), r.latencies_ms.end());
    all.tokens += r.tokens;
    all.failed += r.failed;
  }
  return all;
}

// The offline engine on the same requests, c rows at once: (seconds, generated tokens).
std::pair<double, int64_t> run_offline(const grpo::ModelConfig& config, const grpo::Tokenizer& tokenizer,
                                       const std::vector<int32_t>& prompt_ids, int64_t c, int64_t requests, int64_t new_tokens) {
  grpo::RolloutOptions ro;
  ro.sampling.temperature = 1.0;
  ro.stop.max_new_tokens = new_tokens;  // no stop ids: as ignore_eos
  ro.max_batch_rows = c;
  grpo::CausalLM model = make_model(config);
  grpo::RolloutEngine engine(model, &tokenizer, ro);
  engine.generate({{prompt_ids, 1, 999}});  // untimed, as the server's first request
  std::vector<grpo::PromptRequest> batch;
  for (int64_t r = 0; r < requests; ++r) batch.push_back({prompt_ids, 1, static_cast<uint64_t>(r)});
  const Clock::time_point start = Clock::now();
  engine.generate(batch);
  return {seconds_since(start), engine.stats().generated_tokens};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5 && argc != 6) {
    fmt::print(stderr, "usage: bench_serve CONFIG.json NEW_TOKENS CONCURRENCIES REQUESTS_PER_CLIENT [ROUNDS]\n");
    return 2;
  }
  grpo::ModelConfig config = grpo::load_model_config(argv[1]);
  const int64_t new_tokens = std::stoll(argv[2]);
  const std::vector<int64_t> concurrencies = parse_list(argv[3]);
  const int64_t per_client = std::stoll(argv[4]);
  const int64_t rounds = argc == 6 ? std::stoll(argv[5]) : 3;
  const std::string alphabet = "abcdefghijklmnopqrstuvwxyz0123456789 +=:";
  grpo::Tokenizer tokenizer = grpo::Tokenizer::make_char_level(alphabet, {"<pad>", "<eos>"});
  config.vocab_size = std::max<int64_t>(config.vocab_size, tokenizer.vocab_size());
  const std::string prompt = "q: 12+34 = ? a: ";  // 16 tokens
  const std::vector<int32_t> prompt_ids = tokenizer.encode(prompt);
  if (config.max_position_embeddings > 0 && static_cast<int64_t>(prompt_ids.size()) + new_tokens > config.max_position_embeddings)
    config.max_position_embeddings = static_cast<int64_t>(prompt_ids.size()) + new_tokens;

  fmt::print("model {} ({}), prompt {} tokens, {} new tokens per request, {} requests per client, best of {} rounds; LibTorch "
             "threads {}\n",
             argv[1], config.model_type, prompt_ids.size(), new_tokens, per_client, rounds, torch::get_num_threads());
  fmt::print("{:>5} {:>8} | {:>9} {:>9} {:>9} {:>10} | {:>10} {:>10} | {:>9}\n", "conc", "requests", "req/s", "p50 ms", "p99 ms",
             "tok/s", "offline", "offline", "server/");
  fmt::print("{:>5} {:>8} | {:>9} {:>9} {:>9} {:>10} | {:>10} {:>10} | {:>9}\n", "", "", "(server)", "", "", "(server)", "req/s",
             "tok/s", "offline");
  for (int64_t c : concurrencies) {
    ServerRound best;
    double best_offline_seconds = 0;
    int64_t offline_tokens = 0;
    for (int64_t round = 0; round < rounds; ++round) {
      ServerRound r = run_server(config, tokenizer, prompt, c, per_client, new_tokens);
      if (best.seconds == 0 || (r.failed == 0 && r.tokens / r.seconds > best.tokens / best.seconds)) best = r;
      auto [seconds, tokens] = run_offline(config, tokenizer, prompt_ids, c, c * per_client, new_tokens);
      if (best_offline_seconds == 0 || seconds < best_offline_seconds) best_offline_seconds = seconds, offline_tokens = tokens;
    }
    const double server_rate = static_cast<double>(best.tokens) / best.seconds;
    const double offline_rate = static_cast<double>(offline_tokens) / best_offline_seconds;
    const std::vector<double>& l = best.latencies_ms;
    fmt::print("{:>5} {:>8} | {:>9.2f} {:>9.1f} {:>9.1f} {:>10.0f} | {:>10.2f} {:>10.0f} | {:>8.0f}%{}\n", c, l.size(),
               static_cast<double>(l.size()) / best.seconds, l.empty() ? 0.0 : percentile(l, 0.5),
               l.empty() ? 0.0 : percentile(l, 0.99), server_rate, static_cast<double>(c * per_client) / best_offline_seconds,
               offline_rate, 100 * server_rate / offline_rate, best.failed > 0 ? fmt::format(" ({} failed)", best.failed) : "");
    std::fflush(stdout);
  }
  return 0;
}
