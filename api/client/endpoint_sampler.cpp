#include "api/client/endpoint_sampler.h"

#include <fmt/core.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "api/client/openai_client.h"
#include "api/client/resumable_sample_file.h"

namespace grpo::api {

using nlohmann::json;

namespace {

// The outcome of one prompt: its choices and their token counts, or why it failed.
struct PromptOutcome {
  std::vector<ResponseChoice> choices;
  std::vector<int64_t> completion_tokens;
  std::optional<PromptFailure> failure;
  bool fatal = false;  // the failure's status says every other request would fail alike
};

// What one request (with its retries) came to.
struct RequestOutcome {
  std::optional<ParsedResponse> response;
  PromptFailure failure;
  bool fatal = false;
};

class PromptRequester {
 public:
  PromptRequester(const EndpointSamplerOptions& o, size_t prompt_count, std::atomic<bool>& stop, std::atomic<int64_t>& requests,
                  std::atomic<int64_t>& retries)
      : o_(o), prompt_count_(prompt_count), stop_(stop), requests_(requests), retries_(retries),
        client_(o.url, o.api_key, o.timeout_s) {}

  // Asks for n choices; a server that returns fewer (some ignore n) is asked again for the rest, the
  // k-th further request seeded with seed + i + k * (number of prompts), so no two requests share a seed.
  PromptOutcome sample(size_t index, const EndpointPrompt& p) {
    PromptOutcome out;
    std::mt19937_64 rng(o_.jitter_seed + 0x9E3779B97F4A7C15ull * (index + 1));
    const int64_t n = o_.request.n;
    for (int64_t follow = 0; static_cast<int64_t>(out.choices.size()) < n; ++follow) {
      SamplingRequest r = o_.request;
      r.n = n - static_cast<int64_t>(out.choices.size());
      if (r.seed) r.seed = *r.seed + index + static_cast<uint64_t>(follow) * prompt_count_;
      const json body = o_.api == ApiKind::Chat ? chat_request_body(r, chat_messages(p)) : completion_request_body(r, p.text);
      RequestOutcome attempt = request(index, body, rng);
      if (!attempt.response) {
        out.failure = attempt.failure;
        out.fatal = attempt.fatal;
        return out;
      }
      std::vector<ResponseChoice>& got = attempt.response->choices;
      if (got.empty()) {
        out.failure = PromptFailure{index, 200, "the response has no choices", attempt.failure.attempts};
        return out;
      }
      if (static_cast<int64_t>(got.size()) > r.n) got.resize(static_cast<size_t>(r.n));
      const std::vector<int64_t> tokens = share_completion_tokens(attempt.response->completion_tokens.value_or(0), got);
      out.completion_tokens.insert(out.completion_tokens.end(), tokens.begin(), tokens.end());
      out.choices.insert(out.choices.end(), got.begin(), got.end());
    }
    return out;
  }

  static json chat_messages(const EndpointPrompt& p) {
    return p.messages.is_null() ? json::array({{{"role", "user"}, {"content", p.text}}}) : p.messages;
  }

 private:
  // One request, tried up to max_attempts times while the failure is one a retry may cure.
  RequestOutcome request(size_t index, const json& body, std::mt19937_64& rng) {
    RequestOutcome out;
    out.failure.prompt_index = index;
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    for (int attempt = 1; attempt <= o_.retry.max_attempts; ++attempt) {
      if (stop_) {
        out.failure.message = "not sent: the run stopped after a request that no retry can change";
        return out;
      }
      const HttpReply reply = client_.post_json(api_path(o_.api), body);
      ++requests_;
      out.failure.attempts = attempt;
      out.failure.status = reply.status;
      if (reply.status >= 200 && reply.status < 300) {
        try {
          out.response = parse_response(o_.api, reply.body);
          return out;
        } catch (const ResponseError& e) {
          out.failure.message = fmt::format("the server's answer is not an OpenAI response: {}", e.what());
          return out;  // the same server answers the same way again
        }
      }
      out.failure.message = reply.status == 0 ? reply.error : fmt::format("HTTP {}: {}", reply.status, server_error_message(reply.body));
      if (reply.status != 0 && !is_retryable_status(reply.status)) {
        out.fatal = is_fatal_status(reply.status);
        return out;
      }
      if (attempt == o_.retry.max_attempts) break;
      ++retries_;
      const double delay = backoff_seconds(o_.retry, attempt, uniform(rng), reply.retry_after_s);
      if (o_.sleep) {
        o_.sleep(delay);
      } else {  // in slices, so that a stopped run does not wait out a long backoff
        using Clock = std::chrono::steady_clock;
        const Clock::time_point until = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(delay));
        while (!stop_ && Clock::now() < until)
          std::this_thread::sleep_for(std::min<Clock::duration>(until - Clock::now(), std::chrono::milliseconds(100)));
      }
    }
    return out;
  }

