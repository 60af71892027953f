#include "policy/tokenizer/tokenizer.h"

#include <fstream>
#include <sys/stat.h>

#include "policy/tokenizer/load_phases.h"
#include "policy/tokenizer/table_cache.h"
#include "policy/tokenizer/tokenizer_impl.h"
#include "policy/tokenizer/utf8.h"

namespace grpo {

namespace {

bool is_directory(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string directory_of(const std::string& file) {
  const size_t slash = file.find_last_of('/');
  return slash == std::string::npos ? "." : file.substr(0, slash);
}

template <typename Bytes>  // std::string, JsonText
bool read_file(const std::string& path, Bytes& out) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return false;
  const std::streamoff size = in.tellg();
  if (size < 0) return false;  // not a regular file
  out.resize(static_cast<size_t>(size));
  in.seekg(0);
  return static_cast<bool>(in.read(out.data(), static_cast<std::streamsize>(out.size())));
}

void write_file(const std::string& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.flush();
  if (!out) throw TokenizerError(path + ": cannot write");
}

// Encodes one run of valid UTF-8 that contains no added token.
void encode_text_run(const Tokenizer::Impl& t, std::string_view run, WordCache* cache, std::vector<int32_t>& out) {
  thread_local std::string normalized_scratch;
  thread_local std::vector<PreTokenizer::Range> words;
  const std::string_view text = t.normalizer.apply(run, normalized_scratch);
  words.clear();
  t.pre_tokenizer.split(text, words);
  for (const PreTokenizer::Range& r : words) {
    const std::string_view word = text.substr(r.begin, r.end - r.begin);
    if (cache && cache->lookup(word, out)) continue;
    const size_t first = out.size();
    t.model->encode_word(word, out);
    if (cache) cache->store(word, out.data() + first, out.size() - first);
  }
}

// Encodes text between added tokens: valid UTF-8 runs go through the pipeline, each stray byte is one
// word of its own (byte-level: its byte token; otherwise the unk token).
void encode_plain(const Tokenizer::Impl& t, std::string_view text, WordCache* cache, std::vector<int32_t>& out) {
  size_t i = 0;
  while (i < text.size()) {
    const size_t valid = utf8::valid_prefix_length(text.substr(i));
    if (valid > 0) {
      encode_text_run(t, text.substr(i, valid), cache, out);
      i += valid;
      continue;
    }
    t.model->encode_word(text.substr(i, 1), out);
    ++i;
  }
}

}  // namespace

Tokenizer Tokenizer::from_json(const std::string& tokenizer_json, const std::string& config_json,
                               const std::string& origin) {
  return Tokenizer(parse_tokenizer_json(JsonText(tokenizer_json.begin(), tokenizer_json.end()), config_json, origin));
}

Tokenizer Tokenizer::from_file(const std::string& path) {
  const std::string file = is_directory(path) ? path + "/tokenizer.json" : path;
  JsonText json;
  std::string config;
  if (!read_file(file, json)) throw TokenizerError(file + ": cannot read tokenizer file");
  read_file(directory_of(file) + "/tokenizer_config.json", config);  // optional
  LoadPhases::mark("read the files");
  const TableCache cache(file, view_of(json));
  LoadPhases::mark("hash the file");
  return Tokenizer(parse_tokenizer_json(std::move(json), config, file, TableSource::kFast, &cache));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool allow_special) const {
  const Impl& t = *impl_;
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  std::unique_lock<std::mutex> lock(t.cache_mutex, std::try_to_lock);
  WordCache* cache = lock.owns_lock() ? &t.cache : nullptr;
  size_t position = 0;
  while (position < text.size()) {
    const AddedTokenMatcher::Match m = t.added_tokens.find(text, position, allow_special);
    const size_t plain_end = m.id >= 0 ? m.begin : text.size();
    encode_plain(t, text.substr(position, plain_end - position), cache, out);
    if (m.id < 0) break;
    out.push_back(m.id);
    position = m.end;
  }
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  std::string out;
  for (int32_t id : ids) {
    if (skip_special && is_special(id)) continue;
    out += token_bytes(id);
  }
  return out;
}

int32_t Tokenizer::token_to_id(std::string_view token) const { return impl_->find_token_id(token); }

namespace {
void check_id(const Tokenizer::Impl& t, int32_t id) {
  if (id < 0 || static_cast<size_t>(id) >= t.token_text.size()) {
    throw TokenizerError(t.origin + ": token id " + std::to_string(id) + " is outside [0, " +
                         std::to_string(t.token_text.size()) + ")");
  }
}
}  // namespace

const std::string& Tokenizer::id_to_token(int32_t id) const {
  check_id(*impl_, id);
  return impl_->token_text[id];
}

const std::string& Tokenizer::token_bytes(int32_t id) const {
  check_id(*impl_, id);
  return impl_->token_bytes[id];
}

bool Tokenizer::is_special(int32_t id) const {
  check_id(*impl_, id);
  return impl_->special[id] != 0;
}

int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(impl_->token_text.size()); }
int32_t Tokenizer::bos_id() const { return impl_->bos_id; }
int32_t Tokenizer::eos_id() const { return impl_->eos_id; }
int32_t Tokenizer::pad_id() const { return impl_->pad_id; }

void Tokenizer::save(const std::string& path) const {
  write_file(path, view_of(impl_->tokenizer_json));
  if (!impl_->config_json.empty()) write_file(directory_of(path) + "/tokenizer_config.json", impl_->config_json);
}

}  // namespace grpo
