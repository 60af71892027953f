#include "api/server/openai_server.h"

#include <fmt/core.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <cstring>
#include <ctime>
#include <random>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "api/completion_request.h"
#include "api/completion_response.h"
#include "api/openai_errors.h"
#include "api/server/prompt_builder.h"
#include "api/server/request_channel.h"
#include "api/server_sent_events.h"
#include "rollout/live_decode_loop.h"
#include "rollout/memory_budget.h"

namespace grpo::api {
namespace {

// How long a handler waits for its next event before it checks on its client (a stream writes a
// keep-alive comment, which fails once the client has gone).
constexpr std::chrono::milliseconds kEventWait{500};
// A client that accepts no bytes for this long is given up on.
constexpr int kWriteTimeoutSeconds = 10;

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(body(error_body(e)), "application/json");
  if (e.status == 429) res.set_header("Retry-After", "1");
}

uint64_t random_seed() {
  static thread_local std::random_device device;
  return (static_cast<uint64_t>(device()) << 32) ^ device();
}

// The token as text for log-prob entries: its bytes (special tokens: their text).
std::string token_text(const Tokenizer& tokenizer, int32_t id) {
  if (id < 0 || id >= tokenizer.vocab_size()) return "";
  return tokenizer.token_bytes(id);
}

TokenLogprobEntry logprob_entry(const Tokenizer& tokenizer, int32_t token, float logprob, const std::vector<TokenLogprob>& top) {
  TokenLogprobEntry e;
  e.token = token_text(tokenizer, token);
  e.logprob = logprob;
  for (const TokenLogprob& t : top) e.top.emplace_back(token_text(tokenizer, t.token), t.logprob);
  return e;
}

// cpp-httplib 0.11 listens with a backlog of 5 connections (CPPHTTPLIB_LISTEN_BACKLOG, fixed when
// the library was compiled): a burst of more simultaneous connections than that overflows the accept
// queue, and clients whose handshake the kernel dropped fail with a read error. The library does not
// expose its socket, so the listening socket on `port` is found among the process's descriptors and
// listen() is called again with a larger backlog (Linux allows changing it on a listening socket).
void widen_listen_backlog(int port) {
  constexpr int kBacklog = 1024;
  for (int fd = 0; fd < 4096; ++fd) {
    int listening = 0;
    socklen_t length = sizeof listening;
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) != 0 || !listening) continue;
    sockaddr_storage address{};
    socklen_t address_length = sizeof address;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &address_length) != 0) continue;
    int bound = -1;
    if (address.ss_family == AF_INET) bound = ntohs(reinterpret_cast<sockaddr_in*>(&address)->sin_port);
    if (address.ss_family == AF_INET6) bound = ntohs(reinterpret_cast<sockaddr_in6*>(&address)->sin6_port);
    if (bound == port) ::listen(fd, kBacklog);
  }
}

}  // namespace

struct OpenAIServer::Impl {
  // What a handler knows about the request it is answering.
  struct Answer {
    RequestKind kind = RequestKind::ChatCompletions;
    CompletionRequest request;
    std::string id;
    int64_t created = 0;
    int64_t prompt_tokens = 0;
    bool opens_reasoning = false;
    std::shared_ptr<RequestChannel> channel;
  };

  ServedModel served;
  ServerOptions options;
  std::unique_ptr<LiveDecodeLoop> loop;
  httplib::Server http;
  std::atomic<bool> stopping{false}, serving{false};
  std::atomic<int64_t> next_id{0};
  // Answers being written: shutdown waits for them to end before it closes the server, so that a
  // cancelled stream still sends its error event and [DONE].
  std::mutex in_flight_mutex;
  std::condition_variable in_flight_done;
  int64_t in_flight = 0;

  // Counts an answer from its start to the moment its response has been written (for a stream: when
  // the HTTP layer drops its content provider).
  struct InFlight {
    explicit InFlight(Impl& impl) : impl(impl) {
      std::lock_guard<std::mutex> lock(impl.in_flight_mutex);
      ++impl.in_flight;
    }
    ~InFlight() {
      std::lock_guard<std::mutex> lock(impl.in_flight_mutex);
      if (--impl.in_flight == 0) impl.in_flight_done.notify_all();
    }
    InFlight(const InFlight&) = delete;
    InFlight& operator=(const InFlight&) = delete;
    Impl& impl;
  };
  const int64_t started = static_cast<int64_t>(std::time(nullptr));

