// Reading tokenizer.json into Tokenizer::Impl. Every component is either understood completely or
// rejected with the JSON path of what is not supported: a silently ignored flag would give ids that
// differ from the ones the model was trained with.
//
// The vocabulary and merges (nearly all of the file) are read apart from the rest: by the scanner of
// vocab_scanner.h, or from the table cache (table_cache.h), or, on the reference path that both
// shortcut, from the JSON library's DOM of the whole file. Everything else is always read from a DOM.
#include <nlohmann/json.hpp>

#include "policy/tokenizer/byte_level.h"
#include "policy/tokenizer/load_phases.h"
#include "policy/tokenizer/table_cache.h"
#include "policy/tokenizer/tokenizer_impl.h"
#include "policy/tokenizer/vocab_scanner.h"

namespace grpo {

namespace {

using nlohmann::json;

// The GPT-2 regex that ByteLevel applies when use_regex is true.
constexpr const char* kGpt2Pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

class Reader {
 public:
  explicit Reader(std::string origin) : origin_(std::move(origin)) {}

  [[noreturn]] void fail(const std::string& path, const std::string& what) const {
    throw TokenizerError(origin_ + ": " + (path.empty() ? "/" : path) + ": " + what);
  }

  const json& member(const json& object, const std::string& key, const std::string& path) const {
    if (!object.is_object()) fail(path, "expected an object");
    const auto it = object.find(key);
    if (it == object.end()) fail(path + "/" + key, "missing");
    return *it;
  }

  // The member or null when absent.
  const json& optional(const json& object, const std::string& key) const {
    static const json null_value;
    const auto it = object.find(key);
    return it == object.end() ? null_value : *it;
  }

  std::string string(const json& value, const std::string& path) const {
    if (!value.is_string()) fail(path, "expected a string");
    return value.get<std::string>();
  }

  bool boolean(const json& object, const std::string& key, const std::string& path, bool absent_value) const {
    const json& v = optional(object, key);
    if (v.is_null()) return absent_value;
    if (!v.is_boolean()) fail(path + "/" + key, "expected true or false");
    return v.get<bool>();
  }

  int32_t id(const json& value, const std::string& path) const {
    if (!value.is_number_integer() || value.get<int64_t>() < 0 || value.get<int64_t>() > INT32_MAX) {
      fail(path, "expected a non-negative integer id");
    }
    return static_cast<int32_t>(value.get<int64_t>());
  }

  // Rejects keys a component does not know: an unknown flag might change the ids.
  void only_keys(const json& object, std::initializer_list<const char*> known, const std::string& path) const {
    for (auto it = object.begin(); it != object.end(); ++it) {
      bool ok = false;
      for (const char* k : known) ok = ok || it.key() == k;
      if (!ok) fail(path + "/" + it.key(), "unknown setting (not supported)");
    }
  }

  std::string type_of(const json& component, const std::string& path) const {
    return string(member(component, "type", path), path + "/type");
  }

