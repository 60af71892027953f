#include "rewards/text_extract.h"

#include <algorithm>
#include <cctype>
#include <vector>

namespace grpo::rewards {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::string_view trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  return text;
}

// The braced group starting at text[open] == '{', without its braces; nullopt if unbalanced.
std::optional<std::string> braced_group(std::string_view text, std::size_t open) {
  int depth = 0;
  for (std::size_t i = open; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 1 < text.size()) {  // \{ and \} are literal braces
      ++i;
      continue;
    }
    if (text[i] == '{') ++depth;
    if (text[i] == '}' && --depth == 0) return std::string(text.substr(open + 1, i - open - 1));
  }
  return std::nullopt;
}

// The argument of the command ending just before `at`: a braced group, or "\boxed 5" up to a space or $.
std::optional<std::string> command_argument(std::string_view text, std::size_t at) {
  std::size_t i = at;
  while (i < text.size() && text[i] == ' ') ++i;
  if (i < text.size() && text[i] == '{') return braced_group(text, i);
  if (i == at) return std::nullopt;  // "\boxedx" is another command
  std::size_t end = i;
  while (end < text.size() && !std::isspace(static_cast<unsigned char>(text[end])) && text[end] != '$') ++end;
  if (end == i) return std::nullopt;
  return std::string(text.substr(i, end - i));
}

}  // namespace

// How many boxes, from the last, are tried when the later ones are unbalanced: each try scans to the
// end of the text, so unbounded retries would be quadratic on a completion full of "\boxed{".
constexpr int kBoxAttempts = 8;

std::optional<std::string> extract_boxed(std::string_view text) {
  std::size_t search_end = text.size();
  for (int attempt = 0; attempt < kBoxAttempts; ++attempt) {
    const std::size_t boxed = text.rfind("\\boxed", search_end);
    const std::size_t fbox = text.rfind("\\fbox", search_end);
    std::size_t at = std::string_view::npos;
    std::size_t length = 0;
    if (boxed != std::string_view::npos && (fbox == std::string_view::npos || boxed > fbox)) {
      at = boxed;
      length = 6;
    } else if (fbox != std::string_view::npos) {
      at = fbox;
      length = 5;
    }
    if (at == std::string_view::npos) return std::nullopt;
    if (auto content = command_argument(text, at + length)) return content;
    if (at == 0) return std::nullopt;
    search_end = at - 1;  // an unusable last box: look at the one before
  }
  return std::nullopt;
}

std::optional<std::string> extract_tag(std::string_view text, std::string_view tag) {
  if (tag.empty()) return std::nullopt;
  const std::string open = "<" + std::string(tag) + ">";
  const std::string close = "</" + std::string(tag) + ">";
  const std::size_t end = text.rfind(close);
  if (end == std::string_view::npos) return std::nullopt;
  const std::size_t start = text.rfind(open, end);
  if (start == std::string_view::npos) return std::nullopt;
  return std::string(trim(text.substr(start + open.size(), end - start - open.size())));
}

std::optional<std::string> last_number(std::string_view text) {
  std::optional<std::string> last;
  std::size_t i = 0;
  while (i < text.size()) {
    if (!is_digit(text[i])) {
      ++i;
      continue;
    }
    const std::size_t start = i;
    std::string number;
    while (i < text.size() && is_digit(text[i])) number += text[i++];
    // Thousands groups: ",ddd" not followed by another digit ("1,234,567" but not "1,2345" or "1,2").
    while (i + 3 < text.size() + 0 && text[i] == ',' && is_digit(text[i + 1]) && is_digit(text[i + 2]) &&
           is_digit(text[i + 3]) && (i + 4 >= text.size() || !is_digit(text[i + 4]))) {
      number.append(text.substr(i + 1, 3));
      i += 4;
    }
    if (i + 1 < text.size() && text[i] == '.' && is_digit(text[i + 1])) {
      number += text[i++];
      while (i < text.size() && is_digit(text[i])) number += text[i++];
    }
    const bool negative = start > 0 && text[start - 1] == '-' &&
                          (start == 1 || !std::isalnum(static_cast<unsigned char>(text[start - 2])));
    last = negative ? "-" + number : number;
  }
  return last;
}

}  // namespace grpo::rewards

