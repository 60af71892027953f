#include "policy/tokenizer/vocab_scanner.h"

#include <climits>

#include "policy/tokenizer/utf8.h"

namespace grpo {

namespace {

// A cursor over the JSON text. Every read returns false on anything unexpected; the caller then gives
// up on the whole file (see the header).
class Scanner {
 public:
  explicit Scanner(std::string_view text) : s_(text) {}

  size_t position() const { return i_; }
  bool at_end() const { return i_ >= s_.size(); }

  void skip_whitespace() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t')) ++i_;
  }

  // Skips whitespace, then consumes c if it is next.
  bool consume(char c) {
    skip_whitespace();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }

  bool peek_is(char c) {
    skip_whitespace();
    return i_ < s_.size() && s_[i_] == c;
  }

  // A JSON string, unescaped into out. Rejects what JSON rejects: raw control characters, ill-formed
  // UTF-8, unknown escapes, unpaired surrogates.
  bool read_string(std::string& out) {
    out.clear();
    if (!consume('"')) return false;
    for (;;) {
      const size_t run_start = i_;
      while (i_ < s_.size()) {
        const unsigned char c = static_cast<unsigned char>(s_[i_]);
        if (c == '"' || c == '\\' || c < 0x20) break;
        ++i_;
      }
      if (i_ >= s_.size()) return false;
      const std::string_view run = s_.substr(run_start, i_ - run_start);
      if (utf8::valid_prefix_length(run) != run.size()) return false;
      out.append(run.data(), run.size());
      const char c = s_[i_++];
      if (c == '"') return true;
      if (c != '\\' || i_ >= s_.size()) return false;  // a raw control character, or a cut-off escape
      const char e = s_[i_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = 0;
          if (!read_hex4(cp)) return false;
          if (cp >= 0xDC00 && cp <= 0xDFFF) return false;  // a low surrogate without its high half
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t low = 0;
            if (i_ + 1 >= s_.size() || s_[i_] != '\\' || s_[i_ + 1] != 'u') return false;
            i_ += 2;
            if (!read_hex4(low) || low < 0xDC00 || low > 0xDFFF) return false;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          utf8::append(out, cp);
          break;
        }
        default:
          return false;
      }
    }
  }

  // A non-negative integer that fits int32, written as JSON writes it (no sign, no leading zero, no
  // fraction or exponent).
  bool read_id(int32_t& id) {
    skip_whitespace();
    const size_t start = i_;
    int64_t value = 0;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') {
      value = value * 10 + (s_[i_] - '0');
      if (value > INT32_MAX) return false;
      ++i_;
    }
    const size_t digits = i_ - start;
    if (digits == 0 || (digits > 1 && s_[start] == '0')) return false;
    if (i_ < s_.size() && (s_[i_] == '.' || s_[i_] == 'e' || s_[i_] == 'E')) return false;
    id = static_cast<int32_t>(value);
    return true;
  }

  // Steps over any value without checking it beyond the nesting of brackets and strings: the parts of
  // the file skipped here are parsed afterwards by the JSON library, which checks them.
  bool skip_value() {
    skip_whitespace();
    if (i_ >= s_.size()) return false;
    if (s_[i_] == '"') return skip_string();
    if (s_[i_] != '{' && s_[i_] != '[') {  // a number or literal: up to the next delimiter
      const size_t start = i_;
      while (i_ < s_.size() && s_[i_] != ',' && s_[i_] != '}' && s_[i_] != ']' && s_[i_] != ' ' && s_[i_] != '\n' &&
             s_[i_] != '\r' && s_[i_] != '\t') {
        ++i_;
      }
      return i_ > start;
    }
    int depth = 0;
    while (i_ < s_.size()) {
      const char c = s_[i_];
      if (c == '"') {
        if (!skip_string()) return false;
        continue;
      }
      ++i_;
      if (c == '{' || c == '[') ++depth;
      if ((c == '}' || c == ']') && --depth == 0) return true;
    }
    return false;
  }

 private:
  bool read_hex4(uint32_t& value) {
    if (i_ + 4 > s_.size()) return false;
    value = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s_[i_++];
      uint32_t digit;
      if (c >= '0' && c <= '9') {
        digit = static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        digit = static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        digit = static_cast<uint32_t>(c - 'A' + 10);
      } else {
        return false;
      }
      value = value * 16 + digit;
    }
    return true;
  }

  bool skip_string() {
    ++i_;  // the opening quote
    while (i_ < s_.size()) {
      const char c = s_[i_++];
      if (c == '"') return true;
      if (c == '\\') ++i_;
    }
    return false;
  }

  std::string_view s_;
  size_t i_ = 0;
};

