// A chat template outside the supported Jinja subset, or one that fails while rendering, is an error
// that names the construct and its line:column in the template (and the file it came from).
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "policy/tokenizer/jinja/jinja.h"
#include "policy/tokenizer/prompt_template.h"

namespace {

using grpo::jinja::JinjaError;

// The message of the error that parsing and rendering source throw ("" when none).
std::string jinja_err_message(const std::string& source, const char* variables = "{}") {
  try {
    grpo::jinja::Template(source, "t").render(nlohmann::ordered_json::parse(variables));
  } catch (const JinjaError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("jinja errors: an unknown filter or test is named with its position before anything renders") {
  CHECK(jinja_err_message("Hello {{ name | shout }}").rfind("t:1:17: unknown filter 'shout' (supported filters: abs, ", 0) == 0);
  // Found even in a branch that would not run.
  CHECK(jinja_err_message("{% if false %}\n  {{ x | wordwrap(5) }}\n{% endif %}").rfind("t:2:10: unknown filter 'wordwrap'", 0) ==
        0);
  CHECK(jinja_err_message("{{ x is divisibleby }}").rfind("t:1:9: unknown test 'divisibleby' (supported tests: ", 0) == 0);
}

TEST_CASE("jinja errors: unsupported and unknown tags, unclosed and stray blocks") {
  // lstrip_blocks removes the indentation, the position is still the template's own.
  CHECK(jinja_err_message("a\n  {% include 'x.j2' %}") ==
        "t:2:6: unsupported tag {% include %} (chat templates may use set, if/elif/else, for/else, macro, break, continue)");
  CHECK(jinja_err_message("{% call f() %}x{% endcall %}").rfind("t:1:4: unsupported tag {% call %}", 0) == 0);
  CHECK(jinja_err_message("{% frobnicate %}").rfind("t:1:4: unknown tag {% frobnicate %}", 0) == 0);
  CHECK(jinja_err_message("{% for m in messages %}\n{{ m }}") ==
        "t:1:1: unclosed {% for %}: the template ends before {% endfor %} or {% else %}");
  CHECK(jinja_err_message("x\n{% if a %}{% for b in c %}{% endfor %}") ==
        "t:2:1: unclosed {% if %}: the template ends before {% elif %} or {% else %} or {% endif %}");
  CHECK(jinja_err_message("{% macro f() %}x") ==
        "t:1:1: unclosed {% macro %}: the template ends before {% endmacro %}");
  CHECK(jinja_err_message("{{ 1 }}{% endif %}") == "t:1:11: unexpected {% endif %} (no open block it could close or continue)");
}

TEST_CASE("jinja errors: syntax errors name the token and where it is") {
  CHECK(jinja_err_message("{{ a ; b }}") == "t:1:6: unexpected character ';'");
  CHECK(jinja_err_message("{{ 'abc }}") == "t:1:4: unterminated string literal");
  CHECK(jinja_err_message("{{ (1 + 2 }}") == "t:1:11: expected ')', found '}}'");
  CHECK(jinja_err_message("{% for in xs %}{% endfor %}") == "t:1:11: expected 'in' after the loop variable");
  CHECK(jinja_err_message("{# never closed") == "t:1:1: unclosed comment: {# without #}");
  CHECK(jinja_err_message("{{ x | }}") == "t:1:8: expected a filter name after '|'");
}

TEST_CASE("jinja errors: failures while rendering name the expression's position") {
  CHECK(jinja_err_message("{{ 1 + none }}") == "t:1:6: cannot apply '+' to none");
  CHECK(jinja_err_message("\n  {{- 'x'.format(1) }}") == "t:2:10: cannot call '.format': it is undefined");
  CHECK(jinja_err_message("{{ raise_exception('Conversation roles must alternate') }}") ==
        "t:1:4: raise_exception: Conversation roles must alternate");
  CHECK(jinja_err_message("{{ m.content | trim }}", R"({"m": {"content": null}})") ==
        "t:1:16: cannot apply filter 'trim' to a none");
  CHECK(jinja_err_message("{% for x in 5 %}{% endfor %}") == "t:1:13: cannot loop over a int");
  CHECK(jinja_err_message("{% set d = {} %}{% set d.x = 1 %}") == "t:1:25: can only set attributes of a namespace(), not of a dict");
  CHECK(jinja_err_message("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}") ==
        "t:1:20: macro 'f' nested deeper than 200 calls");
}

TEST_CASE("jinja errors: a checkpoint's template names the file and JSON path") {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "grpo_jinja_errors_checkpoint";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "tokenizer_config.json")
      << R"({"eos_token": "</s>", "chat_template": [{"name": "default", "template": "{{ a }}\n{% block x %}{% endblock %}"}]})";
  CHECK_THROWS_WITH_AS(grpo::PromptTemplate::load(dir.string()),
                       (dir.string() + "/tokenizer_config.json: /chat_template/0/template:2:4: unsupported tag {% block %} "
                                       "(chat templates may use set, if/elif/else, for/else, macro, break, continue)")
                           .c_str(),
                       grpo::TokenizerError);
  std::ofstream(dir / "tokenizer_config.json") << R"({"chat_template": [{"name": "tool_use", "template": "x"}]})";
  CHECK_THROWS_WITH_AS(grpo::PromptTemplate::load(dir.string()), doctest::Contains("no template named \"default\" (it has tool_use)"),
                       grpo::TokenizerError);
  std::filesystem::remove_all(dir);
}
