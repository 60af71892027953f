#include "rl/experiment/conversation.h"

#include <fmt/core.h>

#include <fmt/format.h>

#include <optional>
#include <stdexcept>

#include "rl/experiment/stage_options.h"

namespace grpo {

using nlohmann::json;

namespace {

// Stands for a message's content while a role's format is split around it.
constexpr const char* kContentSentinel = "\x1f\x1e{content}\x1e\x1f";

std::vector<ChatMessage> message_list(const json& list, size_t record_number, const char* field) {
  if (!list.is_array())
    throw std::invalid_argument(fmt::format("record {}: \"{}\" must be a list of {{role, content}} messages", record_number, field));
  std::vector<ChatMessage> out;
  for (size_t k = 0; k < list.size(); ++k) {
    const json& m = list[k];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") || !m["content"].is_string())
      throw std::invalid_argument(fmt::format("record {}: {}[{}] must be {{role = \"...\", content = \"...\"}} (strings), got {}",
                                              record_number, field, k + 1, m.dump()));
    out.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
  }
  return out;
}

bool has_string_prompt(const json& record) { return record.contains("prompt") && record["prompt"].is_string(); }

}  // namespace

bool is_conversational(const json& record) {
  if (!record.is_object()) return false;
  if (record.contains("prompt") && record["prompt"].is_array()) return true;
  return record.contains("messages") && record["messages"].is_array() && !has_string_prompt(record);
}

json prompt_message_list(const json& record, size_t record_number) {
  const bool listed = record.contains("prompt") && record["prompt"].is_array();
  const char* field = listed ? "prompt" : "messages";
  json messages = record[field];
  size_t last_user = messages.size();
  for (size_t k = 0; k < messages.size(); ++k) {
    const json& m = messages[k];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") || !m["content"].is_string())
      throw std::invalid_argument(fmt::format("record {}: {}[{}] must be {{role = \"...\", content = \"...\"}} (strings), got {}",
                                              record_number, field, k + 1, m.dump()));
    if (m["role"] == "user") last_user = k;
  }
  if (listed) return messages;
  if (last_user == messages.size())
    throw std::invalid_argument(fmt::format("record {}: \"messages\" has no user turn to answer", record_number));
  messages.erase(messages.begin() + static_cast<std::ptrdiff_t>(last_user + 1), messages.end());
  return messages;
}

ConversationRenderer::ConversationRenderer(PromptTemplate chat_template, Tokenizer tokenizer)
    : template_(std::move(chat_template)), tokenizer_(std::move(tokenizer)) {
  if (template_.is_jinja()) return;  // a Jinja template is rendered whole (render_jinja)
  begin_ = template_.render({}, /*add_generation_prompt=*/false, tokenizer_);
  generation_prompt_ = template_.render({}, /*add_generation_prompt=*/true, tokenizer_).substr(begin_.size());
}

ConversationRenderer::RoleParts ConversationRenderer::role_parts(const std::string& role) const {
  const std::string text = template_.render({{role, kContentSentinel}}, /*add_generation_prompt=*/false, tokenizer_);
  const std::string sentinel = kContentSentinel;
  const size_t at = text.find(sentinel, begin_.size());
  if (at == std::string::npos) throw std::logic_error("the role format of " + role + " lost its content");
  return {text.substr(begin_.size(), at - begin_.size()), text.substr(at + sentinel.size())};
}

void ConversationRenderer::append(RenderedConversation& out, const std::string& text, bool allow_special, bool target) const {
  if (text.empty()) return;
  out.text += text;
  const std::vector<int32_t> ids = tokenizer_.encode(text, allow_special);
  out.ids.insert(out.ids.end(), ids.begin(), ids.end());
  out.assistant.insert(out.assistant.end(), ids.size(), target ? 1 : 0);
}

RenderedConversation ConversationRenderer::render_jinja(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                                        size_t trained_from) const {
  const std::string full = template_.render(messages, add_generation_prompt, tokenizer_);
  // A trained assistant turn k is what the conversation up to k adds to the turns before it with the
  // generation prompt: both renders must be prefixes of the whole, as they are for templates that
  // write turn after turn.
  std::vector<std::pair<size_t, size_t>> spans;  // [begin, end) of the trained turns in `full`
  for (size_t k = trained_from; k < messages.size(); ++k) {
    if (messages[k].role != "assistant") continue;
    const std::vector<ChatMessage> before(messages.begin(), messages.begin() + static_cast<std::ptrdiff_t>(k));
    const std::vector<ChatMessage> through(messages.begin(), messages.begin() + static_cast<std::ptrdiff_t>(k + 1));
    const std::string asked = template_.render(before, /*add_generation_prompt=*/true, tokenizer_);
    const std::string answered = template_.render(through, /*add_generation_prompt=*/false, tokenizer_);
    const bool nested = answered.size() > asked.size() && answered.compare(0, asked.size(), asked) == 0 &&
                        full.compare(0, answered.size(), answered) == 0 && (spans.empty() || asked.size() >= spans.back().second);
    if (!nested)
      throw std::invalid_argument(fmt::format(
          "message {}: this chat template does not write the conversation turn after turn (the text up to this "
          "assistant turn is not a prefix of the whole), so its assistant tokens cannot be told apart; give a JSON "
          "template (option \"template\", e.g. a built-in)",
          k + 1));
    spans.push_back({asked.size(), answered.size()});
  }
  RenderedConversation out;
  size_t at = 0;
  for (const auto& [first, last] : spans) {
    append(out, full.substr(at, first - at), /*allow_special=*/true, /*target=*/false);
    append(out, full.substr(first, last - first), /*allow_special=*/true, /*target=*/true);
    at = last;
  }
  append(out, full.substr(at), /*allow_special=*/true, /*target=*/false);
  return out;
}

RenderedConversation ConversationRenderer::render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                                  size_t trained_from) const {
  if (template_.is_jinja()) return render_jinja(messages, add_generation_prompt, trained_from);
  RenderedConversation out;
  append(out, begin_, /*allow_special=*/true, /*target=*/false);
  for (size_t k = 0; k < messages.size(); ++k) {
    const RoleParts parts = role_parts(messages[k].role);
    const bool target = k >= trained_from && messages[k].role == "assistant";
    append(out, parts.before, /*allow_special=*/true, /*target=*/false);
    append(out, messages[k].content, /*allow_special=*/false, target);
    append(out, parts.after, /*allow_special=*/true, target);
  }
  if (add_generation_prompt) append(out, generation_prompt_, /*allow_special=*/true, /*target=*/false);
  return out;
}

