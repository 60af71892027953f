#include "policy/tokenizer/pre_tokenizer.h"

#include <algorithm>

#include "policy/tokenizer/utf8.h"

namespace grpo {

void PreTokenizer::add_step(Regex regex, Behavior behavior) { steps_.push_back({std::move(regex), behavior}); }

namespace {

struct Part {
  size_t begin, end;
  bool is_match;
};

// Hugging Face's SplitDelimiterBehavior applied to the alternating list of gaps and matches. The folds
// mirror tokenizers/src/tokenizer/normalizer.rs so that corner cases (two matches in a row) agree.
void apply_behavior(PreTokenizer::Behavior behavior, const std::vector<Part>& parts,
                    std::vector<PreTokenizer::Range>& out) {
  using B = PreTokenizer::Behavior;
  const size_t first = out.size();
  bool previous_match = false;
  switch (behavior) {
    case B::kIsolated:
      for (const Part& p : parts) out.push_back({p.begin, p.end});
      return;
    case B::kRemoved:
      for (const Part& p : parts) {
        if (!p.is_match) out.push_back({p.begin, p.end});
      }
      return;
    case B::kMergedWithPrevious:
      for (const Part& p : parts) {
        if (p.is_match && !previous_match && out.size() > first) {
          out.back().end = p.end;
        } else {
          out.push_back({p.begin, p.end});
        }
        previous_match = p.is_match;
      }
      return;
    case B::kMergedWithNext: {
      // Walk backwards, gluing each match to the piece after it, then restore the order.
      for (size_t i = parts.size(); i-- > 0;) {
        const Part& p = parts[i];
        if (p.is_match && !previous_match && out.size() > first) {
          out.back().begin = p.begin;
        } else {
          out.push_back({p.begin, p.end});
        }
        previous_match = p.is_match;
      }
      std::reverse(out.begin() + static_cast<std::ptrdiff_t>(first), out.end());
      return;
    }
    case B::kContiguous:
      for (const Part& p : parts) {
        if (p.is_match == previous_match && out.size() > first) {
          out.back().end = p.end;
        } else {
          out.push_back({p.begin, p.end});
        }
        previous_match = p.is_match;
      }
      return;
  }
}

}  // namespace

void PreTokenizer::split_piece(const Step& step, std::string_view text, Range piece, std::vector<Range>& out) const {
  const std::string_view subject = text.substr(piece.begin, piece.end - piece.begin);
  const bool isolated = step.behavior == Behavior::kIsolated;
  thread_local std::vector<Part> parts;
  parts.clear();
  size_t position = 0, gap_start = 0;
  while (position < subject.size()) {
    const Regex::Match m = step.regex.find(subject, position);
    if (!m.found) break;
    if (m.end == m.begin) {  // empty match: it splits nothing; step over one character
      position = m.begin + std::max<size_t>(1, utf8::valid_sequence_length(subject.substr(m.begin)));
      continue;
    }
    if (isolated) {  // the common case, without the intermediate list
      if (m.begin > gap_start) out.push_back({piece.begin + gap_start, piece.begin + m.begin});
      out.push_back({piece.begin + m.begin, piece.begin + m.end});
    } else {
      if (m.begin > gap_start) parts.push_back({piece.begin + gap_start, piece.begin + m.begin, false});
      parts.push_back({piece.begin + m.begin, piece.begin + m.end, true});
    }
    position = gap_start = m.end;
  }
  if (isolated) {
    if (gap_start < subject.size()) out.push_back({piece.begin + gap_start, piece.end});
    return;
  }
  if (gap_start < subject.size()) parts.push_back({piece.begin + gap_start, piece.end, false});
  apply_behavior(step.behavior, parts, out);
}

void PreTokenizer::split(std::string_view text, std::vector<Range>& out) const {
  if (text.empty()) return;
  if (steps_.empty()) {
    out.push_back({0, text.size()});
    return;
  }
  thread_local std::vector<Range> current, next;
  current.assign(1, {0, text.size()});
  for (size_t s = 0; s < steps_.size(); ++s) {
    std::vector<Range>& target = s + 1 == steps_.size() ? out : next;
    if (&target == &next) next.clear();
    for (const Range& piece : current) split_piece(steps_[s], text, piece, target);
    if (&target == &next) std::swap(current, next);
  }
}

}  // namespace grpo
