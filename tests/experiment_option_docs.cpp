// docs/stages/<stage>.md against the stages' option declarations (rl/experiment/stage_option_specs.h):
// each page's option table must list exactly the declared options, with their defaults, and every
// choice option's allowed values. The tables are read as a reader sees them: a row may name several
// options (`lr`, `warmup`) with one default each ("1e-6, 0") or one default for all ("required").
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "rl/experiment/stage_option_specs.h"

namespace {

using grpo::OptionSpec;
using nlohmann::json;

std::string trim(const std::string& s) {
  const size_t first = s.find_first_not_of(' '), last = s.find_last_not_of(' ');
  return first == std::string::npos ? "" : s.substr(first, last - first + 1);
}

std::vector<std::string> split(const std::string& s, const std::string& separator) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t at; (at = s.find(separator, start)) != std::string::npos; start = at + separator.size())
    parts.push_back(s.substr(start, at - start));
  parts.push_back(s.substr(start));
  return parts;
}

// The words between backticks, in order.
std::vector<std::string> backticked(const std::string& s) {
  std::vector<std::string> words;
  for (size_t open = s.find('`'); open != std::string::npos; open = s.find('`', open)) {
    const size_t close = s.find('`', open + 1);
    if (close == std::string::npos) break;
    words.push_back(s.substr(open + 1, close - open - 1));
    open = close + 1;
  }
  return words;
}

struct DocRow {
  std::string default_cell, meaning;
};

// The "| option | default | meaning |" table of a page: option name -> its default text and meaning.
std::map<std::string, DocRow> option_table(const std::string& path) {
  std::ifstream in(path);
  REQUIRE_MESSAGE(in, "cannot read " << path);
  std::map<std::string, DocRow> rows;
  bool in_table = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("| option | default | meaning |", 0) == 0) {
      in_table = true;
      continue;
    }
    if (!in_table) continue;
    if (line.rfind("|", 0) != 0) break;
    if (line.rfind("| ---", 0) == 0) continue;
    std::vector<std::string> cells = split(line.substr(1, line.size() - 2), " | ");
    REQUIRE_MESSAGE(cells.size() == 3, path << ": a row without three cells: " << line);
    const std::vector<std::string> names = backticked(cells[0]);
    const std::string defaults = trim(cells[1]);
    // One default per name, or one for all of them.
    std::vector<std::string> each = names.size() > 1 ? split(defaults, ", ") : std::vector<std::string>{defaults};
    if (each.size() != names.size()) each = std::vector<std::string>(names.size(), defaults);
    for (size_t i = 0; i < names.size(); ++i) {
      CHECK_MESSAGE(!rows.count(names[i]), path << ": option " << names[i] << " listed twice");
      rows[names[i]] = {trim(each[i]), trim(cells[2])};
    }
  }
  return rows;
}

// Whether the docs' default text states the declared default: a number by value (3e-3 = 0.003, 1.0 = 1),
// a string as `"text"`, a boolean as true/false, anything else (required, none, n) word for word.
bool same_default(const std::string& doc, const OptionSpec& spec) {
  const json& v = spec.default_value;
  if (v.is_null()) return doc == spec.default_text;
  if (v.is_boolean()) return doc == (v.get<bool>() ? "true" : "false");
  if (v.is_string()) return doc == "`\"" + v.get<std::string>() + "\"`";
  char* end = nullptr;
  const double number = std::strtod(doc.c_str(), &end);
  return !doc.empty() && *end == '\0' && number == v.get<double>();
}

}  // namespace

TEST_CASE("every stage page lists exactly the declared options with their defaults and allowed values") {
  for (const grpo::StageSpec& stage : grpo::stage_specs()) {
    const std::string path = std::string(GRPO_SOURCE_DIR) + "/docs/stages/" + stage.stage + ".md";
    const std::map<std::string, DocRow> rows = option_table(path);
    std::set<std::string> documented;
    for (const auto& [name, row] : rows) documented.insert(name);
    std::set<std::string> declared;
    for (const OptionSpec& o : stage.options) declared.insert(o.name);
    for (const std::string& name : declared) CHECK_MESSAGE(documented.count(name), path << " does not list " << name);
    for (const std::string& name : documented) CHECK_MESSAGE(declared.count(name), path << " lists undeclared " << name);

    for (const OptionSpec& o : stage.options) {
      auto row = rows.find(o.name);
      if (row == rows.end()) continue;
      const std::string expected = o.default_value.is_null() ? o.default_text : o.default_value.dump();
      CHECK_MESSAGE(same_default(row->second.default_cell, o),
                    path << ": " << o.name << " has default " << row->second.default_cell << ", declared " << expected);
      if (o.allowed.empty()) continue;
      // A choice's row names each allowed value in backticks (the default among them), and nothing else.
      std::set<std::string> named;
      for (const std::string& w : backticked(row->second.meaning)) named.insert(w);
      for (const std::string& w : backticked(row->second.default_cell)) named.insert(w.substr(1, w.size() - 2));
      const std::set<std::string> allowed(o.allowed.begin(), o.allowed.end());
      CHECK_MESSAGE(named == allowed, path << ": " << o.name << " documents other values than " << grpo::quoted_list(o.allowed));
    }
  }
}

TEST_CASE("the docs table reader catches a wrong default, a missing option and a wrong allowed-value list") {
  // The checks above pass only if the reader sees what a reader sees; a hand-made page shows it can fail.
  const std::string path = std::string(GRPO_BINARY_DIR) + "/option_docs_probe.md";
  {
    std::ofstream out(path);
    out << "| option | default | meaning |\n| --- | --- | --- |\n"
        << "| `lr`, `warmup` | 1e-6, 5 | schedule |\n"
        << "| `model`, `data` | required | inputs |\n"
        << "| `advantage_scaling` | `\"group\"` | `group`, `batch` |\n";
  }
  const std::map<std::string, DocRow> rows = option_table(path);
  REQUIRE(rows.size() == 5);
  const grpo::StageSpec& train = grpo::stage_spec("train");
  CHECK(same_default(rows.at("lr").default_cell, *train.find("lr")));            // 1e-6 = 1e-06
  CHECK_FALSE(same_default(rows.at("warmup").default_cell, *train.find("warmup")));  // 5, declared 0
  CHECK(same_default(rows.at("data").default_cell, *train.find("data")));        // "required" for both names
  std::set<std::string> named;
  for (const std::string& w : backticked(rows.at("advantage_scaling").meaning)) named.insert(w);
  CHECK(named != std::set<std::string>(train.find("advantage_scaling")->allowed.begin(),
                                       train.find("advantage_scaling")->allowed.end()));  // "none" is missing
  std::remove(path.c_str());
}