RenderedConversation ConversationRenderer::prompt(const json& record, size_t record_number) const {
  if (record.contains("prompt") && record["prompt"].is_array())
    return render(message_list(record["prompt"], record_number, "prompt"), /*add_generation_prompt=*/true, 0);
  std::vector<ChatMessage> messages = message_list(record.value("messages", json()), record_number, "messages");
  size_t last_user = messages.size();
  for (size_t k = 0; k < messages.size(); ++k)
    if (messages[k].role == "user") last_user = k;
  if (last_user == messages.size())
    throw std::invalid_argument(fmt::format("record {}: \"messages\" has no user turn to answer", record_number));
  messages.resize(last_user + 1);
  return render(messages, /*add_generation_prompt=*/true, 0);
}

SftExample ConversationRenderer::training_example(const json& record, size_t record_number) const {
  std::vector<ChatMessage> messages;
  size_t trained_from = 0;
  if (record.contains("prompt") && record["prompt"].is_array()) {
    messages = message_list(record["prompt"], record_number, "prompt");
    trained_from = messages.size();
    const json completion = record.value("completion", json());
    if (completion.is_string()) {
      messages.push_back({"assistant", completion.get<std::string>()});
    } else {
      for (ChatMessage& m : message_list(completion, record_number, "completion")) messages.push_back(std::move(m));
    }
  } else {
    messages = message_list(record.value("messages", json()), record_number, "messages");
  }
  const RenderedConversation r = render(messages, /*add_generation_prompt=*/false, trained_from);
  size_t first = 0;
  while (first < r.assistant.size() && !r.assistant[first]) ++first;
  if (first == r.assistant.size())
    throw std::invalid_argument(fmt::format("record {}: no assistant turn to learn from (SFT trains on assistant turns{})",
                                            record_number, trained_from > 0 ? " of \"completion\"" : ""));
  SftExample e;
  e.prompt_ids.assign(r.ids.begin(), r.ids.begin() + static_cast<std::ptrdiff_t>(first));
  e.completion_ids.assign(r.ids.begin() + static_cast<std::ptrdiff_t>(first), r.ids.end());
  e.completion_mask.assign(r.assistant.begin() + static_cast<std::ptrdiff_t>(first), r.assistant.end());
  return e;
}

namespace {

// The stage's template option, loaded; nullopt when the stage has no such option or it is not given.
std::optional<PromptTemplate> stage_template(StageOptions& o) {
  if (!stage_spec(o.stage()).find("template") || !o.has("template")) return std::nullopt;
  const std::string name = o.string("template");
  try {
    return PromptTemplate::load(name);
  } catch (const TokenizerError& e) {
    o.fail(fmt::format("option \"template\": {}", e.what()));
  }
}

}  // namespace

ConversationRenderer stage_conversation_renderer(StageOptions& o, const Tokenizer& tok, size_t record_number) {
  std::optional<PromptTemplate> chat = stage_template(o);
  // Without the option: the model's own chat template, as transformers' apply_chat_template uses it.
  if (!chat && stage_spec(o.stage()).find("model") && o.has("model")) {
    try {
      chat = PromptTemplate::from_checkpoint(o.string("model"));
    } catch (const TokenizerError& e) {
      o.fail(fmt::format("the chat template of the model {}: {}", o.string("model"), e.what()));
    }
  }
  if (!chat)
    o.fail(fmt::format("record {} is a conversation (a \"messages\" or \"prompt\" list), which needs a chat template: "
                       "the model has none, so give option \"template\": a built-in ({}), a template file or a "
                       "checkpoint directory",
                       record_number, fmt::join(PromptTemplate::builtin_names(), ", ")));
  return ConversationRenderer(std::move(*chat), tok);
}

std::vector<std::string> stage_template_stop_strings(StageOptions& o) {
  std::optional<PromptTemplate> chat = stage_template(o);
  return chat ? chat->stop_strings() : std::vector<std::string>{};
}

}  // namespace grpo
