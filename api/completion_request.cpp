#include "api/completion_request.h"

#include <fmt/core.h>

#include <cmath>
#include <functional>
#include <map>

#include "api/openai_errors.h"

namespace grpo::api {
namespace {

const char* json_type(const nlohmann::json& v) {
  if (v.is_boolean()) return "a boolean";
  if (v.is_number_integer()) return "an integer";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  if (v.is_object()) return "an object";
  return "null";
}

ApiError wrong_type(const std::string& name, const char* expected, const nlohmann::json& v) {
  return invalid_request(fmt::format("'{}' must be {}, not {}", name, expected, json_type(v)), name);
}

bool read_bool(const nlohmann::json& v, const std::string& name) {
  if (!v.is_boolean()) throw wrong_type(name, "a boolean", v);
  return v.get<bool>();
}

int64_t read_int(const nlohmann::json& v, const std::string& name, int64_t lo, int64_t hi) {
  if (!v.is_number_integer()) throw wrong_type(name, "an integer", v);
  // Unsigned JSON numbers above INT64_MAX are out of range too.
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
    throw invalid_request(fmt::format("'{}' is {}; expected {} to {}", name, v.dump(), lo, hi), name);
  const int64_t x = v.get<int64_t>();
  if (x < lo || x > hi) throw invalid_request(fmt::format("'{}' is {}; expected {} to {}", name, x, lo, hi), name);
  return x;
}

double read_number(const nlohmann::json& v, const std::string& name, double lo, double hi, bool lo_open = false) {
  if (!v.is_number()) throw wrong_type(name, "a number", v);
  const double x = v.get<double>();
  if (!std::isfinite(x) || x > hi || (lo_open ? x <= lo : x < lo))
    throw invalid_request(fmt::format("'{}' is {}; expected {} {} to {}", name, x, lo_open ? "above" : "from", lo, hi), name);
  return x;
}

std::string read_string(const nlohmann::json& v, const std::string& name) {
  if (!v.is_string()) throw wrong_type(name, "a string", v);
  return v.get<std::string>();
}

// A field accepted only at the value that leaves the output as it is.
void require_neutral(const nlohmann::json& v, const std::string& name, const nlohmann::json& neutral, const char* why) {
  if (v != neutral)
    throw invalid_request(fmt::format("'{}' = {} is not supported ({}); only {} is", name, v.dump(), why, neutral.dump()), name);
}

std::vector<std::string> read_stop(const nlohmann::json& v) {
  std::vector<std::string> stop;
  if (v.is_string()) {
    stop.push_back(v.get<std::string>());
  } else if (v.is_array()) {
    if (v.size() > 16) throw invalid_request(fmt::format("'stop' has {} strings; at most 16 are supported", v.size()), "stop");
    for (size_t i = 0; i < v.size(); ++i) stop.push_back(read_string(v[i], fmt::format("stop[{}]", i)));
  } else {
    throw wrong_type("stop", "a string or an array of strings", v);
  }
  for (const std::string& s : stop)
    if (s.empty()) throw invalid_request("'stop' strings must not be empty", "stop");
  return stop;
}

std::string read_content(const nlohmann::json& v, const std::string& name) {
  if (v.is_null()) return "";  // an assistant turn with tool calls only
  if (v.is_string()) return v.get<std::string>();
  if (!v.is_array()) throw wrong_type(name, "a string or an array of content parts", v);
  std::string text;
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string part = fmt::format("{}[{}]", name, i);
    if (!v[i].is_object()) throw wrong_type(part, "an object", v[i]);
    const std::string type = v[i].contains("type") ? read_string(v[i]["type"], part + ".type") : "";
    if (type != "text")
      throw invalid_request(fmt::format("'{}.type' is \"{}\": only text parts are supported", part, type), part + ".type");
    if (!v[i].contains("text")) throw invalid_request(fmt::format("'{}' has no 'text'", part), part + ".text");
    text += read_string(v[i]["text"], part + ".text");
  }
  return text;
}

RequestMessage read_message(const nlohmann::json& v, const std::string& name) {
  if (!v.is_object()) throw wrong_type(name, "an object", v);
  RequestMessage m;
  if (!v.contains("role")) throw invalid_request(fmt::format("'{}' has no 'role'", name), name + ".role");
  m.role = read_string(v["role"], name + ".role");
  if (m.role == "developer") m.role = "system";  // OpenAI's newer name for the system turn
  if (m.role != "system" && m.role != "user" && m.role != "assistant" && m.role != "tool")
    throw invalid_request(fmt::format("'{}.role' is \"{}\"; expected system, developer, user, assistant or tool", name, m.role),
                          name + ".role");
  for (const auto& [key, value] : v.items()) {
    const std::string field = name + "." + key;
    if (key == "role") continue;
    if (value.is_null()) continue;
    if (key == "content") {
      m.content = read_content(value, field);
    } else if (key == "reasoning_content") {
      m.reasoning_content = read_string(value, field);
    } else if (key == "name" || key == "tool_call_id") {
      read_string(value, field);  // accepted; templates do not use them
    } else if (key == "tool_calls") {
      if (!value.is_array() || !value.empty()) throw invalid_request(fmt::format("'{}': tool calls are not supported", field), field);
    } else {
      throw invalid_request(fmt::format("Unknown field '{}'", field), field);
    }
  }
  if (!v.contains("content") && m.role != "assistant") throw invalid_request(fmt::format("'{}' has no 'content'", name), name + ".content");
  return m;
}

}  // namespace