  Impl(ServedModel model, ServerOptions o) : served(std::move(model)), options(std::move(o)) {
    RolloutOptions ro;
    ro.max_batch_rows = options.max_batch_rows;
    ro.memory_budget_bytes = options.memory_budget_bytes;
    loop = std::make_unique<LiveDecodeLoop>(served.model, &served.tokenizer, ro, options.max_queue);
    routes();
  }

  bool authorized(const httplib::Request& req) const {
    if (options.api_key.empty()) return true;
    return req.get_header_value("Authorization") == "Bearer " + options.api_key;
  }

  void routes() {
    http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
      const nlohmann::json status = {{"status", stopping ? "shutting_down" : "ok"},
                                     {"waiting", loop->waiting()},
                                     {"live_rows", loop->live_rows()}};
      res.status = stopping ? 503 : 200;
      res.set_content(body(status), "application/json");
    });
    http.Get("/v1/models", [this](const httplib::Request& req, httplib::Response& res) {
      if (!authorized(req)) return send_error(res, invalid_api_key());
      res.set_content(body(model_list(served.name, started)), "application/json");
    });
    http.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
      answer(RequestKind::Completions, req, res);
    });
    http.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
      answer(RequestKind::ChatCompletions, req, res);
    });
    // Whatever the HTTP layer answers by itself (unknown path, oversized body, unreadable request)
    // gets an error body too.
    http.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;
      if (res.status == 404) return send_error(res, unknown_path(req.method, req.path));
      if (res.status == 413) return send_error(res, body_too_large(options.max_body_bytes));
      send_error(res, error_for_status(res.status));
    });
    http.set_payload_max_length(options.max_body_bytes);
    // One thread per connection in flight: enough for every request that can be decoding or waiting,
    // plus a few for requests that are answered at once (errors, /health).
    const size_t threads = static_cast<size_t>(std::min<int64_t>(options.max_batch_rows + options.max_queue + 8, 1024));
    http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    // Answers are written in pieces (headers, body; a stream's chunks): without Nagle's algorithm none
    // waits for the client's delayed ACK (40 ms per request on Linux).
    http.set_tcp_nodelay(true);
    http.set_keep_alive_timeout(2);  // bounds how long an idle connection delays shutdown
    http.set_read_timeout(30);
    http.set_write_timeout(kWriteTimeoutSeconds);
  }

  void answer(RequestKind kind, const httplib::Request& req, httplib::Response& res) {
    auto in_flight_token = std::make_shared<InFlight>(*this);
    try {
      if (!authorized(req)) throw invalid_api_key();
      if (stopping) throw shutting_down();
      Answer a;
      a.kind = kind;
      a.request = parse_completion_request(kind, req.body, {options.max_batch_rows});
      const CompletionRequest& r = a.request;
      if (r.model != served.name) throw model_not_found(r.model);
      BuiltPrompt prompt = build_prompt(r, served.tokenizer, served.chat_template ? &*served.chat_template : nullptr, served.reasoning);
      a.prompt_tokens = static_cast<int64_t>(prompt.ids.size());
      a.opens_reasoning = prompt.opens_reasoning;
      const int64_t context = served.context_length;
      const char* input = kind == RequestKind::ChatCompletions ? "messages" : "prompt";
      if (a.prompt_tokens >= context)
        throw context_length_exceeded(fmt::format("The prompt is {} tokens; the model's context holds {} tokens for the prompt "
                                                  "and the completion together",
                                                  a.prompt_tokens, context),
                                      input);
      const int64_t room = context - a.prompt_tokens;
      const int64_t max_new = r.max_tokens.value_or(room);
      if (max_new > room) {
        const char* field = kind == RequestKind::ChatCompletions ? "max_completion_tokens" : "max_tokens";
        throw invalid_request(fmt::format("'{}' is {}, but the prompt's {} tokens leave room for {} in the model's context of {}",
                                          field, max_new, a.prompt_tokens, room, context),
                              field);
      }
      GenerationRequest g;
      g.prompt.prompt_ids = std::move(prompt.ids);
      g.prompt.num_samples = r.n;
      g.prompt.seed = r.seed ? *r.seed : random_seed();
      g.sampling = {r.temperature, r.top_k, r.top_p, r.min_p};
      g.stop = std::move(prompt.stop);
      g.stop.max_new_tokens = max_new;
      g.top_logprobs = r.logprobs ? r.top_logprobs : 0;
      g.stream = r.stream;
      a.channel = std::make_shared<RequestChannel>(r.n);
      g.sink = a.channel;
      switch (loop->submit(std::move(g))) {
        case LiveDecodeLoop::Submitted::Queued: break;
        case LiveDecodeLoop::Submitted::QueueFull: throw queue_full(options.max_queue);
        case LiveDecodeLoop::Submitted::Stopped: throw shutting_down();
      }
      a.created = static_cast<int64_t>(std::time(nullptr));
      a.id = fmt::format("{}-{:x}{:06x}", kind == RequestKind::ChatCompletions ? "chatcmpl" : "cmpl", a.created, next_id++);
      if (r.stream)
        stream_answer(std::move(a), res, std::move(in_flight_token));
      else
        whole_answer(a, res);
    } catch (const ApiError& e) {
      send_error(res, e);
    } catch (const MemoryBudgetExceeded& e) {
      send_error(res, ApiError(413, e.what(), "invalid_request_error", "max_tokens", "memory_budget_exceeded"));
    } catch (const std::invalid_argument& e) {
      send_error(res, invalid_request(e.what()));
    } catch (const std::exception& e) {
      send_error(res, server_error(e.what()));
    }
  }

  ChoiceResult choice_of(const Answer& a, const Completion& c) const {
    ChoiceResult choice;
    choice.index = c.sample_index;
    choice.finish_reason = to_string(c.finish_reason);
    if (a.kind == RequestKind::ChatCompletions && served.reasoning) {
      ReasoningParts parts = split_reasoning(c.text, *served.reasoning, a.opens_reasoning);
      choice.text = std::move(parts.content);
      choice.reasoning = std::move(parts.reasoning);
    } else {
      choice.text = c.text;
    }
    if (a.request.logprobs) {
      std::vector<TokenLogprobEntry> entries;
      for (size_t t = 0; t < c.completion_ids.size(); ++t)
        entries.push_back(logprob_entry(served.tokenizer, c.completion_ids[t], c.logprobs[t],
                                        t < c.top_logprobs.size() ? c.top_logprobs[t] : std::vector<TokenLogprob>{}));
      choice.logprobs = a.kind == RequestKind::ChatCompletions ? chat_logprobs(entries) : completion_logprobs(entries, 0);
    }
    return choice;
  }

  void whole_answer(const Answer& a, httplib::Response& res) {
    const int64_t n = a.request.n;
    std::vector<ChoiceResult> choices(static_cast<size_t>(n));
    UsageCounts usage{a.prompt_tokens, 0};
    for (int64_t got = 0; got < n;) {
      for (ChannelEvent& e : a.channel->wait(kEventWait)) {
        if (e.kind == ChannelEvent::Kind::Error) throw stopping ? shutting_down() : server_error(e.error);
        if (e.kind != ChannelEvent::Kind::Completion) continue;
        usage.completion_tokens += static_cast<int64_t>(e.completion.completion_ids.size());
        choices[static_cast<size_t>(e.completion.sample_index)] = choice_of(a, e.completion);
        ++got;
      }
    }
    res.set_content(body(completion_response(a.kind, a.id, a.created, served.name, choices, usage)), "application/json");
  }

  // The state of one stream between calls of its content provider.
  struct Stream {
    Answer answer;
    std::vector<std::optional<ReasoningSplitter>> splitters;  // chat with reasoning: one per choice
    std::vector<int64_t> text_offsets;                         // completions' log-prob text_offset
    int64_t completed = 0, completion_tokens = 0;
    bool started = false, ended = false;
  };

  // The chunk of one choice's new text (and its token's log-prob), or nothing when there is neither.
  std::string text_chunk(Stream& s, int64_t index, const std::string& text, const Json& logprobs) {
    const Answer& a = s.answer;
    if (a.kind == RequestKind::Completions) {
      if (text.empty() && logprobs.is_null()) return {};
      return sse_event(body(completion_chunk(a.id, a.created, served.name, index, text, std::nullopt, logprobs)));
    }
    ChunkDelta delta;
    if (s.splitters[static_cast<size_t>(index)]) {
      ReasoningParts parts = s.splitters[static_cast<size_t>(index)]->push(text);
      if (!parts.reasoning.empty()) delta.reasoning = std::move(parts.reasoning);
      if (!parts.content.empty()) delta.content = std::move(parts.content);
    } else if (!text.empty()) {
      delta.content = text;
    }
    if (!delta.content && !delta.reasoning && logprobs.is_null()) return {};
    return sse_event(body(chat_chunk(a.id, a.created, served.name, index, delta, std::nullopt, logprobs)));
  }

  // The events that arrived, as the stream's next bytes.
  std::string stream_events(Stream& s, std::vector<ChannelEvent>& events) {
    const Answer& a = s.answer;
    const bool chat = a.kind == RequestKind::ChatCompletions;
    std::string out;
    for (ChannelEvent& e : events) {
      if (e.kind == ChannelEvent::Kind::Error) {
        const ApiError error = stopping ? shutting_down() : server_error(e.error);
        out += sse_event(body(error_body(error)));
        out += kSseDone;
        s.ended = true;
        return out;
      }
      if (e.kind == ChannelEvent::Kind::Token) {
        const SampledToken& t = e.token;
        Json logprobs = nullptr;
        if (a.request.logprobs) {
          std::vector<TokenLogprobEntry> one = {logprob_entry(served.tokenizer, t.token, t.logprob, t.top)};
          int64_t& offset = s.text_offsets[static_cast<size_t>(t.sample_index)];
          logprobs = chat ? chat_logprobs(one) : completion_logprobs(one, offset);
          offset += static_cast<int64_t>(one[0].token.size());
        }
        out += text_chunk(s, t.sample_index, t.text, logprobs);
        continue;
      }
      // A finished choice: what its reasoning split held back, then its finish reason.
      const Completion& c = e.completion;
      const int64_t index = c.sample_index;
      if (chat && s.splitters[static_cast<size_t>(index)]) {
        ReasoningParts rest = s.splitters[static_cast<size_t>(index)]->finish();
        ChunkDelta delta;
        if (!rest.reasoning.empty()) delta.reasoning = rest.reasoning;
        if (!rest.content.empty()) delta.content = rest.content;
        if (delta.reasoning || delta.content)
          out += sse_event(body(chat_chunk(a.id, a.created, served.name, index, delta, std::nullopt)));
      }
      const std::string finish = to_string(c.finish_reason);
      out += chat ? sse_event(body(chat_chunk(a.id, a.created, served.name, index, ChunkDelta{}, finish)))
                  : sse_event(body(completion_chunk(a.id, a.created, served.name, index, "", finish)));
      s.completion_tokens += static_cast<int64_t>(c.completion_ids.size());
      ++s.completed;
    }
    if (s.completed == a.request.n) {
      if (a.request.include_usage)
        out += sse_event(body(usage_chunk(a.kind, a.id, a.created, served.name, {a.prompt_tokens, s.completion_tokens})));
      out += kSseDone;
      s.ended = true;
    }
    return out;
  }

  void stream_answer(Answer a, httplib::Response& res, std::shared_ptr<InFlight> in_flight_token) {
    auto s = std::make_shared<Stream>();
    const size_t n = static_cast<size_t>(a.request.n);
    s->splitters.resize(n);
    s->text_offsets.assign(n, 0);
    if (a.kind == RequestKind::ChatCompletions && served.reasoning)
      for (auto& splitter : s->splitters) splitter.emplace(*served.reasoning, a.opens_reasoning);
    s->answer = std::move(a);
    std::shared_ptr<RequestChannel> channel = s->answer.channel;
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, s](size_t, httplib::DataSink& sink) {
          std::string out;
          if (!s->started) {
            // Chat streams open each choice with the assistant's role, as OpenAI's do.
            if (s->answer.kind == RequestKind::ChatCompletions)
              for (int64_t i = 0; i < s->answer.request.n; ++i) {
                ChunkDelta delta;
                delta.role = "assistant";
                delta.content = "";
                out += sse_event(body(chat_chunk(s->answer.id, s->answer.created, served.name, i, delta, std::nullopt)));
              }
            s->started = true;
          } else {
            std::vector<ChannelEvent> events = s->answer.channel->wait(kEventWait);
            // Nothing new: a comment finds out whether the client is still there.
            out = events.empty() ? std::string(kSseKeepAlive) : stream_events(*s, events);
          }
          if (!out.empty() && !sink.write(out.data(), out.size())) return false;  // the client has gone
          if (s->ended) sink.done();
          return true;
        },
        // Called when the stream ends for any reason: a request whose client went away mid-stream is
        // cancelled, which frees its rows at the next decode step (a finished one is left alone).
        [channel, in_flight_token](bool) { channel->cancel(); });
  }

  void shutdown() {
    if (stopping.exchange(true)) return;
    loop->stop_accepting();  // new requests get 503 from here on
    if (!loop->wait_idle(static_cast<int64_t>(options.drain_seconds * 1000)))
      loop->cancel_all("the server is shutting down");
    {
      // The answers still being written end quickly now (a stream's last events, a 503); a client that
      // reads nothing is given up on after the write timeout.
      std::unique_lock<std::mutex> lock(in_flight_mutex);
      in_flight_done.wait_for(lock, std::chrono::seconds(kWriteTimeoutSeconds + 1), [&] { return in_flight == 0; });
    }
    // Waiting for serve() to be listening, so that stop() finds the socket open.
    for (int i = 0; i < 100 && serving && !http.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    http.stop();
  }
};

