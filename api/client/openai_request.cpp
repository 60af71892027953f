#include "api/client/openai_request.h"

#include <fmt/core.h>

#include <algorithm>
#include <numeric>

namespace grpo::api {

using nlohmann::json;

const char* api_path(ApiKind api) { return api == ApiKind::Chat ? "/chat/completions" : "/completions"; }

namespace {

json sampling_fields(const SamplingRequest& r) {
  json body = {{"model", r.model}, {"n", r.n}, {"temperature", r.temperature}, {"top_p", r.top_p}, {"max_tokens", r.max_tokens}};
  if (!r.stop.empty()) body["stop"] = r.stop;
  if (r.seed) body["seed"] = *r.seed;
  if (r.top_k > 0) body["top_k"] = r.top_k;
  return body;
}

// A string field of an object, or nullopt when it is absent or null; ResponseError when it is another type.
std::optional<std::string> optional_string(const json& object, const char* key, const std::string& where) {
  if (!object.contains(key) || object[key].is_null()) return std::nullopt;
  if (!object[key].is_string())
    throw ResponseError(fmt::format("{}.{} must be a string, got {}", where, key, object[key].dump()));
  return object[key].get<std::string>();
}

}  // namespace

json chat_request_body(const SamplingRequest& request, const json& messages) {
  json body = sampling_fields(request);
  body["messages"] = messages;
  return body;
}

json completion_request_body(const SamplingRequest& request, const std::string& prompt) {
  json body = sampling_fields(request);
  body["prompt"] = prompt;
  return body;
}

ParsedResponse parse_response(ApiKind api, const std::string& body) {
  const json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    const std::string start = body.substr(0, 120);
    throw ResponseError(fmt::format("the response is not JSON ({} bytes, starting \"{}\")", body.size(), start));
  }
  if (!j.is_object() || !j.contains("choices") || !j["choices"].is_array())
    throw ResponseError(fmt::format("the response has no \"choices\" list: {}", j.dump().substr(0, 300)));
  ParsedResponse out;
  for (size_t k = 0; k < j["choices"].size(); ++k) {
    const json& c = j["choices"][k];
    const std::string where = fmt::format("choices[{}]", k);
    if (!c.is_object()) throw ResponseError(fmt::format("{} must be an object, got {}", where, c.dump()));
    ResponseChoice choice;
    choice.index = c.contains("index") && c["index"].is_number_integer() ? c["index"].get<int64_t>() : static_cast<int64_t>(k);
    choice.finish_reason = optional_string(c, "finish_reason", where).value_or("");
    if (api == ApiKind::Chat) {
      if (!c.contains("message") || !c["message"].is_object())
        throw ResponseError(fmt::format("{} has no \"message\" object", where));
      const json& m = c["message"];
      choice.content = optional_string(m, "content", where + ".message").value_or("");
      choice.reasoning_content = optional_string(m, "reasoning_content", where + ".message");
      if (!choice.reasoning_content) choice.reasoning_content = optional_string(m, "reasoning", where + ".message");
    } else {
      const std::optional<std::string> text = optional_string(c, "text", where);
      if (!text) throw ResponseError(fmt::format("{} has no \"text\"", where));
      choice.content = *text;
    }
    out.choices.push_back(std::move(choice));
  }
  std::stable_sort(out.choices.begin(), out.choices.end(),
                   [](const ResponseChoice& a, const ResponseChoice& b) { return a.index < b.index; });
  if (j.contains("usage") && j["usage"].is_object() && j["usage"].contains("completion_tokens") &&
      j["usage"]["completion_tokens"].is_number_integer())
    out.completion_tokens = j["usage"]["completion_tokens"].get<int64_t>();
  return out;
}

std::string server_error_message(const std::string& body) {
  const json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object()) {
    if (j.contains("error")) {
      const json& e = j["error"];
      if (e.is_object() && e.contains("message") && e["message"].is_string()) return e["message"].get<std::string>();
      if (e.is_string()) return e.get<std::string>();
    }
    for (const char* key : {"message", "detail"})
      if (j.contains(key) && j[key].is_string()) return j[key].get<std::string>();
  }
  return body.size() > 300 ? body.substr(0, 300) + "..." : body;
}

std::vector<int64_t> share_completion_tokens(int64_t total, const std::vector<ResponseChoice>& choices) {
  std::vector<int64_t> shares(choices.size(), 0);
  if (choices.empty()) return shares;
  std::vector<double> weights;
  for (const ResponseChoice& c : choices)
    weights.push_back(static_cast<double>(c.content.size() + (c.reasoning_content ? c.reasoning_content->size() : 0)));
  double sum = std::accumulate(weights.begin(), weights.end(), 0.0);
  if (sum == 0) {  // nothing to weigh by: equal shares
    std::fill(weights.begin(), weights.end(), 1.0);
    sum = static_cast<double>(weights.size());
  }
  std::vector<std::pair<double, size_t>> remainders;
  int64_t given = 0;
  for (size_t k = 0; k < choices.size(); ++k) {
    const double exact = static_cast<double>(total) * weights[k] / sum;
    shares[k] = static_cast<int64_t>(exact);
    given += shares[k];
    remainders.push_back({exact - static_cast<double>(shares[k]), k});
  }
  std::stable_sort(remainders.begin(), remainders.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  for (size_t k = 0; given < total && k < remainders.size(); ++k, ++given) ++shares[remainders[k].second];
  return shares;
}

}  // namespace grpo::api