namespace grpo::rewards {
namespace {

// Limits: answers are short, and each step is linear in the text.
constexpr std::size_t kMaxExtractedAnswer = 2000;
constexpr int kMaxJoinedBoxes = 16;

char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

bool starts_with_at(std::string_view text, std::size_t at, std::string_view prefix) {
  return at + prefix.size() <= text.size() && text.compare(at, prefix.size(), prefix) == 0;
}

struct Span {
  std::size_t begin = 0, end = 0;  // of the whole span, delimiters included
  std::string content;
};

// The last boxes (\boxed or \fbox with a usable argument), in order of appearance: at most
// kMaxJoinedBoxes of them, found from the end, skipping at most kBoxAttempts unusable ones (each try
// scans to the end of the text, so this stays linear in its length).
std::vector<Span> all_boxes(std::string_view text) {
  std::vector<Span> boxes;
  std::size_t search_end = text.size();
  int failures = 0;
  while (boxes.size() < static_cast<std::size_t>(kMaxJoinedBoxes) && failures < kBoxAttempts) {
    const std::size_t boxed = text.rfind("\\boxed", search_end);
    const std::size_t fbox = text.rfind("\\fbox", search_end);
    std::size_t start = std::string_view::npos, length = 0;
    if (boxed != std::string_view::npos && (fbox == std::string_view::npos || boxed > fbox)) {
      start = boxed, length = 6;
    } else if (fbox != std::string_view::npos) {
      start = fbox, length = 5;
    }
    if (start == std::string_view::npos) break;
    std::size_t open = start + length;
    while (open < text.size() && text[open] == ' ') ++open;
    std::optional<Span> box;
    if (open < text.size() && text[open] == '{') {
      if (auto content = braced_group(text, open)) box = Span{start, open + content->size() + 2, *content};
    } else if (auto content = command_argument(text, start + length)) {
      box = Span{start, open + content->size(), *content};
    }
    if (box && (boxes.empty() || box->end <= boxes.back().begin)) {
      boxes.push_back(*box);
    } else {
      ++failures;
    }
    if (start == 0) break;
    search_end = start - 1;
  }
  std::reverse(boxes.begin(), boxes.end());
  return boxes;
}

// Text between two boxes that only joins them: spacing, commas, "and", "or", $, \quad, \text{ and }.
bool only_connectors(std::string_view between) {
  // "... \quad y_2 = \boxed{...}": the name of the next value may stand before it.
  while (!between.empty() && std::isspace(static_cast<unsigned char>(between.back()))) between.remove_suffix(1);
  if (!between.empty() && between.back() == '=') {
    between.remove_suffix(1);
    while (!between.empty() && std::isspace(static_cast<unsigned char>(between.back()))) between.remove_suffix(1);
    const std::size_t before = between.size();
    while (!between.empty() && (std::isalnum(static_cast<unsigned char>(between.back())) || between.back() == '_' ||
                                between.back() == '{' || between.back() == '}')) {
      between.remove_suffix(1);
    }
    if (between.size() == before) return false;
  }
  for (std::size_t i = 0; i < between.size(); ++i) {
    bool skipped = false;
    for (std::string_view word : {"\\text{", "\\mbox{", "\\quad", "\\qquad", "\\[", "\\]", "\\(", "\\)", "\\,", "\\;",
                                  "\\ ", "and", "or"}) {
      if (starts_with_at(between, i, word)) {
        i += word.size() - 1;
        skipped = true;
        break;
      }
    }
    if (skipped) continue;
    const char c = between[i];
    if (c == '\\' && i + 1 == between.size()) continue;  // "\\boxed" written with a doubled backslash
    if (std::isspace(static_cast<unsigned char>(c)) || c == ',' || c == '$' || c == '}' || c == ';' || c == '+' ||
        c == '&') {
      continue;
    }
    return false;
  }
  return true;
}

std::optional<std::string> final_boxes(std::string_view text) {
  const std::vector<Span> boxes = all_boxes(text);
  if (boxes.empty()) return std::nullopt;
  std::size_t first = boxes.size() - 1;
  while (first > 0 && boxes.size() - first < static_cast<std::size_t>(kMaxJoinedBoxes) &&
         only_connectors(text.substr(boxes[first - 1].end, boxes[first].begin - boxes[first - 1].end))) {
    --first;
  }
  std::string joined;
  for (std::size_t i = first; i < boxes.size(); ++i) {
    if (!joined.empty()) joined += ", ";
    joined += std::string(trim(boxes[i].content));
  }
  return joined;
}

// Math spans in order: $...$, $$...$$, \[...\], \(...\). An escaped \$ is a dollar sign, not a delimiter.
std::vector<Span> math_spans(std::string_view text) {
  std::vector<Span> spans;
  std::size_t i = 0;
  while (i < text.size()) {
    std::string_view open, close;
    if (starts_with_at(text, i, "\\[")) {
      open = "\\[", close = "\\]";
    } else if (starts_with_at(text, i, "\\(")) {
      open = "\\(", close = "\\)";
    } else if (starts_with_at(text, i, "$$")) {
      open = "$$", close = "$$";
    } else if (text[i] == '$') {
      open = "$", close = "$";
    } else {
      i += text[i] == '\\' ? 2 : 1;
      continue;
    }
    std::size_t j = i + open.size();
    std::size_t end = std::string_view::npos;
    while (j < text.size()) {
      if (starts_with_at(text, j, close)) {
        end = j;
        break;
      }
      if (text[j] == '\n' && (open == "$" || open == "\\(")) break;  // inline math does not span lines
      j += text[j] == '\\' && close[0] == '$' ? 2 : 1;
    }
    if (end == std::string_view::npos) {
      i += open.size();
      continue;
    }
    spans.push_back(Span{i, end + close.size(), std::string(trim(text.substr(i + open.size(), end - i - open.size())))});
    i = end + close.size();
  }
  return spans;
}

// Spans that directly follow one another, separated only by connectors, are one answer: "$1$ and $2$".
std::string joined_final_group(std::string_view text, const std::vector<Span>& spans) {
  std::size_t first = spans.size() - 1;
  while (first > 0 && spans.size() - first < static_cast<std::size_t>(kMaxJoinedBoxes) &&
         !spans[first - 1].content.empty() &&
         only_connectors(text.substr(spans[first - 1].end, spans[first].begin - spans[first - 1].end))) {
    --first;
  }
  std::string joined;
  for (std::size_t i = first; i < spans.size(); ++i) {
    if (!joined.empty()) joined += ", ";
    joined += spans[i].content;
  }
  return joined;
}

struct Phrase {
  std::size_t start = std::string::npos;  // of the phrase
  std::size_t answer = 0;                 // where X starts
  bool final = false;                     // "final answer ...": wins over an earlier box
};

// The last "final answer is X" / "the answer is X" / "answer: X" phrase.
Phrase last_answer_phrase(std::string_view text) {
  std::string folded(text);
  for (char& c : folded) c = lower(c);
  Phrase best;
  for (std::string_view phrase : {"final answer is:", "final answer is", "final answer:", "answer is:", "answer is",
                                  "answer:"}) {
    const std::size_t at = folded.rfind(phrase);
    if (at == std::string::npos) continue;
    if (at > 0 && std::isalpha(static_cast<unsigned char>(folded[at - 1]))) continue;  // "reanswer"
    if (best.start == std::string::npos || at > best.start ||
        (at == best.start && at + phrase.size() > best.answer)) {
      best = Phrase{at, at + phrase.size(), phrase.rfind("final", 0) == 0 || (at >= 6 && folded.compare(at - 6, 6, "final ") == 0)};
    }
  }
  return best;
}

// A word of three or more letters, or two words of two, that are not LaTeX commands or function
// names: the text is prose ("it is 7", "5 apples"), not a formula ("2xy + 1", "\\frac{1}{2}").
bool has_prose(std::string_view text) {
  int short_words = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    if (!std::isalpha(static_cast<unsigned char>(text[i]))) {
      ++i;
      continue;
    }
    const std::size_t start = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    if (start > 0 && text[start - 1] == '\\') continue;
    if (i - start < 3) {
      if (i - start == 2 && ++short_words >= 2) return true;
      continue;
    }
    std::string word(text.substr(start, i - start));
    for (char& c : word) c = lower(c);
    bool known = false;
    for (std::string_view name : {"and", "sqrt", "sin", "cos", "tan", "cot", "sec", "csc", "log", "exp", "arcsin",
                                  "arccos", "arctan", "sinh", "cosh", "tanh", "inf", "infty", "mod", "gcd", "lcm"}) {
      if (word == name) known = true;
    }
    if (!known) return true;
  }
  return false;
}

// The last number as written: sign, digits, separators between digits ('.', ',', and a space before
// a group of exactly three digits), a fraction bar between digits, a percent sign. A number glued to
// letters ("AZYUK2A") is not one.
std::optional<Span> last_number_span(std::string_view text, std::size_t from = 0) {
  std::optional<Span> last;
  std::size_t i = from;
  auto letter = [&](std::size_t at) { return std::isalpha(static_cast<unsigned char>(text[at])) != 0; };
  while (i < text.size()) {
    if (!is_digit(text[i])) {
      ++i;
      continue;
    }
    std::size_t start = i;
    if (start > from && text[start - 1] == '.') --start;  // ".4"
    std::size_t end = i;
    while (end < text.size()) {
      if (is_digit(text[end])) {
        ++end;
        continue;
      }
      if ((text[end] == '.' || text[end] == ',' || text[end] == '/') && end + 1 < text.size() &&
          is_digit(text[end + 1])) {
        ++end;
        continue;
      }
      if (text[end] == ' ' && end + 3 < text.size() && is_digit(text[end + 1]) && is_digit(text[end + 2]) &&
          is_digit(text[end + 3]) && (end + 4 == text.size() || !is_digit(text[end + 4]))) {
        // "1 000": a space before exactly three digits, after a group of at most three.
        std::size_t group = end;
        while (group > start && is_digit(text[group - 1])) --group;
        if (end - group <= 3) {
          ++end;
          continue;
        }
      }
      break;
    }
    const bool glued = start > 0 && letter(start - 1);  // "5cm" is a number with a unit, "AZYUK2A" none
    if (!glued) {
      const bool negative = start > 0 && text[start - 1] == '-' &&
                            (start == 1 || !std::isalnum(static_cast<unsigned char>(text[start - 2])));
      std::string number = (negative ? "-" : "") + std::string(text.substr(start, end - start));
      if (end < text.size() && text[end] == '%') number += '%';
      last = Span{negative ? start - 1 : start, end, number};
    }
    i = end;
  }
  return last;
}

// X after a phrase: the math span right after it; else its sentence (up to ". " or a line end) when
// that is a formula; else the later of the sentence's last math span and last number ("The volume of
// $ABCD$ is 120." gives 120); else the sentence.
std::optional<std::string> phrase_answer(std::string_view text, std::size_t from, std::size_t* sentence_end) {
  std::size_t i = from;
  while (i < text.size() && (std::isspace(static_cast<unsigned char>(text[i])) || text[i] == ':' || text[i] == '*')) ++i;
  std::size_t end = i;
  bool in_math = false;
  while (end < text.size() && text[end] != '\n') {
    if (text[end] == '$') in_math = !in_math;
    if (!in_math && text[end] == '.' && (end + 1 == text.size() || std::isspace(static_cast<unsigned char>(text[end + 1])))) {
      break;
    }
    ++end;
  }
  *sentence_end = end;
  const std::string_view sentence = text.substr(i, end - i);
  const std::vector<Span> spans = math_spans(sentence);
  if (!spans.empty() && spans.front().begin == 0) return joined_final_group(sentence, spans);
  std::string_view whole = trim(sentence);
  while (!whole.empty() && (whole.back() == '*' || whole.back() == '.')) whole = trim(whole.substr(0, whole.size() - 1));
  if (whole.empty()) return std::nullopt;
  if (!has_prose(whole) && whole.find('$') == std::string_view::npos) return std::string(whole);
  const std::optional<Span> number = last_number_span(sentence, spans.empty() ? 0 : spans.back().end);
  if (number) return number->content;
  if (!spans.empty()) return joined_final_group(sentence, spans);
  return std::string(whole);
}

}  // namespace