 private:
  std::string origin_;
};

void read_normalizer(const Reader& r, const json& n, const std::string& path, Normalizer& out) {
  if (n.is_null()) return;
  const std::string type = r.type_of(n, path);
  if (type == "Sequence") {
    const json& list = r.member(n, "normalizers", path);
    if (!list.is_array()) r.fail(path + "/normalizers", "expected an array");
    for (size_t i = 0; i < list.size(); ++i) read_normalizer(r, list[i], path + "/normalizers/" + std::to_string(i), out);
    return;
  }
  r.only_keys(n, {"type"}, path);
  if (type == "NFC") return out.add_step(Normalizer::Form::kNFC);
  if (type == "NFD") return out.add_step(Normalizer::Form::kNFD);
  if (type == "NFKC") return out.add_step(Normalizer::Form::kNFKC);
  if (type == "NFKD") return out.add_step(Normalizer::Form::kNFKD);
  r.fail(path + "/type", "normalizer \"" + type + "\" is not supported (expected NFC, NFD, NFKC, NFKD or Sequence)");
}

PreTokenizer::Behavior read_behavior(const Reader& r, const json& split, const std::string& path) {
  const std::string b = r.string(r.member(split, "behavior", path), path + "/behavior");
  using B = PreTokenizer::Behavior;
  if (b == "Isolated") return B::kIsolated;
  if (b == "Removed") return B::kRemoved;
  if (b == "MergedWithPrevious") return B::kMergedWithPrevious;
  if (b == "MergedWithNext") return B::kMergedWithNext;
  if (b == "Contiguous") return B::kContiguous;
  r.fail(path + "/behavior", "unknown split behavior \"" + b + "\"");
}

// Reads a pre-tokenizer; sets byte_level when a ByteLevel step is present.
void read_pre_tokenizer(const Reader& r, const json& p, const std::string& path, PreTokenizer& out, bool& byte_level) {
  if (p.is_null()) return;
  const std::string type = r.type_of(p, path);
  if (type == "Sequence") {
    const json& list = r.member(p, "pretokenizers", path);
    if (!list.is_array()) r.fail(path + "/pretokenizers", "expected an array");
    for (size_t i = 0; i < list.size(); ++i) {
      read_pre_tokenizer(r, list[i], path + "/pretokenizers/" + std::to_string(i), out, byte_level);
    }
    return;
  }
  if (type == "Split") {
    r.only_keys(p, {"type", "pattern", "behavior", "invert"}, path);
    if (r.boolean(p, "invert", path, false)) r.fail(path + "/invert", "true is not supported (expected false)");
    const json& pattern = r.member(p, "pattern", path);
    const std::string pattern_path = path + "/pattern";
    if (pattern.is_object() && pattern.contains("Regex")) {
      out.add_step(Regex(r.string(pattern["Regex"], pattern_path + "/Regex"), false, pattern_path + "/Regex"),
                   read_behavior(r, p, path));
    } else if (pattern.is_object() && pattern.contains("String")) {
      out.add_step(Regex(r.string(pattern["String"], pattern_path + "/String"), true, pattern_path + "/String"),
                   read_behavior(r, p, path));
    } else {
      r.fail(pattern_path, "expected {\"Regex\": ...} or {\"String\": ...}");
    }
    return;
  }
  if (type == "ByteLevel") {
    r.only_keys(p, {"type", "add_prefix_space", "trim_offsets", "use_regex"}, path);
    // trim_offsets only affects character offsets, which this tokenizer does not report.
    if (r.boolean(p, "add_prefix_space", path, true)) {
      r.fail(path + "/add_prefix_space", "true is not supported (expected false, as in Qwen, DeepSeek and Llama-3)");
    }
    if (r.boolean(p, "use_regex", path, true)) {
      out.add_step(Regex(kGpt2Pattern, false, path), PreTokenizer::Behavior::kIsolated);
    }
    byte_level = true;
    return;
  }
  if (type == "Digits") {
    r.only_keys(p, {"type", "individual_digits"}, path);
    const bool individual = r.boolean(p, "individual_digits", path, false);
    // Digits splits on Unicode numeric characters (Rust's char::is_numeric, i.e. \p{N}).
    out.add_step(Regex(individual ? "\\p{N}" : "\\p{N}+", false, path), PreTokenizer::Behavior::kIsolated);
    return;
  }
  r.fail(path + "/type", "pre-tokenizer \"" + type + "\" is not supported (expected Split, ByteLevel, Digits or Sequence)");
}

enum class DecoderKind { kByteLevel, kFuse };

DecoderKind read_decoder(const Reader& r, const json& d, const std::string& path) {
  if (d.is_null()) r.fail(path, "a decoder is required (ByteLevel or Fuse)");
  const std::string type = r.type_of(d, path);
  if (type == "Sequence") {
    const json& list = r.member(d, "decoders", path);
    if (!list.is_array() || list.size() != 1) r.fail(path + "/decoders", "only a Sequence of one decoder is supported");
    return read_decoder(r, list[0], path + "/decoders/0");
  }
  // ByteLevel's flags (add_prefix_space, trim_offsets, use_regex) do not affect decoding in `tokenizers`.
  if (type == "ByteLevel") return DecoderKind::kByteLevel;
  if (type == "Fuse") return DecoderKind::kFuse;
  r.fail(path + "/type", "decoder \"" + type + "\" is not supported (expected ByteLevel or Fuse)");
}

void read_merges(const Reader& r, const json& merges, const std::string& path,
                 std::vector<std::pair<std::string, std::string>>& out) {
  if (!merges.is_array()) r.fail(path, "expected an array");
  out.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const json& m = merges[i];
    const std::string item_path = path + "/" + std::to_string(i);
    if (m.is_string()) {  // "left right" (older files)
      const std::string& s = m.get_ref<const std::string&>();
      const size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
        r.fail(item_path, "expected two tokens separated by one space");
      }
      out.emplace_back(s.substr(0, space), s.substr(space + 1));
    } else if (m.is_array() && m.size() == 2) {  // ["left", "right"] (newer files)
      out.emplace_back(r.string(m[0], item_path + "/0"), r.string(m[1], item_path + "/1"));
    } else {
      r.fail(item_path, "expected \"left right\" or [\"left\", \"right\"]");
    }
  }
}

