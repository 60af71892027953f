// The Jinja subset of chat templates, construct by construct, with expected text written out by hand
// from @huggingface/jinja's semantics (the reference of tests/tokenizer_jinja_conformance.cpp): where it
// differs from Python's Jinja (true/false written in lower case, strip() taking no characters, title()
// on ASCII word characters only) the expected string says so.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "policy/tokenizer/jinja/jinja.h"

namespace {

using grpo::jinja::JinjaError;

std::string jinja_sem_render(const std::string& source, const char* variables = "{}") {
  grpo::jinja::RenderOptions options;
  options.now = 1768478400;  // 2026-01-15 12:00:00 UTC
  return grpo::jinja::Template(source, "t").render(nlohmann::ordered_json::parse(variables), options);
}

}  // namespace

TEST_CASE("jinja: text, whitespace control, lstrip_blocks and trim_blocks") {
  CHECK(jinja_sem_render("a  {{- 'b' -}}  c") == "abc");
  CHECK(jinja_sem_render("a {{ 'b' }} c") == "a b c");
  // The newline after a block tag goes (trim_blocks), so does the indentation before one (lstrip_blocks),
  // and one final newline of the template.
  CHECK(jinja_sem_render("{% if true %}\n  x\n  {% endif %}\n") == "  x\n");
  CHECK(jinja_sem_render("x {#- a comment -#} y") == "xy");
  CHECK(jinja_sem_render("x\n{%- if true -%}\n\n y{% endif %}") == "xy");
  CHECK(jinja_sem_render("{{ 'a' }}\n{{ 'b' }}") == "a\nb");  // expressions keep their newline
  // {% generation %} markers (assistant masks in TRL-style templates) are dropped with the whitespace
  // around them unless a '-' says otherwise, as the reference does.
  CHECK(jinja_sem_render("a {% generation %}b{% endgeneration %} c|x\n  {%- generation -%}  y  {% endgeneration -%}\n z") ==
        "a b c|xy  z");
}

TEST_CASE("jinja: if / elif / else and the ternary") {
  const char* t = "{% if n > 2 %}big{% elif n == 2 %}two{% else %}small{% endif %}";
  CHECK(jinja_sem_render(t, R"({"n": 3})") == "big");
  CHECK(jinja_sem_render(t, R"({"n": 2})") == "two");
  CHECK(jinja_sem_render(t, R"({"n": 1})") == "small");
  CHECK(jinja_sem_render("{{ 'y' if ok else 'n' }}{{ 'y' if not ok else 'n' }}", R"({"ok": true})") == "yn");
  CHECK(jinja_sem_render("[{{ 'y' if false }}]") == "[]");  // no else: undefined, which writes nothing
}

TEST_CASE("jinja: for loops, loop variables, filtered loops, else, break and continue") {
  CHECK(jinja_sem_render("{% for x in ['a', 'b', 'c'] %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}"
                         "{{ loop.last }}{{ loop.length }}{{ loop.revindex }}{{ x }};{% endfor %}") ==
        "10truefalse33a;21falsefalse32b;32falsetrue31c;");
  CHECK(jinja_sem_render("{% for x in [1, 2, 3, 4] if x % 2 == 0 %}{{ x }}/{{ loop.length }},{% endfor %}") == "2/2,4/2,");
  CHECK(jinja_sem_render("{% for x in [] %}x{% else %}empty{% endfor %}") == "empty");
  CHECK(jinja_sem_render("{% for k, v in {'a': 1, 'b': [1, 2]}.items() %}{{ k }}={{ v }};{% endfor %}") == "a=1;b=[1, 2];");
  CHECK(jinja_sem_render("{% for k in {'x': 1, 'y': 2} %}{{ k }}{% endfor %}") == "xy");
  CHECK(jinja_sem_render("{% for x in [1, 2, 3, 4] %}{% if x == 3 %}{% break %}{% endif %}{{ x }}{% endfor %}") == "12");
  CHECK(jinja_sem_render("{% for x in [1, 2, 3] %}{% if x == 2 %}{% continue %}{% endif %}{{ x }}{% endfor %}") == "13");
  CHECK(jinja_sem_render("{% for m in messages[::-1] %}{{ m }}{% endfor %}", R"({"messages": [1, 2, 3]})") == "321");
  // Nested loops each have their own loop.
  CHECK(jinja_sem_render("{% for a in [1, 2] %}{% for b in [1] %}{{ loop.length }}{% endfor %}{{ loop.length }}{% endfor %}") ==
        "1212");
}