  const EndpointSamplerOptions& o_;
  size_t prompt_count_;
  std::atomic<bool>& stop_;
  std::atomic<int64_t>& requests_;
  std::atomic<int64_t>& retries_;
  OpenAIClient client_;
};

std::vector<json> prompt_records(const EndpointSamplerOptions& o, size_t index, const EndpointPrompt& p, const PromptOutcome& outcome) {
  std::vector<json> records;
  for (size_t k = 0; k < outcome.choices.size(); ++k) {
    const ResponseChoice& c = outcome.choices[k];
    const std::string reasoning = c.reasoning_content.value_or("");
    json r = p.record.is_object() ? p.record : json::object();
    r["prompt"] = p.messages.is_null() ? json(p.text) : p.messages;
    r["completion"] = completion_with_reasoning(o.reasoning_template, c.content, reasoning);
    r["content"] = c.content;
    r["reasoning_content"] = reasoning;
    if (o.api == ApiKind::Chat) {
      json messages = PromptRequester::chat_messages(p);
      json assistant = {{"role", "assistant"}, {"content", c.content}};
      if (!reasoning.empty()) assistant["reasoning_content"] = reasoning;
      messages.push_back(std::move(assistant));
      r["messages"] = std::move(messages);
    }
    r["finish_reason"] = c.finish_reason;
    r["completion_tokens"] = outcome.completion_tokens[k];
    r["prompt_index"] = static_cast<int64_t>(index);
    r["sample_index"] = static_cast<int64_t>(k);
    records.push_back(std::move(r));
  }
  return records;
}

}  // namespace

std::string describe_failure(const PromptFailure& f) {
  return fmt::format("prompt {} (prompt_index {}) failed after {} {}: {}", f.prompt_index + 1, f.prompt_index, f.attempts,
                     f.attempts == 1 ? "try" : "tries", f.message);
}

std::string completion_with_reasoning(const std::string& reasoning_template, const std::string& content,
                                      const std::string& reasoning) {
  if (reasoning.empty()) return content;
  std::string out;
  for (size_t i = 0; i < reasoning_template.size();) {
    if (reasoning_template.compare(i, 11, "{reasoning}") == 0) {
      out += reasoning;
      i += 11;
    } else if (reasoning_template.compare(i, 9, "{content}") == 0) {
      out += content;
      i += 9;
    } else {
      out += reasoning_template[i++];
    }
  }
  return out;
}

