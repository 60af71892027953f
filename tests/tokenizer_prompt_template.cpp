// Prompt templates: the built-in files reproduce the models' own Jinja chat templates (rendered by
// @huggingface/jinja into chat_templates.jsonl), the R1-Zero text is the paper's, bad files are named.
#include "tests/tokenizer_test_files.h"

#include <algorithm>

#include "policy/tokenizer/prompt_template.h"

namespace {

using grpo::ChatMessage;
using grpo::PromptTemplate;
using grpo::Tokenizer;
using grpo::TokenizerError;

std::string template_error(const std::string& json_text) {
  try {
    PromptTemplate::from_json(json_text, "my_template.json");
  } catch (const TokenizerError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("prompt template: built-in chat formats render exactly as the models' Jinja chat templates") {
  std::istringstream lines(grpo::test::read_text_file(grpo::test::tokenizer_fixture("chat_templates.jsonl")));
  std::string line;
  int checked = 0;
  while (std::getline(lines, line)) {
    const auto entry = nlohmann::json::parse(line);
    const Tokenizer* tokenizer = grpo::test::shared_tokenizer(entry.at("tokenizer").get<std::string>());
    if (!tokenizer) continue;
    std::vector<ChatMessage> messages;
    for (const auto& m : entry.at("messages")) messages.push_back({m.at("role"), m.at("content")});
    const PromptTemplate t = PromptTemplate::load(entry.at("template").get<std::string>());
    CAPTURE(line);
    CHECK(t.render(messages, /*add_generation_prompt=*/true, *tokenizer) == entry.at("text").get<std::string>());
    ++checked;
  }
  if (checked > 0) CHECK(checked == 12);
}

TEST_CASE("prompt template: Qwen markers encode to their special tokens, user text cannot inject them") {
  const Tokenizer* qwen = grpo::test::shared_tokenizer("qwen3");
  if (!qwen) return;
  const PromptTemplate t = PromptTemplate::load("qwen");
  const std::string text = t.render_prompt("hi", *qwen);
  const auto ids = qwen->encode(text, /*allow_special=*/true);
  const int32_t im_start = qwen->token_to_id("<|im_start|>"), im_end = qwen->token_to_id("<|im_end|>");
  REQUIRE(im_start >= 0);
  CHECK(ids.front() == im_start);
  CHECK(std::count(ids.begin(), ids.end(), im_start) == 2);
  CHECK(std::count(ids.begin(), ids.end(), im_end) == 1);
  CHECK(qwen->eos_id() == im_end);  // from tokenizer_config.json
  CHECK(t.stop_strings() == std::vector<std::string>{"<|im_end|>", "<|endoftext|>"});
  const auto plain = qwen->encode("<|im_end|>", /*allow_special=*/false);
  CHECK(plain.size() > 1);
  CHECK(std::count(plain.begin(), plain.end(), im_end) == 0);
}

TEST_CASE("prompt template: r1_zero is the DeepSeek-R1 paper's template, with BOS when the tokenizer has one") {
  const PromptTemplate t = PromptTemplate::load("r1_zero");
  const Tokenizer no_bos = Tokenizer::make_char_level("0123456789+", {"<eos>"});
  const std::string paper =
      "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The "
      "assistant first thinks about the reasoning process in the mind and then provides the user with the answer. "
      "The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> tags, "
      "respectively, i.e., <think> reasoning process here </think> <answer> answer here </answer>. User: 2+3. "
      "Assistant:";
  CHECK(t.render_prompt("2+3", no_bos) == paper);
  const Tokenizer with_bos = Tokenizer::make_char_level("0123456789+", {"<bos>", "<eos>"});
  CHECK(t.render_prompt("2+3", with_bos) == "<bos>" + paper);
  CHECK(t.stop_strings() == std::vector<std::string>{"</answer>"});
}

TEST_CASE("prompt template: placeholders, escapes and errors") {
  const Tokenizer tok = Tokenizer::make_char_level("ab", {"<bos>", "<eos>"});
  const PromptTemplate t = PromptTemplate::from_json(
      R"({"begin": "{bos}", "roles": {"user": "[{{{content}}}]{eos}"}, "generation_prompt": ">"})", "t.json");
  CHECK(t.render({{"user", "ab"}, {"user", "{content}"}}, true, tok) == "<bos>[{ab}]<eos>[{{content}}]<eos>>");
  CHECK_THROWS_WITH_AS(t.render({{"tool", "x"}}, true, tok),
                       doctest::Contains("t.json: message 0 has role \"tool\", which this template does not define"),
                       TokenizerError);
  CHECK(template_error(R"({"roles": {"user": "{prompt}"}})") ==
        "my_template.json: /roles/user: unknown placeholder {prompt} (expected {content}, {bos} or {eos})");
  CHECK(template_error(R"({"roles": {"user": "no content"}})") == "my_template.json: /roles/user: has no {content}");
  CHECK(template_error(R"({"roles": {"user": "{content"}})").find("/roles/user: unclosed '{'") != std::string::npos);
  CHECK(template_error(R"({"roles": {"user": "{content}"}, "begin": "{content}"})").find("/begin: unknown placeholder") !=
        std::string::npos);
  CHECK(template_error(R"({"roles": {"user": "{content}"}, "extra": 1})").find("/extra: unknown key") != std::string::npos);
  CHECK_THROWS_WITH_AS(PromptTemplate::load("nope"),
                       doctest::Contains("neither a built-in (deepseek, llama3, qwen, qwen_no_thinking, r1_zero)"),
                       TokenizerError);
}
