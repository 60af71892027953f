// grpo tokenize: the tokenizer from the command line, for checking what a model will see.
//   grpo tokenize --tokenizer DIR [--text TEXT]            ids of TEXT (or of stdin) as a JSON array
//   grpo tokenize --tokenizer DIR --template qwen ...       the same, after formatting TEXT as a prompt
//   grpo tokenize --tokenizer DIR --decode [--text IDS]     text of a JSON array (or list) of ids
#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <fmt/format.h>

#include <cctype>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "policy/tokenizer/prompt_template.h"
#include "policy/tokenizer/tokenizer.h"
#include "rl/cli/commands.h"

namespace grpo::cli {

namespace {

struct TokenizeOptions {
  std::string tokenizer_path;
  std::string text;
  bool text_given = false;
  bool decode = false;
  bool no_special = false;
  bool skip_special = false;
  std::string template_name;
};

std::string read_stdin() {
  std::string all{std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
  return all;
}

// Ids written as a JSON array or separated by spaces/commas/newlines.
std::vector<int32_t> parse_ids(const std::string& text) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '-') {
      size_t used = 0;
      long long value = 0;
      try {
        value = std::stoll(text.substr(i, 24), &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || value < INT32_MIN || value > INT32_MAX) {
        throw std::runtime_error(fmt::format("tokenize --decode: bad id at character {} of the input", i + 1));
      }
      ids.push_back(static_cast<int32_t>(value));
      i += used;
    } else if (std::isspace(static_cast<unsigned char>(c)) || c == ',' || c == '[' || c == ']') {
      ++i;
    } else {
      throw std::runtime_error(fmt::format("tokenize --decode: unexpected '{}' at character {} of the input (expected "
                                           "ids as a JSON array or separated by spaces)", c, i + 1));
    }
  }
  return ids;
}

void run_tokenize(const TokenizeOptions& o) {
  const Tokenizer tokenizer = Tokenizer::from_file(o.tokenizer_path);
  const std::string input = o.text_given ? o.text : read_stdin();
  if (o.decode) {
    const std::string text = tokenizer.decode(parse_ids(input), o.skip_special);
    std::fwrite(text.data(), 1, text.size(), stdout);
    return;
  }
  const std::string text =
      o.template_name.empty() ? input : PromptTemplate::load(o.template_name).render_prompt(input, tokenizer);
  fmt::print("[{}]\n", fmt::join(tokenizer.encode(text, /*allow_special=*/!o.no_special), ", "));
}

}  // namespace

void add_tokenize_command(CLI::App& app) {
  auto options = std::make_shared<TokenizeOptions>();
  CLI::App* cmd = app.add_subcommand("tokenize", "Encode text to token ids (JSON) or decode ids to text");
  cmd->add_option("--tokenizer", options->tokenizer_path, "tokenizer.json, or a model directory holding it")
      ->required();
  cmd->add_option("--text", options->text, "input text (ids with --decode); read from stdin when absent");
  cmd->add_flag("--decode", options->decode, "read ids (JSON array or whitespace-separated) and print their text");
  cmd->add_flag("--no-special", options->no_special, "encode special-token text (e.g. <|im_end|>) as plain text");
  cmd->add_flag("--skip-special", options->skip_special, "with --decode: leave special tokens out of the text");
  cmd->add_option("--template", options->template_name,
                  "format the text as a user prompt first: a built-in template (qwen, qwen_no_thinking, deepseek, "
                  "llama3, r1_zero) or a template file");
  cmd->callback([options, cmd] {
    options->text_given = cmd->count("--text") > 0;
    run_tokenize(*options);
  });
}

}  // namespace grpo::cli