CompletionRequest parse_completion_request(RequestKind kind, const std::string& body, const RequestLimits& limits) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(body);
  } catch (const nlohmann::json::parse_error& e) {
    throw invalid_request(fmt::format("The body is not valid JSON: {}", e.what()));
  }
  if (!j.is_object()) throw invalid_request(fmt::format("The body must be a JSON object, not {}", json_type(j)));
  const bool chat = kind == RequestKind::ChatCompletions;
  CompletionRequest r;
  r.kind = kind;
  bool has_model = false, has_input = false;
  std::optional<int64_t> max_tokens, max_completion_tokens, best_of;
  std::optional<bool> chat_logprobs;
  std::optional<int64_t> top_logprobs;
  for (const auto& [key, v] : j.items()) {
    if (v.is_null()) continue;  // clients send null for "not given"
    if (key == "model") {
      r.model = read_string(v, key);
      has_model = true;
    } else if (key == "n") {
      r.n = read_int(v, key, 1, limits.max_n);
    } else if (key == "temperature") {
      r.temperature = read_number(v, key, 0.0, 2.0);
    } else if (key == "top_p") {
      r.top_p = read_number(v, key, 0.0, 1.0, /*lo_open=*/true);
    } else if (key == "top_k") {
      r.top_k = read_int(v, key, -1, INT32_MAX);
      if (r.top_k < 0) r.top_k = 0;  // vLLM: -1 = off
    } else if (key == "min_p") {
      r.min_p = read_number(v, key, 0.0, 1.0);
    } else if (key == "max_tokens") {
      max_tokens = read_int(v, key, 1, INT32_MAX);
    } else if (chat && key == "max_completion_tokens") {
      max_completion_tokens = read_int(v, key, 1, INT32_MAX);
    } else if (key == "stop") {
      r.stop = read_stop(v);
    } else if (key == "seed") {
      if (!v.is_number_integer()) throw wrong_type(key, "an integer", v);
      r.seed = v.is_number_unsigned() ? v.get<uint64_t>() : static_cast<uint64_t>(v.get<int64_t>());
    } else if (key == "ignore_eos") {
      r.ignore_eos = read_bool(v, key);
    } else if (key == "stream") {
      r.stream = read_bool(v, key);
    } else if (key == "stream_options") {
      if (!v.is_object()) throw wrong_type(key, "an object", v);
      for (const auto& [k2, v2] : v.items()) {
        if (k2 == "include_usage")
          r.include_usage = v2.is_null() ? false : read_bool(v2, "stream_options.include_usage");
        else
          throw invalid_request(fmt::format("Unknown field 'stream_options.{}'", k2), "stream_options." + k2);
      }
    } else if (key == "user") {
      read_string(v, key);
    } else if (key == "presence_penalty" || key == "frequency_penalty") {
      require_neutral(v.is_number() ? nlohmann::json(v.get<double>()) : v, key, 0.0, "the sampler applies no penalties");
    } else if (key == "repetition_penalty") {
      require_neutral(v.is_number() ? nlohmann::json(v.get<double>()) : v, key, 1.0, "the sampler applies no penalties");
    } else if (key == "logit_bias") {
      require_neutral(v, key, nlohmann::json::object(), "the sampler applies no biases");
    } else if (chat && key == "messages") {
      if (!v.is_array()) throw wrong_type(key, "an array of messages", v);
      if (v.empty()) throw invalid_request("'messages' is empty", key);
      for (size_t i = 0; i < v.size(); ++i) r.messages.push_back(read_message(v[i], fmt::format("messages[{}]", i)));
      has_input = true;
    } else if (chat && key == "logprobs") {
      chat_logprobs = read_bool(v, key);
    } else if (chat && key == "top_logprobs") {
      top_logprobs = read_int(v, key, 0, 20);
    } else if (chat && key == "response_format") {
      if (!v.is_object() || !v.contains("type") || v["type"] != "text")
        throw invalid_request("'response_format' is not supported except {\"type\": \"text\"}", key);
    } else if (chat && key == "tools") {
      require_neutral(v, key, nlohmann::json::array(), "tool calling is not supported");
    } else if (chat && key == "tool_choice") {
      if (v != "none" && v != "auto") throw invalid_request("'tool_choice' is not supported except \"none\" and \"auto\"", key);
    } else if (chat && key == "parallel_tool_calls") {
      read_bool(v, key);
    } else if (key == "store") {
      require_neutral(v, key, false, "nothing is stored");
    } else if (key == "metadata") {
      if (!v.is_object()) throw wrong_type(key, "an object", v);
    } else if (key == "service_tier") {
      read_string(v, key);
    } else if (chat && key == "add_generation_prompt") {
      r.add_generation_prompt = read_bool(v, key);
    } else if (chat && key == "chat_template_kwargs") {
      if (!v.is_object()) throw wrong_type(key, "an object", v);
      r.chat_template_kwargs = v;
    } else if (!chat && key == "prompt") {
      if (v.is_string()) {
        r.prompt = v.get<std::string>();
      } else if (v.is_array() && v.size() == 1 && v[0].is_string()) {
        r.prompt = v[0].get<std::string>();
      } else if (v.is_array() && !v.empty() && v[0].is_number_integer()) {
        std::vector<int32_t> ids;
        for (size_t i = 0; i < v.size(); ++i) ids.push_back(static_cast<int32_t>(read_int(v[i], fmt::format("prompt[{}]", i), 0, INT32_MAX)));
        r.prompt_ids = ids;
      } else if (v.is_array()) {
        throw invalid_request("'prompt' must be a string, one string in an array, or an array of token ids (send one request "
                              "per prompt)",
                              key);
      } else {
        throw wrong_type(key, "a string or an array of token ids", v);
      }
      has_input = true;
    } else if (!chat && key == "logprobs") {
      top_logprobs = read_int(v, key, 0, 5);
      chat_logprobs = true;
    } else if (!chat && key == "echo") {
      require_neutral(v, key, false, "the prompt is not echoed");
    } else if (!chat && key == "best_of") {
      best_of = read_int(v, key, 1, limits.max_n);
    } else if (!chat && key == "suffix") {
      require_neutral(v, key, "", "insertion is not supported");
    } else {
      throw invalid_request(fmt::format("Unknown field '{}'", key), key);
    }
  }
  if (!has_model) throw invalid_request("'model' is required", "model");
  if (!has_input) throw invalid_request(chat ? "'messages' is required" : "'prompt' is required", chat ? "messages" : "prompt");
  if (best_of && *best_of != r.n) throw invalid_request("'best_of' is supported only equal to 'n'", "best_of");
  if (r.prompt_ids && r.prompt_ids->empty()) throw invalid_request("'prompt' is empty", "prompt");
  r.max_tokens = max_completion_tokens ? max_completion_tokens : max_tokens;
  if (chat_logprobs) r.logprobs = *chat_logprobs;
  if (top_logprobs) {
    if (chat && !r.logprobs && *top_logprobs > 0)
      throw invalid_request("'top_logprobs' needs 'logprobs': true", "top_logprobs");
    r.top_logprobs = *top_logprobs;
  }
  if (r.include_usage && !r.stream) throw invalid_request("'stream_options' is only allowed with 'stream': true", "stream_options");
  return r;
}

}  // namespace grpo::api
