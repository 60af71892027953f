#include "policy/tokenizer/table_cache.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy/tokenizer/hash64.h"

namespace grpo {

namespace {

// Layout (little-endian): a fixed header, then the payload that payload_hash covers.
//   header:  magic "grpo-tok", u32 format version, u32 0x01020304 (byte order), u64 source size,
//            u64 source hash, u64 payload size, u64 payload hash
//   payload: u64 size + rest_json; u32 token count; per token: i32 id, u32 size + text,
//            u8 in_byte_alphabet, [u32 size + bytes]; u32 merge count; per merge: i32 left, right, merged
constexpr char kMagic[8] = {'g', 'r', 'p', 'o', '-', 't', 'o', 'k'};
constexpr uint32_t kByteOrderMark = 0x01020304;
constexpr size_t kHeaderBytes = 8 + 4 + 4 + 8 * 4;

class Writer {
 public:
  template <typename T>
  void put(T value) {
    out.append(reinterpret_cast<const char*>(&value), sizeof(value));
  }
  void put_bytes(std::string_view s) {
    put(static_cast<uint32_t>(s.size()));
    out.append(s.data(), s.size());
  }
  std::string out;
};

// Reads with bounds checks: any read past the end clears ok and yields zeros.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : s_(bytes) {}
  template <typename T>
  T get() {
    T value{};
    if (!ok || s_.size() - i_ < sizeof(T)) {
      ok = false;
      return value;
    }
    std::memcpy(&value, s_.data() + i_, sizeof(T));
    i_ += sizeof(T);
    return value;
  }
  std::string_view get_bytes(uint64_t size) {
    if (!ok || s_.size() - i_ < size) {
      ok = false;
      return {};
    }
    const std::string_view v = s_.substr(i_, size);
    i_ += size;
    return v;
  }
  std::string_view get_sized_bytes() { return get_bytes(get<uint32_t>()); }
  bool at_end() const { return i_ == s_.size(); }
  bool ok = true;

 private:
  std::string_view s_;
  size_t i_ = 0;
};

std::string encode_payload(const CachedTables& c) {
  Writer w;
  const BpeTables& t = c.tables;
  w.put(static_cast<uint64_t>(c.rest_json.size()));
  w.out.append(c.rest_json);
  w.put(static_cast<uint32_t>(t.token_texts.size()));
  for (size_t i = 0; i < t.token_texts.size(); ++i) {
    w.put(t.token_ids[i]);
    w.put_bytes(t.token_texts[i]);
    w.put(t.in_byte_alphabet[i]);
    if (t.in_byte_alphabet[i]) w.put_bytes(t.token_bytes[i]);
  }
  w.put(static_cast<uint32_t>(t.merges.size()));
  for (const BpeTables::Merge& m : t.merges) {
    w.put(m.left);
    w.put(m.right);
    w.put(m.merged);
  }
  return std::move(w.out);
}

std::optional<CachedTables> decode_payload(std::string_view payload) {
  Reader r(payload);
  CachedTables c;
  BpeTables& t = c.tables;
  c.rest_json = std::string(r.get_bytes(r.get<uint64_t>()));
  const uint32_t tokens = r.get<uint32_t>();
  // Every token takes at least 13 bytes: a count beyond that is corrupt, and must not size vectors.
  if (!r.ok || tokens > payload.size() / 13) return std::nullopt;
  t.token_texts.reserve(tokens + BpeTables::kSpareIds);
  t.token_bytes.reserve(tokens + BpeTables::kSpareIds);
  t.token_texts.resize(tokens);
  t.token_ids.resize(tokens);
  t.token_bytes.resize(tokens);
  t.in_byte_alphabet.resize(tokens);
  int32_t max_id = -1;
  for (uint32_t i = 0; i < tokens && r.ok; ++i) {
    t.token_ids[i] = r.get<int32_t>();
    t.token_texts[i] = r.get_sized_bytes();
    t.in_byte_alphabet[i] = r.get<uint8_t>() != 0;
    t.token_bytes[i] = t.in_byte_alphabet[i] ? r.get_sized_bytes() : std::string_view(t.token_texts[i]);
    if (t.token_ids[i] < 0) return std::nullopt;
    max_id = std::max(max_id, t.token_ids[i]);
  }
  const uint32_t merges = r.get<uint32_t>();
  if (!r.ok || merges > payload.size() / 12) return std::nullopt;
  t.merges.resize(merges);
  for (BpeTables::Merge& m : t.merges) {
    m.left = r.get<int32_t>();
    m.right = r.get<int32_t>();
    m.merged = r.get<int32_t>();
    // A merge yields an id that encode() returns: it must be one the id tables cover.
    for (int32_t id : {m.left, m.right, m.merged}) {
      if (id < 0 || id > max_id) return std::nullopt;
    }
  }
  if (!r.ok || !r.at_end()) return std::nullopt;
  return c;
}

// Reads a regular file of at most max_bytes (a larger one is not a cache of this file: it is not read).
bool read_whole_file(const std::string& path, uint64_t max_bytes, LargeVector<char>& out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st {};
  bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) <= max_bytes;
  if (ok) {
    out.resize(static_cast<size_t>(st.st_size));
    size_t done = 0;
    while (done < out.size()) {
      const ssize_t n = ::read(fd, out.data() + done, out.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    ok = done == out.size();  // a file that shrank while read is read as truncated, and rejected
  }
  ::close(fd);
  return ok;
}

// Writes bytes to path atomically: readers see the old file or the whole new one, never a part.
bool write_atomically(const std::string& path, const std::string& bytes) {
  std::string temp = path + ".tmp.XXXXXX";
  const int fd = mkstemp(temp.data());
  if (fd < 0) return false;
  size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    written += static_cast<size_t>(n);
  }
  // mkstemp makes the file 0600; the cache is as readable as the tokenizer.json beside it usually is.
  bool ok = written == bytes.size() && fchmod(fd, 0644) == 0;
  ok = ::close(fd) == 0 && ok;
  if (!ok || std::rename(temp.c_str(), path.c_str()) != 0) {
    std::remove(temp.c_str());
    return false;
  }
  return true;
}

// mkdir -p.
bool make_directories(const std::string& path) {
  for (size_t slash = path.find('/', 1);; slash = path.find('/', slash + 1)) {
    const std::string prefix = path.substr(0, slash);
    if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) return false;
    if (slash == std::string::npos) return true;
  }
}