TEST_CASE("jinja: set, scoping, namespace attributes and set blocks") {
  CHECK(jinja_sem_render("{% set x = 'a' %}{% set y, z = [1, 2] %}{{ x }}{{ y }}{{ z }}") == "a12");
  // A set inside a loop stays in the loop (Jinja's scoping); a namespace carries values out.
  CHECK(jinja_sem_render("{% set n = 0 %}{% for x in [1, 2] %}{% set n = n + x %}{% endfor %}{{ n }}") == "0");
  CHECK(jinja_sem_render("{% set ns = namespace(n=0, seen=false) %}{% for x in [1, 2, 3] %}{% set ns.n = ns.n + x %}"
                         "{% endfor %}{{ ns.n }}{{ ns.seen }}") == "6false");
  CHECK(jinja_sem_render("{% set block %}a{{ 1 + 1 }}{% endset %}[{{ block }}]") == "[a2]");
}

TEST_CASE("jinja: macros with positional, keyword and default arguments") {
  const char* macro = "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}";
  CHECK(jinja_sem_render(std::string(macro) + "{{ greet('Ann') }} {{ greet('Bob', punct='?') }} {{ greet(name='Cy') }}") ==
        "Hi Ann! Hi Bob? Hi Cy!");
  CHECK_THROWS_WITH_AS(jinja_sem_render(std::string(macro) + "{{ greet('a', 'b', 'c') }}"),
                       doctest::Contains("macro 'greet' takes at most 2 argument(s)"), JinjaError);
}

TEST_CASE("jinja: string filters") {
  CHECK(jinja_sem_render("{{ '  x \n' | trim }}|{{ 'aBc' | upper }}{{ 'AbC' | lower }}|{{ 'hello world' | capitalize }}") ==
        "x|ABCabc|Hello world");
  // title() upper-cases a letter after a non-word character, and é is not a word character here.
  CHECK(jinja_sem_render("{{ 'héllo wörld' | title }}") == "HéLlo WöRld");
  CHECK(jinja_sem_render("{{ 'a-b-c' | replace('-', '+') }}{{ 'abc' | length }}{{ 'é👍' | length }}") == "a+b+c33");
  CHECK(jinja_sem_render("{{ 'a\nb\n\nc' | indent(2) }}|{{ 'a\nb' | indent(2, true) }}|{{ 'a\nb' | indent }}") ==
        "a\n  b\n\n  c|  a\n  b|a\n    b");
  CHECK(jinja_sem_render("{{ '42' | int + 1 }}{{ 3.7 | int }}{{ 'x' | int }}{{ ' 7a' | int }}{{ '2.5' | float }}") == "43307" "2.5");
  CHECK(jinja_sem_render("{{ missing | default('d') }}{{ '' | default('e', true) }}{{ 'x' | default('f') }}") == "dex");
  CHECK(jinja_sem_render("{{ '<b>' | safe }}{{ 5 | string }}{{ true | string }}{{ -3 | abs }}") == "<b>5true3");
}