// {"token": id, ...}
bool scan_vocab(Scanner& in, std::vector<std::pair<std::string, int32_t>>& vocab) {
  if (!in.consume('{')) return false;
  if (in.consume('}')) return true;
  std::string token;
  do {
    if (!in.read_string(token) || !in.consume(':')) return false;
    int32_t id = 0;
    if (!in.read_id(id)) return false;
    vocab.emplace_back(token, id);
  } while (in.consume(','));
  return in.consume('}');
}

// ["left right", ...] or [["left", "right"], ...]
bool scan_merges(Scanner& in, std::vector<std::pair<std::string, std::string>>& merges) {
  if (!in.consume('[')) return false;
  if (in.consume(']')) return true;
  std::string left, right;
  do {
    if (in.consume('[')) {
      if (!in.read_string(left) || !in.consume(',') || !in.read_string(right) || !in.consume(']')) return false;
      merges.emplace_back(left, right);
    } else {
      if (!in.read_string(left)) return false;
      const size_t space = left.find(' ');
      if (space == std::string::npos || left.find(' ', space + 1) != std::string::npos) return false;
      merges.emplace_back(left.substr(0, space), left.substr(space + 1));
    }
  } while (in.consume(','));
  return in.consume(']');
}

struct Span {
  size_t begin = 0, end = 0;
  bool found = false;
};

// The members of /model: vocab and merges are read, the rest skipped.
bool scan_model(Scanner& in, ScannedVocabAndMerges& out, Span& vocab, Span& merges) {
  if (!in.consume('{')) return false;
  if (in.consume('}')) return true;
  std::string key;
  do {
    if (!in.read_string(key) || !in.consume(':')) return false;
    in.skip_whitespace();
    const size_t begin = in.position();
    if (key == "vocab" || key == "merges") {
      Span& span = key == "vocab" ? vocab : merges;
      if (span.found) return false;
      const bool ok = key == "vocab" ? scan_vocab(in, out.vocab) : scan_merges(in, out.merges);
      if (!ok) return false;
      span = {begin, in.position(), true};
    } else if (!in.skip_value()) {
      return false;
    }
  } while (in.consume(','));
  return in.consume('}');
}

}  // namespace

std::optional<ScannedVocabAndMerges> scan_vocab_and_merges(std::string_view json) {
  ScannedVocabAndMerges out;
  // One token per ~60 bytes in the files of the supported families: reserving avoids regrowing the two
  // big vectors (whose strings would be moved each time).
  out.vocab.reserve(json.size() / 64);
  out.merges.reserve(json.size() / 64);
  Scanner in(json);
  if (!in.consume('{')) return std::nullopt;
  Span vocab, merges;
  bool model_seen = false;
  if (!in.consume('}')) {
    std::string key;
    do {
      if (!in.read_string(key) || !in.consume(':')) return std::nullopt;
      if (key == "model") {
        if (model_seen || !in.peek_is('{')) return std::nullopt;
        model_seen = true;
        if (!scan_model(in, out, vocab, merges)) return std::nullopt;
      } else if (!in.skip_value()) {
        return std::nullopt;
      }
    } while (in.consume(','));
    if (!in.consume('}')) return std::nullopt;
  }
  in.skip_whitespace();
  if (!in.at_end() || !vocab.found || !merges.found) return std::nullopt;

  // The rest of the file: everything but the two values, which become empty placeholders.
  const bool vocab_first = vocab.begin < merges.begin;
  const Span& first = vocab_first ? vocab : merges;
  const Span& second = vocab_first ? merges : vocab;
  const auto placeholder = [&](const Span& s) { return &s == &vocab ? "{}" : "[]"; };
  out.rest_json.reserve(json.size() - (first.end - first.begin) - (second.end - second.begin) + 4);
  out.rest_json.append(json.substr(0, first.begin));
  out.rest_json.append(placeholder(first));
  out.rest_json.append(json.substr(first.end, second.begin - first.end));
  out.rest_json.append(placeholder(second));
  out.rest_json.append(json.substr(second.end));
  return out;
}

}  // namespace grpo
