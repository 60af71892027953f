// Conversational records (TRL's `messages` and prompt/completion message lists) rendered with a prompt
// template: the RL prompt is the conversation up to the last user turn plus the generation prompt; SFT
// trains every assistant turn and nothing else. A character-level tokenizer makes each character one
// token, so every id and loss-mask entry below is written out by hand.
#include <doctest/doctest.h>

#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "policy/tokenizer/prompt_template.h"
#include "rl/experiment/conversation.h"
#include "rl/sft.h"
#include "tokenizer_test_files.h"

using namespace grpo;
using nlohmann::json;

namespace {

// Specials <pad> <eos> <s> <u> <a> are ids 0..4; then one id per character of the alphabet.
Tokenizer conversation_tokenizer() { return Tokenizer::make_char_level("abcdefgh\n", {"<pad>", "<eos>", "<s>", "<u>", "<a>"}); }

const char* kConversationTemplate = R"({
  "begin": "",
  "roles": {"system": "<s>{content}\n", "user": "<u>{content}\n", "assistant": "<a>{content}{eos}"},
  "generation_prompt": "<a>",
  "stop": ["<u>"]
})";

ConversationRenderer conversation_renderer() {
  return ConversationRenderer(PromptTemplate::from_json(kConversationTemplate, "test template"), conversation_tokenizer());
}

// The ids of a text in which every character and every special is one token.
std::vector<int32_t> conversation_ids(const std::vector<std::string>& tokens) {
  const Tokenizer tok = conversation_tokenizer();
  std::vector<int32_t> ids;
  for (const std::string& t : tokens) ids.push_back(t.size() == 1 ? tok.encode(t, /*allow_special=*/false).at(0) : tok.token_to_id(t));
  return ids;
}

json conversation_message(const char* role, const char* content) { return {{"role", role}, {"content", content}}; }

}  // namespace

TEST_CASE("which records are conversations") {
  CHECK(is_conversational({{"messages", json::array({conversation_message("user", "a")})}}));
  CHECK(is_conversational({{"prompt", json::array({conversation_message("user", "a")})}, {"completion", "b"}}));
  // A sample record of a conversational dataset: its rendered prompt string makes it text again.
  CHECK_FALSE(is_conversational({{"messages", json::array({conversation_message("user", "a")})}, {"prompt", "<u>a\n<a>"}}));
  CHECK_FALSE(is_conversational({{"prompt", "a"}, {"completion", "b"}}));
  CHECK_FALSE(is_conversational({{"question", "a"}}));
}

