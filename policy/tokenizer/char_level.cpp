// Tokenizer::make_char_level: the tokenizer of synthetic tasks, written as an ordinary tokenizer.json
// (BPE with single-character vocabulary and no merges, Fuse decoder) so that the Hugging Face
// libraries load the checkpoints it ends up in.
#include <nlohmann/json.hpp>

#include "policy/tokenizer/tokenizer.h"
#include "policy/tokenizer/utf8.h"

namespace grpo {

Tokenizer Tokenizer::make_char_level(std::string_view alphabet, const std::vector<std::string>& special_tokens) {
  using nlohmann::ordered_json;
  constexpr const char* kUnk = "<unk>";
  std::vector<std::string> specials = special_tokens;
  bool has_unk = false;
  for (const std::string& s : specials) {
    if (s.empty()) throw TokenizerError("make_char_level: special tokens cannot be empty");
    has_unk = has_unk || s == kUnk;
  }
  if (!has_unk) specials.emplace_back(kUnk);

  ordered_json vocab = ordered_json::object();
  ordered_json added = ordered_json::array();
  for (const std::string& s : specials) {
    if (vocab.contains(s)) throw TokenizerError("make_char_level: special token \"" + s + "\" given twice");
    const int32_t id = static_cast<int32_t>(vocab.size());
    vocab[s] = id;
    added.push_back({{"id", id}, {"content", s}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                     {"normalized", false}, {"special", true}});
  }
  size_t i = 0;
  while (i < alphabet.size()) {
    const size_t n = utf8::valid_sequence_length(alphabet.substr(i));
    if (n == 0) throw TokenizerError("make_char_level: alphabet is not valid UTF-8 at byte " + std::to_string(i));
    const std::string c(alphabet.substr(i, n));
    if (!vocab.contains(c)) vocab[c] = static_cast<int32_t>(vocab.size());
    i += n;
  }

  const ordered_json doc = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", nullptr},
      {"pre_tokenizer", nullptr},
      {"post_processor", nullptr},
      {"decoder", {{"type", "Fuse"}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", kUnk},
        {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr},
        {"fuse_unk", false},
        {"byte_fallback", false},
        {"ignore_merges", false},
        {"vocab", vocab},
        {"merges", ordered_json::array()}}},
  };
  ordered_json config = {{"tokenizer_class", "PreTrainedTokenizerFast"}, {"unk_token", kUnk}};
  for (const char* role : {"bos", "eos", "pad"}) {
    const std::string name = std::string("<") + role + ">";
    if (vocab.contains(name)) config[std::string(role) + "_token"] = name;
  }
  return from_json(doc.dump(2) + "\n", config.dump(2) + "\n", "char-level tokenizer.json");
}

}  // namespace grpo
