#pragma once
// A native renderer for the Jinja subset that models' chat templates (tokenizer_config.json
// "chat_template") use, written to give byte for byte the output of @huggingface/jinja, the renderer
// of transformers.js (tests/tokenizer_jinja_conformance.cpp checks real templates against it).
//
//   grpo::jinja::Template t(source, "tokenizer_config.json: /chat_template");
//   std::string text = t.render({{"messages", messages}, {"add_generation_prompt", true}});
//
// The subset: {% if/elif/else %}, {% for x in xs [if cond] %}...{% else %} with loop.index/index0/
// revindex/revindex0/first/last/length/previtem/nextitem, {% set %} (names, tuples, namespace
// attributes, {% set x %}...{% endset %}), {% macro %} and calls, {% break %}, {% continue %},
// comments, whitespace control, the operators, filters, tests, string and dict methods listed in
// docs/tokenizer.md, and the globals namespace(), range(), raise_exception(), strftime_now(), true/
// false/none (also True/False/None). Anything else (another tag, an unknown filter or test) is a
// JinjaError naming the construct and its line:column; errors while rendering name the position of
// the expression that failed, and raise_exception's message is passed on.
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "policy/tokenizer/jinja/ast.h"
#include "policy/tokenizer/jinja/value.h"

namespace grpo::jinja {

struct RenderOptions {
  // The time strftime_now() formats, in UTC; the current time when unset.
  std::optional<std::time_t> now;
};

class Template {
 public:
  // Parses source; origin (a file name and JSON path) starts every error message.
  Template(const std::string& source, std::string origin);
  // The text for these variables (messages, tools, add_generation_prompt, bos_token, ...).
  std::string render(const nlohmann::ordered_json& variables, const RenderOptions& options = {}) const;
  const std::string& source() const { return *source_; }
  const std::string& origin() const { return origin_; }

 private:
  std::shared_ptr<const std::string> source_;
  std::string origin_;
  std::shared_ptr<const std::vector<NodePtr>> program_;
};

}  // namespace grpo::jinja