// Name of a role in tokenizer_config.json: "text", {"content": "text", ...} or null.
std::string role_token(const Reader& r, const json& config, const std::string& key) {
  const json& v = r.optional(config, key);
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content")) return r.string(v["content"], "/" + key + "/content");
  r.fail("/" + key, "expected a token string or {\"content\": ...}");
}

json parse_json(const Reader& r, std::string_view text) {
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    r.fail("", std::string("not valid JSON: ") + e.what());
  }
}

struct AddedToken {
  std::string content;
  int32_t id;
  bool special;
};

// Everything of tokenizer.json but the vocabulary and merges, checked.
struct Settings {
  Normalizer normalizer;
  PreTokenizer pre_tokenizer;
  DecoderKind decoder = DecoderKind::kByteLevel;
  BpeModel::Options options;  // unk_id is resolved against the vocabulary later
  std::optional<std::string> unk_token;
  std::vector<AddedToken> added;
};

Settings read_settings(const Reader& r, const json& doc) {
  if (!doc.is_object()) r.fail("", "expected a JSON object");
  // truncation and padding are batch-shaping options; grpo applies its own length limits. The
  // post-processor only adds BOS/EOS under add_special_tokens, which encode() never does.
  r.only_keys(doc, {"version", "truncation", "padding", "added_tokens", "normalizer", "pre_tokenizer",
                    "post_processor", "decoder", "model"},
              "");
  Settings s;
  s.options.byte_level = false;  // set by a ByteLevel pre-tokenizer
  read_normalizer(r, r.optional(doc, "normalizer"), "/normalizer", s.normalizer);
  read_pre_tokenizer(r, r.optional(doc, "pre_tokenizer"), "/pre_tokenizer", s.pre_tokenizer, s.options.byte_level);
  s.decoder = read_decoder(r, r.optional(doc, "decoder"), "/decoder");

  // The model, but for vocab and merges.
  const json& model = r.member(doc, "model", "");
  const std::string model_type = r.type_of(model, "/model");
  if (model_type != "BPE") r.fail("/model/type", "model \"" + model_type + "\" is not supported (expected BPE)");
  r.only_keys(model, {"type", "dropout", "unk_token", "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk",
                      "byte_fallback", "ignore_merges", "vocab", "merges"},
              "/model");
  const json& dropout = r.optional(model, "dropout");
  if (!dropout.is_null() && !(dropout.is_number() && dropout.get<double>() == 0.0)) {
    r.fail("/model/dropout", "BPE dropout is not supported (expected null)");
  }
  for (const char* affix : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const json& v = r.optional(model, affix);
    if (!v.is_null() && !(v.is_string() && v.get<std::string>().empty())) {
      r.fail(std::string("/model/") + affix, "a non-empty affix is not supported (expected null or \"\")");
    }
  }
  if (r.boolean(model, "fuse_unk", "/model", false)) r.fail("/model/fuse_unk", "true is not supported (expected false)");
  if (r.boolean(model, "byte_fallback", "/model", false)) {
    r.fail("/model/byte_fallback", "true is not supported (expected false: SentencePiece-style files are not handled)");
  }
  s.options.ignore_merges = r.boolean(model, "ignore_merges", "/model", false);
  const json& unk = r.optional(model, "unk_token");
  if (!unk.is_null()) s.unk_token = r.string(unk, "/model/unk_token");

  // Added tokens.
  const json& added_json = r.optional(doc, "added_tokens");
  if (!added_json.is_null() && !added_json.is_array()) r.fail("/added_tokens", "expected an array");
  for (size_t i = 0; i < added_json.size(); ++i) {
    const std::string path = "/added_tokens/" + std::to_string(i);
    const json& a = added_json[i];
    r.only_keys(a, {"id", "content", "single_word", "lstrip", "rstrip", "normalized", "special"}, path);
    for (const char* flag : {"single_word", "lstrip", "rstrip"}) {
      if (r.boolean(a, flag, path, false)) r.fail(path + "/" + flag, "true is not supported (expected false)");
    }
    const std::string content = r.string(r.member(a, "content", path), path + "/content");
    if (content.empty()) r.fail(path + "/content", "an added token cannot be empty");
    s.added.push_back({content, r.id(r.member(a, "id", path), path + "/id"), r.boolean(a, "special", path, false)});
  }
  LoadPhases::mark("settings (normalizer, regexes, added tokens)");
  return s;
}

