#include "rewards/bounded_pattern.h"

#include <lua.hpp>

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "rewards/lua_sandbox.h"

// Every function here is C-style (see rewards/lua_trampoline.h), like Lua's own lstrlib: a malformed
// pattern, a spent budget (LuaSandbox::charge), a memory error while pushing captures or growing the
// luaL_Buffer (a Lua-owned box, collected like any garbage), and an error raised by gsub's replacement
// function all jump over these frames, so only trivially destructible objects live on them; the
// static_asserts below keep it so. Such a function needs no trampoline and no protected call: the
// replacement function's error passes through unchanged, as in Lua.

namespace grpo::rewards {
namespace {

constexpr int kMaxCaptures = 32;          // as LUA_MAXCAPTURES
constexpr int kMaxRecursion = 200;        // as Lua's MAXCCALLS for patterns: "pattern too complex"
constexpr std::int64_t kChargeEvery = 1024;  // steps between budget checks
constexpr std::ptrdiff_t kUnfinished = -1;
constexpr std::ptrdiff_t kPosition = -2;
constexpr char kEscape = '%';

struct Matcher {
  lua_State* state;
  const char* subject;      // start of the subject
  const char* subject_end;
  const char* pattern_end;
  int depth;
  int level;  // captures opened so far
  std::int64_t steps;  // not yet charged
  struct {
    const char* start;
    std::ptrdiff_t length;  // or kUnfinished / kPosition
  } captures[kMaxCaptures];
};

static_assert(std::is_trivially_destructible_v<Matcher>, "Lua errors jump over Matcher frames");

void step(Matcher& m, std::int64_t count = 1) {
  m.steps += count;
  if (m.steps >= kChargeEvery) {
    const std::int64_t due = m.steps;
    m.steps = 0;
    LuaSandbox::charge(m.state, due);
  }
}

void settle(Matcher& m) {
  const std::int64_t due = m.steps;
  m.steps = 0;
  if (due > 0) LuaSandbox::charge(m.state, due);
}

void reset(Matcher& m) {
  m.level = 0;
  m.depth = 0;
}

Matcher make_matcher(lua_State* state, const char* subject, std::size_t subject_size,
                     const char* pattern, std::size_t pattern_size) {
  Matcher m;
  m.state = state;
  m.subject = subject;
  m.subject_end = subject + subject_size;
  m.pattern_end = pattern + pattern_size;
  m.depth = 0;
  m.level = 0;
  m.steps = 0;
  return m;
}

// --- single characters and classes -------------------------------------------------------------

bool matches_class(int c, int class_letter) {
  bool result;
  switch (std::tolower(class_letter)) {
    case 'a': result = std::isalpha(c); break;
    case 'c': result = std::iscntrl(c); break;
    case 'd': result = std::isdigit(c); break;
    case 'g': result = std::isgraph(c); break;
    case 'l': result = std::islower(c); break;
    case 'p': result = std::ispunct(c); break;
    case 's': result = std::isspace(c); break;
    case 'u': result = std::isupper(c); break;
    case 'w': result = std::isalnum(c); break;
    case 'x': result = std::isxdigit(c); break;
    default: return class_letter == c;  // an escaped literal such as %. or %%
  }
  return std::isupper(class_letter) ? !result : result;
}

// `p` points at '[', `set_end` at its closing ']'.
bool matches_set(int c, const char* p, const char* set_end) {
  bool wanted = true;
  if (p[1] == '^') {
    wanted = false;
    ++p;
  }
  while (++p < set_end) {
    if (*p == kEscape) {
      ++p;
      if (matches_class(c, static_cast<unsigned char>(*p))) return wanted;
    } else if (p[1] == '-' && p + 2 < set_end) {
      p += 2;
      if (static_cast<unsigned char>(p[-2]) <= c && c <= static_cast<unsigned char>(*p)) return wanted;
    } else if (static_cast<unsigned char>(*p) == c) {
      return wanted;
    }
  }
  return !wanted;
}

// The end of the single-character class starting at `p`.
const char* class_end(Matcher& m, const char* p) {
  const char c = *p++;
  if (c == kEscape) {
    if (p >= m.pattern_end) luaL_error(m.state, "malformed pattern (ends with '%%')");
    return p + 1;
  }
  if (c == '[') {
    if (*p == '^') ++p;
    do {  // the first character of a set may be ']'
      if (p >= m.pattern_end) luaL_error(m.state, "malformed pattern (missing ']')");
      const char d = *p++;
      if (d == kEscape && p < m.pattern_end) ++p;
    } while (*p != ']');
    return p + 1;
  }
  return p;
}

bool single_match(const Matcher& m, const char* s, const char* p, const char* class_stop) {
  if (s >= m.subject_end) return false;
  const int c = static_cast<unsigned char>(*s);
  switch (*p) {
    case '.': return true;
    case kEscape: return matches_class(c, static_cast<unsigned char>(p[1]));
    case '[': return matches_set(c, p, class_stop - 1);
    default: return static_cast<unsigned char>(*p) == c;
  }
}

// --- the backtracking matcher --------------------------------------------------------------------

const char* match(Matcher& m, const char* s, const char* p);

const char* max_expand(Matcher& m, const char* s, const char* p, const char* ep) {
  std::ptrdiff_t count = 0;
  while (single_match(m, s + count, p, ep)) {
    ++count;
    step(m);
  }
  for (; count >= 0; --count) {  // try the longest repetition first, then shorter ones
    const char* end = match(m, s + count, ep + 1);
    if (end) return end;
  }
  return nullptr;
}

const char* min_expand(Matcher& m, const char* s, const char* p, const char* ep) {
  for (;;) {
    const char* end = match(m, s, ep + 1);
    if (end) return end;
    if (!single_match(m, s, p, ep)) return nullptr;
    ++s;
  }
}

const char* start_capture(Matcher& m, const char* s, const char* p, std::ptrdiff_t what) {
  if (m.level >= kMaxCaptures) luaL_error(m.state, "too many captures");
  m.captures[m.level].start = s;
  m.captures[m.level].length = what;
  ++m.level;
  const char* end = match(m, s, p);
  if (!end) --m.level;
  return end;
}

const char* end_capture(Matcher& m, const char* s, const char* p) {
  int open = -1;
  for (int i = m.level - 1; i >= 0; --i) {
    if (m.captures[i].length == kUnfinished) {
      open = i;
      break;
    }
  }
  if (open < 0) luaL_error(m.state, "invalid pattern capture");
  m.captures[open].length = s - m.captures[open].start;
  const char* end = match(m, s, p);
  if (!end) m.captures[open].length = kUnfinished;
  return end;
}

const char* match_balance(Matcher& m, const char* s, const char* p) {
  if (p + 1 >= m.pattern_end) luaL_error(m.state, "malformed pattern (missing arguments to '%%b')");
  if (s >= m.subject_end || *s != *p) return nullptr;
  const char open = p[0], close = p[1];
  int depth = 1;
  while (++s < m.subject_end) {
    step(m);
    if (*s == close) {
      if (--depth == 0) return s + 1;
    } else if (*s == open) {
      ++depth;
    }
  }
  return nullptr;
}

const char* match_back_reference(Matcher& m, const char* s, int letter) {
  const int index = letter - '1';
  if (index < 0 || index >= m.level || m.captures[index].length == kUnfinished) {
    luaL_error(m.state, "invalid capture index %%%d", index + 1);
  }
  const std::size_t length = static_cast<std::size_t>(m.captures[index].length);
  step(m, static_cast<std::int64_t>(length));
  if (static_cast<std::size_t>(m.subject_end - s) >= length &&
      std::memcmp(m.captures[index].start, s, length) == 0) {
    return s + length;
  }
  return nullptr;
}

const char* match(Matcher& m, const char* s, const char* p) {
  if (++m.depth > kMaxRecursion) luaL_error(m.state, "pattern too complex");
  for (;;) {
    step(m);
    if (p == m.pattern_end) break;
    if (*p == '(') {
      s = p[1] == ')' ? start_capture(m, s, p + 2, kPosition) : start_capture(m, s, p + 1, kUnfinished);
      break;
    }
    if (*p == ')') {
      s = end_capture(m, s, p + 1);
      break;
    }
    if (*p == '$' && p + 1 == m.pattern_end) {
      if (s != m.subject_end) s = nullptr;
      break;
    }
    if (*p == kEscape && p[1] == 'b') {
      s = match_balance(m, s, p + 2);
      if (!s) break;
      p += 4;
      continue;
    }
    if (*p == kEscape && p[1] == 'f') {  // frontier: previous char not in set, current char in set
      p += 2;
      if (*p != '[') luaL_error(m.state, "missing '[' after '%%f' in pattern");
      const char* ep = class_end(m, p);
      const int previous = s == m.subject ? '\0' : static_cast<unsigned char>(s[-1]);
      const int current = s < m.subject_end ? static_cast<unsigned char>(*s) : '\0';
      if (!matches_set(previous, p, ep - 1) && matches_set(current, p, ep - 1)) {
        p = ep;
        continue;
      }
      s = nullptr;
      break;
    }
    if (*p == kEscape && std::isdigit(static_cast<unsigned char>(p[1]))) {
      s = match_back_reference(m, s, p[1]);
      if (!s) break;
      p += 2;
      continue;
    }
    // A single-character class, maybe followed by a quantifier.
    const char* ep = class_end(m, p);
    const char quantifier = ep < m.pattern_end ? *ep : '\0';
    if (!single_match(m, s, p, ep)) {
      if (quantifier == '*' || quantifier == '?' || quantifier == '-') {  // may match zero times
        p = ep + 1;
        continue;
      }
      s = nullptr;
      break;
    }
    if (quantifier == '?') {
      const char* end = match(m, s + 1, ep + 1);
      if (end) {
        s = end;
        break;
      }
      p = ep + 1;
      continue;
    }
    if (quantifier == '+') {
      s = max_expand(m, s + 1, p, ep);
      break;
    }
    if (quantifier == '*') {
      s = max_expand(m, s, p, ep);
      break;
    }
    if (quantifier == '-') {
      s = min_expand(m, s, p, ep);
      break;
    }
    ++s;
    p = ep;
  }
  --m.depth;
  return s;
}

// --- captures as Lua values -----------------------------------------------------------------------

// Pushes capture `i`; with no captures, capture 0 is the whole match [s, e).
void push_capture(Matcher& m, int i, const char* s, const char* e) {
  if (i >= m.level) {
    if (i != 0) luaL_error(m.state, "invalid capture index %%%d", i + 1);
    lua_pushlstring(m.state, s, static_cast<std::size_t>(e - s));
    return;
  }
  const std::ptrdiff_t length = m.captures[i].length;
  if (length == kUnfinished) luaL_error(m.state, "unfinished capture");
  if (length == kPosition) {
    lua_pushinteger(m.state, (m.captures[i].start - m.subject) + 1);
  } else {
    lua_pushlstring(m.state, m.captures[i].start, static_cast<std::size_t>(length));
  }
}

// Pushes all captures (the whole match when there are none and `s` is given); returns how many.
int push_captures(Matcher& m, const char* s, const char* e) {
  const int count = (m.level == 0 && s) ? 1 : m.level;
  luaL_checkstack(m.state, count, "too many captures");
  for (int i = 0; i < count; ++i) push_capture(m, i, s, e);
  return count;
}

// --- the library functions ---------------------------------------------------------------------

// A 1-based (possibly negative) start position as a 0-based offset, as Lua 5.4's posrelatI.
std::size_t start_offset(lua_Integer position, std::size_t length) {
  if (position > 0) return static_cast<std::size_t>(position) - 1;
  if (position == 0) return 0;
  if (position < -static_cast<lua_Integer>(length)) return 0;
  return static_cast<std::size_t>(static_cast<lua_Integer>(length) + position);
}

bool has_specials(const char* pattern, std::size_t size) {
  for (std::size_t i = 0; i < size; ++i) {
    if (std::strchr("^$*+?.([%-", pattern[i]) && pattern[i] != '\0') return true;
  }
  return false;
}

int find_or_match(lua_State* state, bool find) {
  std::size_t subject_size = 0, pattern_size = 0;
  const char* subject = luaL_checklstring(state, 1, &subject_size);
  const char* pattern = luaL_checklstring(state, 2, &pattern_size);
  const std::size_t init = start_offset(luaL_optinteger(state, 3, 1), subject_size);
  if (init > subject_size) {
    luaL_pushfail(state);
    return 1;
  }
  if (find && (lua_toboolean(state, 4) || !has_specials(pattern, pattern_size))) {
    LuaSandbox::charge(state, static_cast<std::int64_t>((subject_size - init) / 16 + 1));
    if (pattern_size == 0) {
      lua_pushinteger(state, static_cast<lua_Integer>(init) + 1);
      lua_pushinteger(state, static_cast<lua_Integer>(init));
      return 2;
    }
    const void* found = memmem(subject + init, subject_size - init, pattern, pattern_size);
    if (!found) {
      luaL_pushfail(state);
      return 1;
    }
    const lua_Integer at = static_cast<const char*>(found) - subject;
    lua_pushinteger(state, at + 1);
    lua_pushinteger(state, at + static_cast<lua_Integer>(pattern_size));
    return 2;
  }
  const bool anchored = pattern_size > 0 && *pattern == '^';
  if (anchored) {
    ++pattern;
    --pattern_size;
  }
  Matcher m = make_matcher(state, subject, subject_size, pattern, pattern_size);
  const char* s = subject + init;
  do {
    reset(m);
    const char* end = match(m, s, pattern);
    if (end) {
      settle(m);
      if (find) {
        lua_pushinteger(state, (s - subject) + 1);
        lua_pushinteger(state, end - subject);
        return push_captures(m, nullptr, nullptr) + 2;
      }
      return push_captures(m, s, end);
    }
  } while (s++ < m.subject_end && !anchored);
  settle(m);
  luaL_pushfail(state);
  return 1;
}

int bounded_find(lua_State* state) { return find_or_match(state, true); }
int bounded_match(lua_State* state) { return find_or_match(state, false); }

// gmatch's iterator state: a userdata (no finaliser) kept alive by the iterator's upvalues, as are
// the subject and pattern strings it points into.
struct GmatchState {
  const char* next;        // where the next search starts
  const char* last_match;  // end of the last match: an empty match there is skipped
  Matcher matcher;
};

static_assert(std::is_trivially_destructible_v<GmatchState>, "a userdata without finaliser");

int gmatch_step(lua_State* state) {
  auto* iteration = static_cast<GmatchState*>(lua_touserdata(state, lua_upvalueindex(3)));
  Matcher& m = iteration->matcher;
  m.state = state;  // the iterator may be called from another coroutine
  const char* pattern = lua_tostring(state, lua_upvalueindex(2));
  for (const char* s = iteration->next; s <= m.subject_end; ++s) {
    reset(m);
    const char* end = match(m, s, pattern);
    if (end && end != iteration->last_match) {
      iteration->next = iteration->last_match = end;
      settle(m);
      return push_captures(m, s, end);
    }
  }
  settle(m);
  return 0;
}

int bounded_gmatch(lua_State* state) {
  std::size_t subject_size = 0, pattern_size = 0;
  const char* subject = luaL_checklstring(state, 1, &subject_size);
  const char* pattern = luaL_checklstring(state, 2, &pattern_size);
  std::size_t init = start_offset(luaL_optinteger(state, 3, 1), subject_size);
  if (init > subject_size) init = subject_size + 1;  // no matches
  lua_settop(state, 2);
  auto* iteration = static_cast<GmatchState*>(lua_newuserdatauv(state, sizeof(GmatchState), 0));
  iteration->matcher = make_matcher(state, subject, subject_size, pattern, pattern_size);
  iteration->next = subject + init;
  iteration->last_match = nullptr;
  lua_pushcclosure(state, gmatch_step, 3);
  return 1;
}

// Appends the replacement for the match [s, e) to `buffer` (the replacement is argument 3).
void add_replacement(Matcher& m, luaL_Buffer* buffer, const char* s, const char* e, int type) {
  lua_State* state = m.state;
  if (type == LUA_TSTRING || type == LUA_TNUMBER) {
    std::size_t size = 0;
    const char* replacement = lua_tolstring(state, 3, &size);
    const char* end = replacement + size;
    for (const char* r = replacement; r < end; ++r) {
      step(m);
      if (*r != kEscape) {
        luaL_addchar(buffer, *r);
        continue;
      }
      ++r;
      if (r < end && *r == kEscape) {
        luaL_addchar(buffer, kEscape);
      } else if (r < end && std::isdigit(static_cast<unsigned char>(*r))) {
        if (*r == '0') {
          luaL_addlstring(buffer, s, static_cast<std::size_t>(e - s));
        } else {
          push_capture(m, *r - '1', s, e);
          luaL_tolstring(state, -1, nullptr);
          lua_remove(state, -2);
          luaL_addvalue(buffer);
        }
      } else {
        luaL_error(state, "invalid use of '%c' in replacement string", kEscape);
      }
    }
    return;
  }
  if (type == LUA_TFUNCTION) {
    lua_pushvalue(state, 3);
    const int count = push_captures(m, s, e);
    lua_call(state, count, 1);
  } else {  // table
    push_capture(m, 0, s, e);
    lua_gettable(state, 3);
  }
  if (!lua_toboolean(state, -1)) {  // nil or false: keep the original text
    lua_pop(state, 1);
    luaL_addlstring(buffer, s, static_cast<std::size_t>(e - s));
  } else if (!lua_isstring(state, -1)) {
    luaL_error(state, "invalid replacement value (a %s)", luaL_typename(state, -1));
  } else {
    luaL_addvalue(buffer);
  }
}

int bounded_gsub(lua_State* state) {
  std::size_t subject_size = 0, pattern_size = 0;
  const char* subject = luaL_checklstring(state, 1, &subject_size);
  const char* pattern = luaL_checklstring(state, 2, &pattern_size);
  const int type = lua_type(state, 3);
  const lua_Integer max_replacements =
      luaL_optinteger(state, 4, static_cast<lua_Integer>(subject_size) + 1);
  luaL_argexpected(state,
                   type == LUA_TNUMBER || type == LUA_TSTRING || type == LUA_TFUNCTION ||
                       type == LUA_TTABLE,
                   3, "string/function/table");
  const bool anchored = pattern_size > 0 && *pattern == '^';
  if (anchored) {
    ++pattern;
    --pattern_size;
  }
  luaL_Buffer buffer;
  luaL_buffinit(state, &buffer);
  Matcher m = make_matcher(state, subject, subject_size, pattern, pattern_size);
  const char* s = subject;
  const char* last_match = nullptr;
  lua_Integer replaced = 0;
  while (replaced < max_replacements) {
    reset(m);
    const char* end = match(m, s, pattern);
    if (end && end != last_match) {
      ++replaced;
      add_replacement(m, &buffer, s, end, type);
      s = last_match = end;
    } else if (s < m.subject_end) {
      luaL_addchar(&buffer, *s++);
    } else {
      break;
    }
    if (anchored) break;
  }
  settle(m);
  luaL_addlstring(&buffer, s, static_cast<std::size_t>(m.subject_end - s));
  luaL_pushresult(&buffer);
  lua_pushinteger(state, replaced);
  return 2;
}

}  // namespace

void install_bounded_patterns(lua_State* state) {
  const luaL_Reg functions[] = {{"find", bounded_find},
                                {"match", bounded_match},
                                {"gmatch", bounded_gmatch},
                                {"gsub", bounded_gsub},
                                {nullptr, nullptr}};
  luaL_setfuncs(state, functions, 0);
}

}  // namespace grpo::rewards