EndpointSampleResult sample_endpoint(const std::vector<EndpointPrompt>& prompts, const EndpointSamplerOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  parse_endpoint_url(options.url);  // a malformed URL fails before anything is read or written
  if (options.concurrency < 1) throw EndpointSamplingError(fmt::format("concurrency must be >= 1, got {}", options.concurrency));
  if (options.request.n < 1) throw EndpointSamplingError(fmt::format("n must be >= 1, got {}", options.request.n));
  if (options.retry.max_attempts < 1)
    throw EndpointSamplingError(fmt::format("max_attempts must be >= 1, got {}", options.retry.max_attempts));
  if (options.api == ApiKind::Completions)
    for (size_t i = 0; i < prompts.size(); ++i)
      if (!prompts[i].messages.is_null())
        throw EndpointSamplingError(fmt::format("prompt {} is a message list: the completions API takes text; use the chat API", i + 1));

  EndpointSampleResult result;
  result.prompts = prompts.size();
  std::optional<ResumableSampleFile> file;
  std::map<int64_t, std::vector<json>> done;
  if (!options.out_path.empty()) {
    file.emplace(options.out_path, options.request.n);
    done = file->finished();
    for (const auto& [index, records] : done) {
      if (index < 0 || static_cast<size_t>(index) >= prompts.size())
        throw EndpointSamplingError(fmt::format("{}: prompt_index {} is past the {} prompts of the data: the file was written for "
                                                "other data (move it away to start over)",
                                                options.out_path, index, prompts.size()));
      const EndpointPrompt& p = prompts[static_cast<size_t>(index)];
      const json expected = p.messages.is_null() ? json(p.text) : p.messages;
      if (records.front().value("prompt", json()) != expected)
        throw EndpointSamplingError(fmt::format("{}: the records of prompt_index {} answer another prompt than the data's {}: the "
                                                "file was written for other data (move it away to start over)",
                                                options.out_path, index, expected.dump().substr(0, 200)));
    }
    result.resumed = done.size();
  }
  std::vector<size_t> todo;
  for (size_t i = 0; i < prompts.size(); ++i)
    if (!done.count(static_cast<int64_t>(i))) todo.push_back(i);
  result.requested = todo.size();

  std::mutex mutex;  // guards everything below that the workers share
  std::atomic<size_t> next{0};
  std::atomic<bool> stop{false};
  std::atomic<int64_t> requests{0}, retries{0};
  std::optional<PromptFailure> fatal;
  std::exception_ptr error;
  size_t settled = result.resumed;
  auto work = [&] {
    try {
      PromptRequester requester(options, prompts.size(), stop, requests, retries);
      for (size_t k = next++; k < todo.size() && !stop; k = next++) {
        const size_t i = todo[k];
        const PromptOutcome outcome = requester.sample(i, prompts[i]);
        std::lock_guard<std::mutex> lock(mutex);
        if (outcome.failure) {
          result.failures.push_back(*outcome.failure);
          if (outcome.fatal && !fatal) {
            fatal = outcome.failure;
            stop = true;
          }
        } else {
          std::vector<json> records = prompt_records(options, i, prompts[i], outcome);
          if (options.finish_records) options.finish_records(records);
          if (file) file->append(records);
          for (int64_t t : outcome.completion_tokens) result.completion_tokens += t;
          done[static_cast<int64_t>(i)] = std::move(records);
        }
        ++settled;
        if (options.progress) options.progress(settled, prompts.size());
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex);
      if (!error) error = std::current_exception();
      stop = true;
    }
  };
  std::vector<std::thread> workers;
  const size_t count = std::min<size_t>(static_cast<size_t>(options.concurrency), todo.size());
  for (size_t w = 0; w < count; ++w) workers.emplace_back(work);
  for (std::thread& t : workers) t.join();
  result.http_requests = requests;
  result.retries = retries;
  if (error) std::rethrow_exception(error);
  std::sort(result.failures.begin(), result.failures.end(),
            [](const PromptFailure& a, const PromptFailure& b) { return a.prompt_index < b.prompt_index; });
  if (fatal)
    throw EndpointSamplingError(fmt::format("{} ({} at {}; stopped: every other request would be refused alike)", describe_failure(*fatal),
                                            fatal->status == 404 ? "no such model or path" : "the API key was refused", options.url));
  if (!todo.empty() && result.failures.size() == todo.size())
    throw EndpointSamplingError(fmt::format("every one of the {} prompts sent to {} failed; the first: {}", todo.size(), options.url,
                                            describe_failure(result.failures.front())));

  for (auto& [index, records] : done)
    for (json& r : records) result.records.push_back(std::move(r));
  if (file) file->rewrite(result.records);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return result;
}

}  // namespace grpo::api