OpenAIServer::OpenAIServer(ServedModel model, ServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(model), std::move(options))) {}

OpenAIServer::~OpenAIServer() = default;

int OpenAIServer::bind() {
  const ServerOptions& o = impl_->options;
  int port = o.port;
  if (o.port == 0) {
    port = impl_->http.bind_to_any_port(o.host);
    if (port < 0) throw std::runtime_error(fmt::format("serve: cannot listen on {} (any port)", o.host));
  } else if (!impl_->http.bind_to_port(o.host, o.port)) {
    throw std::runtime_error(fmt::format("serve: cannot listen on {}:{} (in use, or not an address of this machine)", o.host, o.port));
  }
  widen_listen_backlog(port);
  return port;
}

void OpenAIServer::serve() {
  impl_->serving = true;
  if (!impl_->stopping) impl_->http.listen_after_bind();
  impl_->serving = false;
}

void OpenAIServer::shutdown() { impl_->shutdown(); }

std::optional<ReasoningMarkers> reasoning_markers_for(const std::string& option, const Tokenizer& tokenizer,
                                                      const PromptTemplate* chat_template) {
  if (option == "none") return std::nullopt;
  if (option != "auto") {
    ReasoningMarkers m;
    m.end = option;
    m.start = option;
    const size_t slash = m.start.find('/');
    if (slash != std::string::npos) m.start.erase(slash, 1);
    return m;
  }
  const ReasoningMarkers standard;
  if (tokenizer.token_to_id(standard.end) >= 0) return standard;
  if (chat_template) {
    try {
      ChatMessage probe;
      probe.role = "user";
      probe.content = "x";
      if (chat_template->render({probe}, /*add_generation_prompt=*/true, tokenizer).find(standard.start) != std::string::npos)
        return standard;
    } catch (const std::exception&) {
      // A template that cannot render a lone user message says nothing about thinking.
    }
  }
  return std::nullopt;
}

}  // namespace grpo::api
