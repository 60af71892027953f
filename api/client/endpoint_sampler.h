#pragma once
// Sampling a dataset's prompts from a model behind an OpenAI-compatible endpoint (a teacher served by
// vLLM, SGLang, Ollama, DeepSeek's API or `grpo serve`): one request per prompt asking for n choices,
// `concurrency` requests in flight, each retried with backoff (retry_policy.h), the records of each
// prompt appended to the output file as its response arrives (resumable_sample_file.h: a rerun requests
// only the prompts not yet in the file) and returned in prompt order.
//
// A record, per choice: the dataset record's fields, then
//   prompt             the prompt as given (a string, or the message list of a conversational record)
//   completion         what SFT trains on: `content` alone, or, when the server returned reasoning,
//                      reasoning_template filled in (default "<think>\n{reasoning}\n</think>\n\n{content}",
//                      DeepSeek-R1's and Qwen3's layout)
//   content, reasoning_content   the message's two parts as the server returned them ("" when absent)
//   messages           chat requests: the messages sent, then {"role": "assistant", "content",
//                      "reasoning_content"} (the latter only when there is reasoning)
//   finish_reason, completion_tokens (usage, shared over the choices: openai_request.h), prompt_index,
//   sample_index
// (these win over record fields of the same name).
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "api/client/openai_request.h"
#include "api/client/retry_policy.h"

namespace grpo::api {

struct EndpointPrompt {
  std::string text;        // the prompt of a text record (chat: sent as one user message)
  nlohmann::json messages;  // a conversational record's messages to answer (chat only); null for text
  nlohmann::json record;    // the dataset record, whose fields the output records keep
};

struct EndpointSamplerOptions {
  std::string url;      // base URL, e.g. "http://127.0.0.1:8000/v1"
  std::string api_key;  // empty: no Authorization header
  ApiKind api = ApiKind::Chat;
  SamplingRequest request;  // its seed, when set, is prompt i's seed minus i: prompt i sends seed + i
  int64_t concurrency = 8;
  double timeout_s = 600;  // per request: connecting, and each wait for the server's bytes
  RetryPolicy retry;
  uint64_t jitter_seed = 0;  // the backoff jitter's random numbers (one stream per prompt)
  std::string reasoning_template = "<think>\n{reasoning}\n</think>\n\n{content}";
  std::string out_path;  // empty: nothing is written and nothing resumed
  // Called with each prompt's records before they are written, one prompt at a time (never
  // concurrently): the caller scores them here. May be empty.
  std::function<void(std::vector<nlohmann::json>& records)> finish_records;
  // Called after each prompt (done or failed), one at a time: prompts settled so far, of the total.
  std::function<void(size_t settled, size_t total)> progress;
  // How the workers wait between tries; tests record the delays instead.
  std::function<void(double seconds)> sleep;
};

// A prompt whose request failed for good: its 0-based index, the last status (0: no response) and the
// server's message (or the connection error), and the tries made.
struct PromptFailure {
  size_t prompt_index = 0;
  int status = 0;
  std::string message;
  int attempts = 0;
};

struct EndpointSampleResult {
  std::vector<nlohmann::json> records;  // prompt by prompt, sample by sample; failed prompts absent
  size_t prompts = 0;
  size_t resumed = 0;    // prompts found finished in the output file
  size_t requested = 0;  // prompts sent this run
  std::vector<PromptFailure> failures;  // by prompt index
  int64_t http_requests = 0;  // every try, retries included
  int64_t retries = 0;
  int64_t completion_tokens = 0;  // of this run's responses
  double seconds = 0;
};

// "prompt 3 (prompt_index 2) failed after 6 tries: HTTP 500: overloaded".
std::string describe_failure(const PromptFailure& failure);

// Thrown when the run cannot go on: every prompt sent failed, a status no retry can change (401 or
// 403: the key is refused; 404: no such model or path) stopped it, or the resumed file was written for
// other prompts. The message names the prompt index, status and the server's message.
struct EndpointSamplingError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The completion text of a choice: `content`, or the template filled with reasoning and content.
std::string completion_with_reasoning(const std::string& reasoning_template, const std::string& content,
                                      const std::string& reasoning);

// Samples every prompt as described above. Throws EndpointError for a malformed URL,
// SampleFileError for an unreadable output file, EndpointSamplingError as above.
EndpointSampleResult sample_endpoint(const std::vector<EndpointPrompt>& prompts, const EndpointSamplerOptions& options);

}  // namespace grpo::api