TEST_CASE("jinja: list and dict filters") {
  CHECK(jinja_sem_render("{{ [3, 1, 2] | length }}{{ {'a': 1} | length }}{{ [1, 2, 3] | first }}{{ [1, 2, 3] | last }}") ==
        "3113");
  CHECK(jinja_sem_render("{{ ['a', 'b'] | join(', ') }}|{{ [1, 2] | join }}|{{ [3, 1, 2] | sort }}{{ [1, 2] | reverse }}") ==
        "a, b|12|[1, 2, 3][2, 1]");
  CHECK(jinja_sem_render("{{ [1, 1, 2] | unique }}{{ [1, 'a'] | list }}{{ [1, 'a'] | string }}") == "[1, 2][1, \"a\"][1, \"a\"]");
  const char* ms = "{% set ms = [{'role': 'user', 'n': 1}, {'role': 'system', 'n': 2}, {'role': 'user', 'n': 3}] %}";
  CHECK(jinja_sem_render(std::string(ms) + "{{ ms | selectattr('role', 'equalto', 'user') | map(attribute='n') | join(',') }}|"
                                           "{{ ms | rejectattr('role', 'equalto', 'user') | map(attribute='n') | list }}|"
                                           "{{ ms | selectattr('n') | length }}") == "1,3|[2]|3");
  CHECK(jinja_sem_render("{% for k, v in {'x': 1, 'y': none} | items %}{{ k }}{{ v }}{% endfor %}") == "x1y");
  CHECK(jinja_sem_render("{{ {'b': 2, 'a': 1} | dictsort }}") == "[[\"a\", 1], [\"b\", 2]]");
}

TEST_CASE("jinja: tojson keeps key order, writes ', ' and ': ', and takes indent, separators, ensure_ascii") {
  CHECK(jinja_sem_render("{{ {'b': 1, 'a': [true, none, 1.5, 'q\"\\\\'], 'c': {}, 'd': []} | tojson }}") ==
        R"({"b": 1, "a": [true, null, 1.5, "q\"\\"], "c": {}, "d": []})");
  CHECK(jinja_sem_render("{{ {'a': [1, 2], 'b': {}} | tojson(indent=2) }}") == "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": {}\n}");
  CHECK(jinja_sem_render("{{ {'a': [1, 2]} | tojson(separators=(',', ':')) }}") == R"({"a":[1,2]})");
  CHECK(jinja_sem_render("{{ 'é\n\t' | tojson }}{{ 'é' | tojson(ensure_ascii=true) }}") == "\"é\\n\\t\"\"\\u00e9\"");
  // Numbers as JavaScript writes them: 2.0 from JSON is the integer 2, 1e-7 keeps its exponent.
  CHECK(jinja_sem_render("{{ x | tojson }}", R"({"x": [2.0, 0.5, 1e-7, -0.25, 123456789012]})") ==
        "[2, 0.5, 1e-7, -0.25, 123456789012]");
}

TEST_CASE("jinja: tests") {
  CHECK(jinja_sem_render("{{ x is defined }}{{ x is undefined }}{{ none is none }}{{ 'a' is string }}{{ {} is mapping }}"
                         "{{ [1] is iterable }}{{ 'a' is iterable }}{{ {} is iterable }}{{ [1] is sequence }}{{ 3 is odd }}"
                         "{{ 1 is number }}{{ 'x' is not string }}{{ true is boolean }}{{ 4 is even }}") ==
        "falsetruetruetruetruetruetruefalsetruetruetruefalsetruetrue");
  CHECK(jinja_sem_render("{{ enable_thinking is defined and enable_thinking is false }}", R"({"enable_thinking": false})") ==
        "true");
}

TEST_CASE("jinja: operators") {
  CHECK(jinja_sem_render("{{ 'a' in 'cat' }}{{ 'z' not in 'cat' }}{{ 2 in [1, 2] }}{{ 'k' in {'k': 1} }}{{ 'x' in missing }}") ==
        "truetruetruetruefalse");
  CHECK(jinja_sem_render("{{ 1 ~ 'x' ~ 2.5 }}|{{ 7 // 2 }}|{{ 7 % 3 }}|{{ 7 / 2 }}|{{ 4 / 2 }}|{{ 2 * 3 + 1 }}|{{ 1 - -1 }}|"
                         "{{ 2 ** 3 }}|{{ 0.1 + 0.2 }}|{{ 'a' + 'b' }}|{{ [1] + [2] }}") ==
        "1x2.5|3|1|3.5|2.0|7|2|8|0.30000000000000004|ab|[1, 2]");
  CHECK(jinja_sem_render("{{ 3 > 2 and 2 >= 2 }}{{ not false or false }}{{ 1 == 1.0 }}{{ 'a' != 'a' }}{{ none == x }}") ==
        "truetruetruefalsetrue");
  // and / or give an operand, as in Python.
  CHECK(jinja_sem_render("{{ '' or 'fallback' }}{{ 'a' and 'b' }}{{ [] or 'empty' }}") == "fallbackbempty");
}