std::string directory_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

std::string fallback_directory() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  if (xdg && xdg[0] == '/') return std::string(xdg) + "/grpo";  // the spec ignores relative values
  const char* home = std::getenv("HOME");
  if (home && home[0] != '\0') return std::string(home) + "/.cache/grpo";
  return "";
}

}  // namespace

std::string encode_table_cache(uint64_t source_hash, uint64_t source_size, const CachedTables& tables) {
  const std::string payload = encode_payload(tables);
  Writer w;
  w.out.reserve(kHeaderBytes + payload.size());
  w.out.append(kMagic, sizeof(kMagic));
  w.put(TableCache::kFormatVersion);
  w.put(kByteOrderMark);
  w.put(source_size);
  w.put(source_hash);
  w.put(static_cast<uint64_t>(payload.size()));
  w.put(hash64(payload));
  w.out.append(payload);
  return std::move(w.out);
}

std::optional<CachedTables> decode_table_cache(std::string_view bytes, uint64_t source_hash, uint64_t source_size) {
  Reader r(bytes);
  const std::string_view magic = r.get_bytes(sizeof(kMagic));
  const auto version = r.get<uint32_t>();
  const auto byte_order = r.get<uint32_t>();
  const auto size = r.get<uint64_t>();
  const auto hash = r.get<uint64_t>();
  const auto payload_size = r.get<uint64_t>();
  const auto payload_hash = r.get<uint64_t>();
  if (!r.ok || magic != std::string_view(kMagic, sizeof(kMagic)) || version != TableCache::kFormatVersion ||
      byte_order != kByteOrderMark || size != source_size || hash != source_hash) {
    return std::nullopt;
  }
  const std::string_view payload = r.get_bytes(payload_size);
  if (!r.ok || !r.at_end() || hash64(payload) != payload_hash) return std::nullopt;
  return decode_payload(payload);
}

bool TableCache::enabled() {
  const char* v = std::getenv("GRPO_TOKENIZER_CACHE");
  return !(v && std::strcmp(v, "0") == 0);
}

TableCache::TableCache(const std::string& tokenizer_json_path, std::string_view tokenizer_json)
    : applies_(enabled() && tokenizer_json.size() >= kMinimumFileBytes),
      source_size_(tokenizer_json.size()),
      beside_path_(tokenizer_json_path + ".grpo-cache") {
  if (!applies_) return;
  source_hash_ = hash64(tokenizer_json);
  const std::string folder = fallback_directory();
  if (!folder.empty()) {
    char name[64];
    std::snprintf(name, sizeof(name), "/tokenizer-%016llx.grpo-cache", static_cast<unsigned long long>(source_hash_));
    fallback_path_ = folder + name;
  }
}

std::optional<CachedTables> TableCache::load() const {
  if (!applies_) return std::nullopt;
  // The cache holds less than the file it was made from, several times over: the rest of the text, each
  // token's text and bytes, 12 bytes per merge (a merge takes at least 6 bytes of JSON).
  const uint64_t max_cache_bytes = 8 * source_size_ + (uint64_t{1} << 20);
  LargeVector<char> bytes;
  for (const std::string* path : {&beside_path_, &fallback_path_}) {
    if (path->empty() || !read_whole_file(*path, max_cache_bytes, bytes)) continue;
    if (auto tables = decode_table_cache({bytes.data(), bytes.size()}, source_hash_, source_size_)) return tables;
  }
  return std::nullopt;
}

std::string TableCache::store(const CachedTables& tables) const {
  if (!applies_) return "";
  const std::string bytes = encode_table_cache(source_hash_, source_size_, tables);
  if (write_atomically(beside_path_, bytes)) return beside_path_;
  if (!fallback_path_.empty() && make_directories(directory_of(fallback_path_)) &&
      write_atomically(fallback_path_, bytes)) {
    return fallback_path_;
  }
  return "";
}

}  // namespace grpo
