// The sandbox's budget-charged pattern matcher against Lua's own string library: the same calls,
// evaluated in a plain Lua state (the reference) and in a sandbox, must give the same results.
#include <doctest/doctest.h>

#include <lua.hpp>

#include <string>

#include "rewards/lua_sandbox.h"

using namespace grpo::rewards;

namespace {

// Wraps an expression so its results (or the fact that it errors) come back as one string.
std::string wrapped(const std::string& expression) {
  return "local function show(...) local t = table.pack(...) local out = {}\n"
         "  for i = 1, t.n do out[i] = type(t[i]) .. ':' .. tostring(t[i]) end\n"
         "  return table.concat(out, '|') end\n"
         "local ok, result = pcall(function() return show(" + expression + ") end)\n"
         "return ok and result or 'error'\n";
}

std::string run_reference(const std::string& expression) {
  lua_State* state = luaL_newstate();
  luaL_openlibs(state);
  const std::string chunk = wrapped(expression);
  REQUIRE(luaL_loadstring(state, chunk.c_str()) == LUA_OK);
  REQUIRE(lua_pcall(state, 0, 1, 0) == LUA_OK);
  std::string result = lua_tostring(state, -1);
  lua_close(state);
  return result;
}

std::string run_sandboxed(LuaSandbox& sandbox, const std::string& expression) {
  CallStatus status = sandbox.load(wrapped(expression), "=pattern_case");
  REQUIRE(status.ok());
  status = sandbox.call(0, 1);
  REQUIRE_MESSAGE(status.ok(), status.message);
  std::string result = lua_tostring(sandbox.state(), -1);
  lua_pop(sandbox.state(), 1);
  return result;
}

}  // namespace

TEST_CASE("bounded find, match, gmatch and gsub agree with Lua's string library") {
  const char* cases[] = {
      "string.find('hello world', 'o w')",
      "string.find('hello world', 'l+')",
      "string.find('hello', 'l', 1, true)",
      "string.find('a.b', '.', 1, true)",
      "string.find('abc', '', 10)",
      "string.find('abc', '', 4)",
      "string.find('abc', 'c', -1)",
      "string.find('abc', 'b', -10)",
      "string.find('  x = 10', '^%s*(%a+)%s*=%s*(%d+)')",
      "string.find('key=val', '()=()')",
      "string.match('<think>abc</think><answer> 42 </answer>', '<answer>%s*(.-)%s*</answer>')",
      "string.match('2024-01-15', '(%d+)-(%d+)-(%d+)')",
      "string.match('hello', '.-')",
      "string.match('hello', '.-$')",
      "string.match('[[nested]] text', '%b[]')",
      "string.match('THE (quick) fox', '%f[%a]%a+')",
      "string.match('abcabc', '(abc)%1')",
      "string.match('x = \"a\\\\\"b\"', '\"(.-)\"')",
      "string.match('aaa', 'a-b')",
      "string.match('aaab', 'a-b')",
      "string.match('aaab', '^a*')",
      "string.match('ab', 'a?b')",
      "string.match('b', 'a?b')",
      "string.match('x]y', '[]]')",
      "string.match('x-y', '[%-]')",
      "string.match('hello123', '[^%d]+')",
      "string.match('Hello World', '%u%l+', 2)",
      "string.match('3.14e-2', '^[+-]?%d+%.?%d*[eE]?[+-]?%d*$')",
      "string.match('abc', '()b()')",
      "string.match('abc', '(')",
      "string.match('abc', '%')",
      "string.match('abc', '[a')",
      "string.match('abc', '%1')",
      "string.gsub('hello world', 'o', '0')",
      "string.gsub('hello world', '(%w+)', '<%1>')",
      "string.gsub('hello world', '%w+', '%0 %0', 1)",
      "string.gsub('abc', '', '-')",
      "string.gsub('hello', 'l', {l = 'L'})",
      "string.gsub('$x and $y', '%$(%w+)', {x = 'X'})",
      "string.gsub('a,b,,c', ',', function() return ';' end)",
      "string.gsub('abc', '%w', function(c) return c:byte() end)",
      "string.gsub('abc', '^a', 'A')",
      "string.gsub('abc', 'b', '%2')",
      "string.gsub('abc', 'b', '%')",
      "string.gsub('a b c', '%s', '%%')",
      "string.gsub('one two', '(%w+) (%w+)', '%2 %1')",
      "(function() local t = {} for k, v in string.gmatch('a=1, b=2, c=3', '(%w+)=(%w+)') do "
      "t[#t + 1] = k .. v end return table.concat(t, ',') end)()",
      "(function() local n = 0 for w in string.gmatch('one two  three', '%a+') do n = n + #w end "
      "return n end)()",
      "(function() local t = {} for w in string.gmatch('abc', '') do t[#t + 1] = '.' end "
      "return #t end)()",
      "(function() local t = {} for a, b in string.gmatch('hello', '()l()') do t[#t + 1] = a .. b end "
      "return table.concat(t, ',') end)()",
      "(function() local t = {} for w in string.gmatch('hello world from lua', '%a+', 7) do "
      "t[#t + 1] = w end return table.concat(t, ',') end)()",
      "(function() local n = 0 for w in string.gmatch('^a^a', '^a') do n = n + 1 end return n end)()",
      "string.find('abc', 'b', 10)",
      "string.match('abc', '()', 4)",
      "string.match('abc', '()', 5)",
      "string.gsub('abc', '.', {a = 1, b = true})",
      "string.gsub('hello world', '%f[%w]%w+', string.upper)",
      "string.gsub('abc', '', '')",
      "string.gsub('a.b.c', '%.', '%%')",
      "string.find('a+b', '+', 1, true)",
      "string.find('a\\0b', '\\0')",
      "string.match('  trim me  ', '^%s*(.-)%s*$')",
      "string.match('key: value', '(%w+):%s*(%w+)')",
      "string.match('[tag]', '^%[(.*)%]$')",
      "string.find('abc', '[a-', 1)",
      "string.match('x', '[%a-z]')",
      "string.match('f(a(b)c)d', '%b()')",
      "string.match('THE END', '%f[%l]')",
      "string.rep('ab', 3, '-')",
      "('The Answer'):lower():find('answer')",
      "('x'):rep(3, ', ')",
      "string.rep('ab', 0)",
  };
  LuaSandbox sandbox;
  for (const char* expression : cases) {
    INFO(expression);
    const std::string reference = run_reference(expression);
    CHECK(run_sandboxed(sandbox, expression) == reference);
  }
}