// Resolves the merges to ids (BpeTables::build); errors name the file.
BpeTables resolve_tables(const std::string& origin, std::vector<std::pair<std::string, int32_t>> vocab,
                         const std::vector<std::pair<std::string, std::string>>& merges) {
  try {
    BpeTables tables = BpeTables::build(std::move(vocab), merges, "/model");
    LoadPhases::mark("resolve merges, token bytes");
    return tables;
  } catch (const TokenizerError& e) {  // the tables name the path; add the file
    throw TokenizerError(origin + ": " + e.what());
  }
}

// /model/vocab and /model/merges from the DOM: the reference path.
BpeTables read_tables_from_dom(const Reader& r, const std::string& origin, const json& doc) {
  const json& model = r.member(doc, "model", "");
  const json& vocab_json = r.member(model, "vocab", "/model");
  if (!vocab_json.is_object()) r.fail("/model/vocab", "expected an object of token -> id");
  std::vector<std::pair<std::string, int32_t>> vocab;
  vocab.reserve(vocab_json.size());
  for (auto it = vocab_json.begin(); it != vocab_json.end(); ++it) {
    vocab.emplace_back(it.key(), r.id(it.value(), "/model/vocab/" + it.key()));
  }
  LoadPhases::mark("vocab from the DOM");
  std::vector<std::pair<std::string, std::string>> merges;
  read_merges(r, r.member(model, "merges", "/model"), "/model/merges", merges);
  LoadPhases::mark("merges from the DOM");
  return resolve_tables(origin, std::move(vocab), merges);
}

std::shared_ptr<Tokenizer::Impl> assemble(const std::string& origin, Settings settings, BpeTables tables,
                                          JsonText tokenizer_json, const std::string& config_json) {
  auto t = std::make_shared<Tokenizer::Impl>();
  t->config_json = config_json;
  t->origin = origin;
  t->normalizer = std::move(settings.normalizer);
  t->pre_tokenizer = std::move(settings.pre_tokenizer);

  const size_t n = tables.token_texts.size();
  int32_t max_id = -1;
  for (int32_t id : tables.token_ids) max_id = std::max(max_id, id);
  for (const AddedToken& a : settings.added) max_id = std::max(max_id, a.id);
  if (settings.unk_token) {
    for (size_t i = 0; i < n; ++i) {
      if (tables.token_texts[i] == *settings.unk_token) settings.options.unk_id = tables.token_ids[i];
    }
    if (settings.options.unk_id < 0) {
      throw TokenizerError(origin + ": /model/unk_token: \"" + *settings.unk_token + "\" is not in /model/vocab");
    }
  }
  t->model.emplace(tables, settings.options);
  LoadPhases::mark("BPE model maps");

  // Id tables. Added tokens take precedence over the vocabulary for names, as in `tokenizers`.
  // The ByteLevel decoder passes a token through unchanged when it has characters outside the byte
  // alphabet (added tokens written as plain text).
  const bool byte_level_decoder = settings.decoder == DecoderKind::kByteLevel;
  const size_t size = static_cast<size_t>(max_id + 1);
  bool ids_in_order = true;  // token i has id i: the usual layout of a vocabulary
  for (size_t i = 0; i < n && ids_in_order; ++i) ids_in_order = tables.token_ids[i] == static_cast<int32_t>(i);
  // The model has copied what it needs: the tables' vectors move into the id tables.
  if (ids_in_order) {
    if (!byte_level_decoder) tables.token_bytes = tables.token_texts;
    t->token_text = std::move(tables.token_texts);
    t->token_bytes = std::move(tables.token_bytes);
    t->token_text.resize(size);
    t->token_bytes.resize(size);
  } else {
    t->token_text.resize(size);
    t->token_bytes.resize(size);
    for (size_t i = 0; i < n; ++i) {
      const int32_t id = tables.token_ids[i];
      t->token_bytes[id] = byte_level_decoder ? std::move(tables.token_bytes[i]) : tables.token_texts[i];
      t->token_text[id] = std::move(tables.token_texts[i]);
    }
  }
  t->special.assign(size, 0);
  t->added_token_ids.reserve(settings.added.size());
  for (const AddedToken& a : settings.added) {
    t->token_text[a.id] = a.content;
    std::optional<std::string> bytes;
    if (byte_level_decoder) bytes = byte_level::token_text_to_bytes(a.content);
    t->token_bytes[a.id] = bytes ? *bytes : a.content;
    t->special[a.id] = a.special;
    t->added_token_ids.insert(a.content, a.id);
    t->added_tokens.add(a.content, a.id, a.special);
  }
  t->tokenizer_json = std::move(tokenizer_json);
  LoadPhases::mark("id tables");

  // Roles from tokenizer_config.json.
  if (!config_json.empty()) {
    const Reader cr(origin.substr(0, origin.find_last_of('/') + 1) + "tokenizer_config.json");
    const json config = parse_json(cr, config_json);
    if (!config.is_object()) cr.fail("", "expected a JSON object");
    const auto resolve = [&](const std::string& key) {
      const std::string name = role_token(cr, config, key);
      if (name.empty()) return -1;
      const int32_t id = t->find_token_id(name);
      if (id < 0) cr.fail("/" + key, "token \"" + name + "\" is not in the tokenizer");
      return id;
    };
    t->bos_id = resolve("bos_token");
    t->eos_id = resolve("eos_token");
    t->pad_id = resolve("pad_token");
    LoadPhases::mark("tokenizer_config.json");
  }
  return t;
}