TEST_CASE("the RL prompt of a multi-turn conversation ends at the last user turn, with the generation prompt") {
  const ConversationRenderer r = conversation_renderer();
  const json record = {{"messages", json::array({conversation_message("system", "ab"), conversation_message("user", "cd"), conversation_message("assistant", "ef"),
                                                 conversation_message("user", "g"), conversation_message("assistant", "h")})}};
  const RenderedConversation p = r.prompt(record, 1);
  CHECK(p.text == "<s>ab\n<u>cd\n<a>ef<eos><u>g\n<a>");
  CHECK(p.ids == conversation_ids({"<s>", "a", "b", "\n", "<u>", "c", "d", "\n", "<a>", "e", "f", "<eos>", "<u>", "g", "\n", "<a>"}));
  // The prompt form: the list as it is.
  const RenderedConversation q = r.prompt({{"prompt", json::array({conversation_message("user", "cd")})}}, 1);
  CHECK(q.text == "<u>cd\n<a>");
  CHECK_THROWS_WITH_AS(r.prompt({{"messages", json::array({conversation_message("system", "ab")})}}, 7),
                       doctest::Contains("record 7: \"messages\" has no user turn"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(r.prompt({{"messages", json::array({json{{"role", "user"}}})}}, 2),
                       doctest::Contains("record 2: messages[1] must be"), std::invalid_argument);
}

TEST_CASE("SFT on messages: every assistant turn is a target, system and user tokens never are") {
  const ConversationRenderer r = conversation_renderer();
  const json record = {{"messages", json::array({conversation_message("system", "ab"), conversation_message("user", "cd"), conversation_message("assistant", "ef"),
                                                 conversation_message("user", "g"), conversation_message("assistant", "h")})}};
  const SftExample e = r.training_example(record, 1);
  // Up to the first assistant content: <s>ab\n<u>cd\n<a>; then ef<eos> (trained), <u>g\n<a> (not), h<eos>.
  CHECK(e.prompt_ids == conversation_ids({"<s>", "a", "b", "\n", "<u>", "c", "d", "\n", "<a>"}));
  CHECK(e.completion_ids == conversation_ids({"e", "f", "<eos>", "<u>", "g", "\n", "<a>", "h", "<eos>"}));
  CHECK(e.completion_mask == std::vector<uint8_t>{1, 1, 1, 0, 0, 0, 0, 1, 1});

  // The batch row: column j predicts token j + 1; the loss mask is 1 exactly where that token is trained.
  const SftBatch batch = build_sft_batch({&e}, /*max_len=*/64, /*pack=*/false, /*pad_id=*/0);
  const std::vector<int32_t> all = conversation_ids({"<s>", "a", "b", "\n", "<u>", "c", "d", "\n", "<a>", "e", "f", "<eos>",
                                                     "<u>", "g", "\n", "<a>", "h", "<eos>"});
  const std::vector<float> expected_mask = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 1, 1};  // targets all[1..17]
  REQUIRE(batch.loss_mask.size(1) == 17);
  for (int64_t j = 0; j < 17; ++j) {
    CHECK(batch.targets[0][j].item<int64_t>() == all[static_cast<size_t>(j) + 1]);
    CHECK(batch.loss_mask[0][j].item<float>() == expected_mask[static_cast<size_t>(j)]);
  }
}

TEST_CASE("SFT on prompt/completion lists: only the completion's assistant turns; a string completion is one turn") {
  const ConversationRenderer r = conversation_renderer();
  // A few-shot prompt: its assistant turn is context.
  const json few_shot = {{"prompt", json::array({conversation_message("user", "a"), conversation_message("assistant", "b"), conversation_message("user", "c")})},
                         {"completion", json::array({conversation_message("assistant", "d")})}};
  const SftExample e = r.training_example(few_shot, 1);
  CHECK(e.prompt_ids == conversation_ids({"<u>", "a", "\n", "<a>", "b", "<eos>", "<u>", "c", "\n", "<a>"}));
  CHECK(e.completion_ids == conversation_ids({"d", "<eos>"}));
  CHECK(e.completion_mask == std::vector<uint8_t>{1, 1});
  const SftExample s = r.training_example({{"prompt", json::array({conversation_message("user", "a")})}, {"completion", "bc"}}, 1);
  CHECK(s.completion_ids == conversation_ids({"b", "c", "<eos>"}));
  CHECK_THROWS_WITH_AS(r.training_example({{"messages", json::array({conversation_message("user", "a")})}}, 3),
                       doctest::Contains("record 3: no assistant turn"), std::invalid_argument);
  // A message cannot forge a marker: "<a>" inside a content is three characters (here unknown ones).
  const RenderedConversation forged = r.render({{"user", "<a>"}}, /*add_generation_prompt=*/false, 0);
  CHECK(forged.ids.size() == 1 + 3 + 1);
}

TEST_CASE("an SFT example's completion_mask must match its completion") {
  SftExample e{{1, 2}, {3, 4}, {1}};
  CHECK_THROWS_AS(build_sft_batch({&e}, 8, false, 0), std::invalid_argument);
}

TEST_CASE("conversations of real tokenizers: the text transformers renders, and part-wise ids equal the whole text's") {
  // tests/fixtures/tokenizer/chat_templates.jsonl holds apply_chat_template(..., add_generation_prompt=True)
  // of real chat templates; encoding the rendered text in one piece is what transformers then does.
  std::ifstream in(std::string(GRPO_SOURCE_DIR) + "/tests/fixtures/tokenizer/chat_templates.jsonl");
  REQUIRE(in.good());
  int checked = 0;
  for (std::string line; std::getline(in, line);) {
    const json c = json::parse(line);
    const Tokenizer* tok = test::shared_tokenizer(c["tokenizer"].get<std::string>());
    if (!tok) continue;
    const ConversationRenderer r(PromptTemplate::load(c["template"].get<std::string>()), *tok);
    std::vector<ChatMessage> messages;
    for (const json& m : c["messages"]) messages.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
    const RenderedConversation rendered = r.render(messages, /*add_generation_prompt=*/true, 0);
    INFO(line);
    CHECK(rendered.text == c["text"].get<std::string>());
    CHECK(rendered.ids == tok->encode(c["text"].get<std::string>(), /*allow_special=*/true));
    ++checked;
  }
  MESSAGE(checked << " conversations checked");
}

TEST_CASE("a Jinja chat template: assistant turns found by rendering prefixes, the same tokens as the JSON template") {
  const char* source = "{% for m in messages %}{% if m.role == 'system' %}<s>{{ m.content }}\n"
                       "{% elif m.role == 'user' %}<u>{{ m.content }}\n"
                       "{% else %}<a>{{ m.content }}{{ eos_token }}{% endif %}{% endfor %}"
                       "{% if add_generation_prompt %}<a>{% endif %}";
  const ConversationRenderer jinja(PromptTemplate::from_jinja(source, "test.jinja"), conversation_tokenizer());
  const json record = {{"messages", json::array({conversation_message("system", "ab"), conversation_message("user", "cd"),
                                                 conversation_message("assistant", "ef"), conversation_message("user", "g"),
                                                 conversation_message("assistant", "h")})}};
  const SftExample e = jinja.training_example(record, 1);
  CHECK(e.prompt_ids == conversation_ids({"<s>", "a", "b", "\n", "<u>", "c", "d", "\n", "<a>"}));
  CHECK(e.completion_ids == conversation_ids({"e", "f", "<eos>", "<u>", "g", "\n", "<a>", "h", "<eos>"}));
  CHECK(e.completion_mask == std::vector<uint8_t>{1, 1, 1, 0, 0, 0, 0, 1, 1});
  const RenderedConversation p = jinja.prompt(record, 1);
  CHECK(p.text == "<s>ab\n<u>cd\n<a>ef<eos><u>g\n<a>");
  CHECK(p.ids == conversation_renderer().prompt(record, 1).ids);

  // A template that writes the last message otherwise than the others has no stable turn boundaries.
  const ConversationRenderer odd(
      PromptTemplate::from_jinja("{% for m in messages %}{% if loop.last %}<a>{{ m.content }}{% else %}{{ m.content }}{% endif %}{% endfor %}",
                                 "odd.jinja"),
      conversation_tokenizer());
  const json turns = {{"messages", json::array({conversation_message("user", "a"), conversation_message("assistant", "b")})}};
  CHECK_THROWS_WITH_AS(odd.training_example(turns, 4), doctest::Contains("message 2: this chat template does not write"),
                       std::invalid_argument);
}