TEST_CASE("jinja: indexing, negative indices and slices") {
  CHECK(jinja_sem_render("{{ [1, 2, 3, 4][::-1] }}{{ 'hello'[1:3] }}{{ 'hello'[-1] }}{{ [1, 2, 3][-2] }}{{ [1, 2, 3, 4, 5][1::2] }}") ==
        "[4, 3, 2, 1]elo2[2, 4]");
  CHECK(jinja_sem_render("{{ 'héllo'[:2] }}|{{ [1, 2, 3][5] }}|{{ m['role'] }}{{ m.role }}{{ m.missing }}",
                         R"({"m": {"role": "user"}})") == "hé||useruser");
  CHECK(jinja_sem_render("{{ messages[0].role }}", R"({"messages": []})") == "");  // undefined, not an error
}

TEST_CASE("jinja: string and dict methods") {
  CHECK(jinja_sem_render("{{ 'a,b,,c'.split(',') }}{{ '  a b  '.split() }}{{ 'a,b,c'.split(',', 1) }}") ==
        R"(["a", "b", "", "c"]["a", "b"]["a", "b,c"])");
  CHECK(jinja_sem_render("{{ 'x'.startswith('x') }}{{ 'abc'.endswith(('z', 'c')) }}{{ 'abc'.startswith('b') }}") ==
        "truetruefalse");
  // strip/lstrip/rstrip trim whitespace; like the reference they ignore a characters argument.
  CHECK(jinja_sem_render("[{{ '\n x \n'.strip() }}|{{ '\n x'.lstrip('\n') }}|{{ 'x \n'.rstrip() }}]") == "[x|x|x]");
  CHECK(jinja_sem_render("{{ 'aaa'.replace('a', 'b', 2) }}{{ 'Ab'.upper() }}{{ 'Ab'.lower() }}{{ 'a b'.title() }}") == "bbaABabA B");
  CHECK(jinja_sem_render("{% set d = {'a': 1, 'b': none} %}{{ d.get('a') }}{{ d.get('z', 'def') }}{{ d.get('b') is none }}"
                         "{{ d.keys() | join }}{{ d.values() | length }}{{ d.items() | length }}") == "1deftrueab22");
}

TEST_CASE("jinja: globals: raise_exception, range, strftime_now, namespace, True/False/None") {
  CHECK_THROWS_WITH_AS(jinja_sem_render("{{ raise_exception('bad input') }}"), "t:1:4: raise_exception: bad input",
                       JinjaError);
  CHECK(jinja_sem_render("{% for i in range(3) %}{{ i }}{% endfor %}{{ range(1, 7, 2) }}") == "012[1, 3, 5]");
  CHECK(jinja_sem_render("{{ strftime_now('%d %b %Y %H:%M') }}|{{ strftime_now('%B %m/%d') }}") ==
        "15 Jan 2026 12:00|January 01/15");
  CHECK(jinja_sem_render("{{ True }}{{ False }}{{ None is none }}") == "truefalsetrue");
}

TEST_CASE("jinja: chat variables as apply_chat_template passes them") {
  const char* t =
      "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}"
      "{% if m.reasoning_content %}[{{ m.reasoning_content }}]{% endif %}"
      "{% for c in m.tool_calls or [] %}({{ c.function.name }}:{{ c.function.arguments | tojson }}){% endfor %}"
      "{{ eos_token }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}"
      "{% if enable_thinking is defined and enable_thinking is false %}/no_think{% endif %}"
      "{% if tools %}{{ tools | length }} tools{% endif %}";
  const char* variables = R"({"bos_token": "<s>", "eos_token": "</s>", "add_generation_prompt": true,
      "enable_thinking": false, "tools": [{"name": "f"}],
      "messages": [{"role": "user", "content": "hi"},
                   {"role": "assistant", "content": "", "reasoning_content": "think",
                    "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": {"x": 1}}}]}]})";
  CHECK(jinja_sem_render(t, variables) == "<s><user>hi</s><assistant>[think](f:{\"x\": 1})</s><assistant>/no_think1 tools");
}