std::optional<std::string> extract_answer(std::string_view text, bool last_number_fallback) {
  std::optional<std::string> answer;
  const Phrase phrase = last_answer_phrase(text);
  const std::vector<Span> boxes = all_boxes(text);
  std::size_t sentence_end = 0;
  if (!boxes.empty()) {
    if (phrase.final && phrase.start > boxes.back().end) answer = phrase_answer(text, phrase.answer, &sentence_end);
    if (!answer) answer = final_boxes(text);
  } else {
    const std::vector<Span> spans = math_spans(text);
    if (phrase.start != std::string::npos) {
      answer = phrase_answer(text, phrase.answer, &sentence_end);
      // A math span after the sentence of a plain "answer: X" is the later answer; "final answer" stands.
      if (answer && !phrase.final && !spans.empty() && spans.back().begin >= sentence_end) answer.reset();
    }
    if (!answer && !spans.empty()) {
      const std::string joined = joined_final_group(text, spans);
      // A number after the last span is the later answer ("... $n$ ... there are 12 of them").
      const std::optional<Span> number = last_number_span(text, spans.back().end);
      if (last_number_fallback && number && has_prose(text.substr(spans.back().end))) {
        answer = number->content;
      } else if (!joined.empty()) {
        answer = joined;
      }
    }
    if (!answer && last_number_fallback) {
      const std::string_view whole = trim(text);
      if (whole.size() <= 200 && !has_prose(whole)) {
        answer = std::string(whole);
      } else if (auto number = last_number_span(text)) {
        answer = number->content;
      }
    }
  }
  if (answer && (answer->empty() || answer->size() > kMaxExtractedAnswer)) return std::nullopt;
  return answer;
}

}  // namespace grpo::rewards