// The reference path: the whole file through the JSON library.
std::shared_ptr<Tokenizer::Impl> parse_with_dom(JsonText tokenizer_json, const std::string& config_json,
                                                const std::string& origin) {
  const Reader r(origin);
  json doc = parse_json(r, view_of(tokenizer_json));
  LoadPhases::mark("JSON DOM of the whole file");
  Settings settings = read_settings(r, doc);
  BpeTables tables = read_tables_from_dom(r, origin, doc);
  doc = json();
  LoadPhases::mark("free the DOM");
  return assemble(origin, std::move(settings), std::move(tables), std::move(tokenizer_json), config_json);
}

}  // namespace

std::shared_ptr<Tokenizer::Impl> parse_tokenizer_json(JsonText tokenizer_json, const std::string& config_json,
                                                      const std::string& origin, TableSource source,
                                                      const TableCache* cache) {
  if (source == TableSource::kReference) return parse_with_dom(std::move(tokenizer_json), config_json, origin);
  const Reader r(origin);
  const bool use_cache = cache && cache->applies();

  if (use_cache) {
    std::optional<CachedTables> cached = cache->load();
    LoadPhases::mark("cache read");
    std::optional<Settings> settings;
    if (cached) {
      // A cache that matches the file's hash was written from this file after it loaded, so its rest
      // parses and passes every check; one that does not is not used.
      try {
        const json rest = json::parse(cached->rest_json);
        LoadPhases::mark("JSON DOM of the rest");
        settings = read_settings(r, rest);
      } catch (const std::exception&) {
      }
    }
    if (settings) {
      return assemble(origin, std::move(*settings), std::move(cached->tables), std::move(tokenizer_json), config_json);
    }
  }

  std::optional<ScannedVocabAndMerges> scanned = scan_vocab_and_merges(view_of(tokenizer_json));
  LoadPhases::mark("scan vocab and merges");
  if (!scanned) return parse_with_dom(std::move(tokenizer_json), config_json, origin);
  json rest;
  try {
    rest = json::parse(scanned->rest_json);
  } catch (const json::parse_error&) {  // the error is somewhere outside vocab and merges: name it
    return parse_with_dom(std::move(tokenizer_json), config_json, origin);
  }
  LoadPhases::mark("JSON DOM of the rest");
  Settings settings = read_settings(r, rest);
  CachedTables built{std::move(scanned->rest_json), resolve_tables(origin, std::move(scanned->vocab), scanned->merges)};
  // A token written twice: the DOM keeps the last one, and the reference path says what it means.
  if (built.tables.duplicate_tokens > 0) return parse_with_dom(std::move(tokenizer_json), config_json, origin);
  // Written before assembling, which consumes the tables: should assembling then fail (a role in
  // tokenizer_config.json that names no token), the next load from the cache fails the same way.
  if (use_cache) {
    cache->store(built);
    LoadPhases::mark("cache write");
  }
  return assemble(origin, std::move(settings), std::move(built.tables), std::move(tokenizer_json), config_json);
}

}  // namespace grpo
