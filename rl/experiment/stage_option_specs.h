#pragma once
// Every option of every stage of an experiment script, declared once: its name, the Lua values it takes,
// its default, the values an enum allows, and one line of doc. The stages read their options through
// these declarations (StageOptions, stage_options.h), `grpo run --set stage.key=value` is checked against
// them before the script runs, and tests/experiment_option_docs.cpp holds the tables of docs/stages/*.md
// to them. Where an option sets a field of a C++ config (GrpoConfig, SftConfig, ...), its declared
// default is read from a default-constructed config, so the stage and the C++ API cannot disagree.
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace grpo {

// The Lua values an option takes, as a bit set: `data` is a path or a table of records.
enum OptionType : unsigned {
  kNumber = 1u << 0,
  kInteger = 1u << 1,   // a number without a fractional part
  kBoolean = 1u << 2,
  kString = 1u << 3,
  kEnum = 1u << 4,      // a string among OptionSpec::allowed
  kPath = 1u << 5,      // an input file or directory; relative paths resolve against the working directory
  kTemplate = 1u << 6,  // a string with {field} placeholders
  kTable = 1u << 7,
  kFunction = 1u << 8,
};

struct OptionSpec {
  std::string name;
  unsigned types = 0;            // OptionType bits
  nlohmann::json default_value;  // null when there is none; then default_text says what applies
  std::string default_text;      // the docs' default when it is not a value: "required", "none", "n", ...
  std::vector<std::string> allowed;  // kEnum: the accepted values
  std::string doc;                   // one line

  bool required() const { return default_text == "required"; }
};

struct StageSpec {
  std::string stage;  // "train" for grpo.train
  std::vector<OptionSpec> options;

  const OptionSpec* find(const std::string& name) const;  // null when not declared
  std::vector<std::string> names() const;
};

// The stages in the order of docs/experiments.md: init, pretrain, sft, train, sample, eval.
const std::vector<StageSpec>& stage_specs();
// The declarations of grpo.<stage>; throws std::logic_error for a stage without any.
const StageSpec& stage_spec(const std::string& stage);

// What an option takes, for error messages: "an integer", "a path or a table", "one of "a", "b"".
std::string describe_types(const OptionSpec& spec);
// The allowed values of an enum as `"a", "b", "c"`.
std::string quoted_list(const std::vector<std::string>& values);
// The candidate nearest to `word` by edit distance (for "did you mean ...?"); empty without candidates.
std::string closest(const std::string& word, const std::vector<std::string>& candidates);

// One --set value converted to what the option takes: a number (integer options: an integer), a
// boolean (true/false/1/0), or a string (paths, templates, enums among their allowed values). Throws
// std::invalid_argument naming --set stage.key, the expected type and, for an enum, the allowed values.
nlohmann::json parse_override(const std::string& stage, const OptionSpec& spec, const std::string& value);

// Every --set "stage.key" -> "value" checked and converted before a script runs. An unknown stage or
// key is an error naming the closest known one; a bad value as parse_override. Throws std::invalid_argument.
std::map<std::string, nlohmann::json> parse_overrides(const std::map<std::string, std::string>& overrides);

}  // namespace grpo
