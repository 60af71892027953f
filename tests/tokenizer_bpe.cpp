// BPE merge order on hand-worked examples: lowest rank first, leftmost first among equal pairs,
// ignore_merges, and every byte encodable.
#include <doctest/doctest.h>

#include "policy/tokenizer/tokenizer.h"
#include "tests/tokenizer_tiny.h"

namespace {

using grpo::Tokenizer;
using Ids = std::vector<int32_t>;

Tokenizer tiny(const std::vector<std::string>& extra, const std::vector<std::pair<std::string, std::string>>& merges,
               bool ignore_merges = false) {
  auto doc = grpo::test::tiny_byte_level_json(extra, merges);
  doc["model"]["ignore_merges"] = ignore_merges;
  return Tokenizer::from_json(doc.dump());
}

constexpr int32_t a = 'a', b = 'b', c = 'c', d = 'd';

}  // namespace

TEST_CASE("bpe: the lowest-ranked pair merges first") {
  // ids: ab=256, bc=257, abc=258
  const Tokenizer bc_first = tiny({"ab", "bc", "abc"}, {{"b", "c"}, {"a", "b"}, {"ab", "c"}});
  CHECK(bc_first.encode("abc") == Ids{a, 257});  // b+c first; then (a, bc) is no merge
  const Tokenizer ab_first = tiny({"ab", "bc", "abc"}, {{"a", "b"}, {"ab", "c"}, {"b", "c"}});
  CHECK(ab_first.encode("abc") == Ids{258});  // a+b, then ab+c
  CHECK(ab_first.encode("bc") == Ids{257});
  CHECK(ab_first.encode("cab") == Ids{c, 256});
}

TEST_CASE("bpe: equal pairs merge leftmost first") {
  const Tokenizer t = tiny({"aa", "aaaa"}, {{"a", "a"}, {"aa", "aa"}});  // aa=256, aaaa=257
  CHECK(t.encode("aaa") == Ids{256, a});
  CHECK(t.encode("aaaa") == Ids{257});
  CHECK(t.encode("aaaaa") == Ids{257, a});
  CHECK(t.encode("aaaaaa") == Ids{257, 256});
}

TEST_CASE("bpe: ignore_merges takes a word that is in the vocabulary as one token") {
  // "abd" is in the vocabulary but no merge builds it.
  const std::vector<std::string> extra = {"ab", "abd"};
  const std::vector<std::pair<std::string, std::string>> merges = {{"a", "b"}};
  CHECK(tiny(extra, merges, /*ignore_merges=*/false).encode("abd") == Ids{256, d});
  CHECK(tiny(extra, merges, /*ignore_merges=*/true).encode("abd") == Ids{257});
  CHECK(tiny(extra, merges, /*ignore_merges=*/true).encode("abdd") == Ids{256, d, d});
}

TEST_CASE("bpe: a long run merges like a short one (no quadratic blow-up, same result)") {
  const Tokenizer t = tiny({"aa", "aaaa"}, {{"a", "a"}, {"aa", "aa"}});
  const std::string run(100001, 'a');  // 25000 x "aaaa" then one "a"
  const Ids ids = t.encode(run);
  REQUIRE(ids.size() == 25001);
  CHECK(ids.front() == 257);
  CHECK(ids[24999] == 257);
  CHECK(ids.back() == a);
  CHECK(t.decode(ids) == run);
}

TEST_CASE("bpe: every byte string encodes, one id per byte without merges") {
  const Tokenizer t = tiny({}, {});
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  const Ids ids = t.encode(all);
  REQUIRE(ids.size() == 256);
  for (int i = 0; i < 256; ++i) CHECK(ids[i] == i);
  CHECK(t.decode(ids) == all);
  CHECK(t.vocab_size() == 256);
  CHECK(t.token_to_id("\xC4\xA0") == ' ');  // "Ġ" is the space byte
  CHECK(t.id_to_token(' ') == "\xC4\xA0");
  CHECK(t.token_bytes(' ') == " ");
}

TEST_CASE("bpe: a merge listed twice takes its later rank (as tokenizers and tokenizers.js do)") {
  // ab=256, bc=257. With a+b at rank 0 only, "abc" -> [ab, c]; listed again at rank 2 it loses to b+c.
  CHECK(tiny({"ab", "bc"}, {{"a", "b"}, {"b", "c"}}).encode("abc") == Ids{256, c});
  CHECK(tiny({"ab", "bc"}, {{"a", "b"}, {"b", "c"}, {"a", "b"}}).encode("abc") == Ids{a, 257});
}
