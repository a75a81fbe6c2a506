// The Jinja2 subset interpreter on its own: whitespace rules, loops and scopes, Undefined,
// errors and limits. (Byte-for-byte agreement with jinja2 on real chat templates is
// test_chat_templates_vs_jinja2.py.)
#include <gtest/gtest.h>

#include "router/jinja/template.h"

namespace strata::jinja {
namespace {

StatusOr<std::string> render(std::string_view source, const nlohmann::ordered_json& vars = nlohmann::ordered_json::object(),
                             const RenderLimits& limits = {}) {
  STRATA_ASSIGN_OR_RETURN(Template t, Template::parse(source));
  return t.render(from_json(vars), limits);
}

std::string ok(std::string_view source, const nlohmann::ordered_json& vars = nlohmann::ordered_json::object()) {
  auto r = render(source, vars);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? *r : "";
}

std::string error(std::string_view source, const nlohmann::ordered_json& vars = nlohmann::ordered_json::object(),
                  const RenderLimits& limits = {}) {
  auto r = render(source, vars, limits);
  EXPECT_FALSE(r.ok()) << "rendered: " << (r.ok() ? *r : "");
  return r.ok() ? "" : r.status().message();
}

TEST(JinjaWhitespace, TrimBlocksDropsTheNewlineAfterATag) {
  EXPECT_EQ(ok("{% if true %}\nyes\n{% endif %}\nafter"), "yes\nafter");
}

TEST(JinjaWhitespace, LstripBlocksDropsIndentBeforeABlockTagButNotBeforeOutput) {
  EXPECT_EQ(ok("  {% if true %}\n    x\n  {% endif %}\n  {{ 'y' }}"), "    x\n  y");
}

TEST(JinjaWhitespace, DashStripsAllWhitespaceAndPlusKeepsIt) {
  EXPECT_EQ(ok("a  \n  {%- if true -%}  \n  b  {{- ' c ' -}}  \n d{% endif %}"), "ab c d");
  EXPECT_EQ(ok("a\n  {%+ if true %}b{% endif %}"), "a\n  b");
  EXPECT_EQ(ok("{% if true +%}\nb{% endif %}"), "\nb");
}

TEST(JinjaWhitespace, OneTrailingNewlineOfTheSourceIsDropped) {
  EXPECT_EQ(ok("x\n"), "x");
  EXPECT_EQ(ok("x\n\n"), "x\n");
  EXPECT_EQ(ok("a\r\nb"), "a\nb");
}

TEST(JinjaWhitespace, CommentsAndRawBlocks) {
  EXPECT_EQ(ok("a{# note #}b\n{#- x -#}\nc"), "abc");
  EXPECT_EQ(ok("{% raw %}{{ not evaluated }}{% endraw %}"), "{{ not evaluated }}");
}

TEST(JinjaLoop, LoopVariables) {
  EXPECT_EQ(ok("{% for x in 'abc' %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.first }}"
               "{{ loop.last }}{{ loop.length }};{% endfor %}"),
            "103TrueFalse3;212FalseFalse3;321FalseTrue3;");
}

TEST(JinjaLoop, ElseFilterBreakContinueAndUnpacking) {
  EXPECT_EQ(ok("{% for x in [] %}x{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(ok("{% for x in range(10) if x is odd %}{{ x }}{% if loop.last %}!{% endif %}{% endfor %}"), "13579!");
  EXPECT_EQ(ok("{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x > 4 %}{% break %}"
               "{% endif %}{{ x }}{% endfor %}"),
            "0134");
  EXPECT_EQ(ok("{% for k, v in d.items() %}{{ k }}={{ v }},{% endfor %}", {{"d", {{"b", 1}, {"a", 2}}}}), "b=1,a=2,");
}

TEST(JinjaScope, SetInsideALoopDoesNotLeakButANamespaceDoes) {
  EXPECT_EQ(ok("{% set x = 1 %}{% for i in [1, 2] %}{% set x = 5 %}{% endfor %}{{ x }}"), "1");
  EXPECT_EQ(ok("{% set ns = namespace(n=0) %}{% for i in [1, 2] %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}"), "3");
  EXPECT_EQ(ok("{% if true %}{% set y = 2 %}{% endif %}{{ y }}"), "2");
}

TEST(JinjaUndefined, BehavesAsJinja2Undefined) {
  EXPECT_EQ(ok("[{{ missing }}]{{ missing is defined }}{{ missing is undefined }}{{ missing | default('d') }}"),
            "[]FalseTrued");
  EXPECT_EQ(ok("{% if missing %}x{% else %}falsy{% endif %}{{ missing | length }}"), "falsy0");
  EXPECT_EQ(ok("{{ d.nokey is defined }}{{ d.nokey }}", {{"d", nlohmann::ordered_json::object()}}), "False");
  EXPECT_NE(error("{{ missing.attr }}").find("'missing' is undefined"), std::string::npos);
  EXPECT_NE(error("{{ d.a.b }}", {{"d", nlohmann::ordered_json::object()}}).find("'dict object' has no attribute 'a'"),
            std::string::npos);
  EXPECT_NE(error("{{ missing + 1 }}").find("'missing' is undefined"), std::string::npos);
}

TEST(JinjaExpressions, PythonSemantics) {
  EXPECT_EQ(ok("{{ 'abcdef'[::-1] }} {{ [1,2,3][1:] }} {{ 'abc'[-1] }} {{ 7 // 2 }} {{ -7 % 3 }} {{ 7 / 2 }}"),
            "fedcba [2, 3] c 3 2 3.5");
  EXPECT_EQ(ok("{{ 1 ~ 'a' }} {{ 'x' if false }}|{{ 'a' in 'cat' }} {{ 3 not in [1, 2] }} {{ none }} {{ 1.0 }} {{ 1e20 }}"),
            "1a |True True None 1.0 1e+20");
  EXPECT_EQ(ok("{{ {'a': [1, 'x', none, true]} }}"), "{'a': [1, 'x', None, True]}");
  EXPECT_EQ(ok("{{ '  x  '.strip() }}|{{ 'a,b'.split(',') }}|{{ 'Hi'.startswith('H') }}|{{ 'ab'.upper() }}"),
            "x|['a', 'b']|True|AB");
  EXPECT_EQ(ok("{{ d.get('a') }} {{ d.get('z', 0) }} {{ d.keys() | list }}", {{"d", {{"a", 1}}}}), "1 0 ['a']");
}

TEST(JinjaFilters, TojsonMatchesHfJsonDumps) {
  const nlohmann::ordered_json v = {{"b", "é\"\n"}, {"a", {1, 2.5, nullptr, true}}, {"e", nlohmann::ordered_json::object()}};
  EXPECT_EQ(ok("{{ v | tojson }}", {{"v", v}}), R"({"b": "é\"\n", "a": [1, 2.5, null, true], "e": {}})");
  EXPECT_EQ(ok("{{ v | tojson(indent=2) }}", {{"v", {{"a", {1}}}}}), "{\n  \"a\": [\n    1\n  ]\n}");
  EXPECT_EQ(ok("{{ v | tojson(sort_keys=true) }}", {{"v", {{"b", 1}, {"a", 2}}}}), R"({"a": 2, "b": 1})");
}

TEST(JinjaFilters, CommonFilters) {
  EXPECT_EQ(ok("{{ ' x ' | trim }}|{{ [3, 1, 2] | sort | join(',') }}|{{ 'ab' | upper }}|{{ [1, 1, 2] | unique | list }}"),
            "x|1,2,3|AB|[1, 2]");
  EXPECT_EQ(ok("{{ ms | selectattr('role', 'equalto', 'user') | map(attribute='c') | join }}",
               {{"ms", {{{"role", "user"}, {"c", "a"}}, {{"role", "bot"}, {"c", "b"}}, {{"role", "user"}, {"c", "c"}}}}}),
            "ac");
  EXPECT_EQ(ok("{{ 'a\nb' | indent(2) }}|{{ 'hello world' | title }}|{{ [1, 2] | first }}{{ [1, 2] | last }}"),
            "a\n  b|Hello World|12");
}

TEST(JinjaMacro, DefaultsKeywordsAndCaller) {
  EXPECT_EQ(ok("{% macro m(a, b='B') %}{{ a }}{{ b }}{% endmacro %}{{ m(1) }} {{ m(1, b=2) }}"), "1B 12");
  EXPECT_EQ(ok("{% macro w() %}[{{ caller() }}]{% endmacro %}{% call w() %}in{% endcall %}"), "[in]");
  EXPECT_NE(error("{% macro m(a) %}{% endmacro %}{{ m(z=1) }}").find("no keyword argument 'z'"), std::string::npos);
}

TEST(JinjaErrors, RaiseExceptionMessageIsVerbatim) {
  EXPECT_EQ(error("{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"),
            "Conversation roles must alternate user/assistant/user/assistant/...");
}

TEST(JinjaErrors, SyntaxErrorsNameTheProblem) {
  EXPECT_NE(error("{% for x in y %}").find("'endfor'"), std::string::npos);
  EXPECT_NE(error("{{ x | nosuchfilter }}").find("No filter named 'nosuchfilter'"), std::string::npos);
  EXPECT_NE(error("{% frobnicate %}").find("unknown tag 'frobnicate'"), std::string::npos);
  EXPECT_NE(error("{{ 'unterminated }}").find("string literal"), std::string::npos);
  EXPECT_NE(error("{{ x ").find("expected"), std::string::npos);
  EXPECT_NE(error("{{ (1 }}").find("syntax error"), std::string::npos);
}

TEST(JinjaErrors, SandboxRefusesMutation) {
  EXPECT_NE(error("{% set l = [] %}{{ l.append(1) }}").find("unsafe"), std::string::npos);
}

TEST(JinjaLimits, RunawayLoopsStopAtTheStepLimit) {
  RenderLimits limits;
  limits.max_steps = 10000;
  EXPECT_NE(error("{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}",
                  nlohmann::ordered_json::object(), limits)
                .find("steps"),
            std::string::npos);
}

TEST(JinjaLimits, RecursionOutputSizeAndNesting) {
  EXPECT_NE(error("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}").find("nested deeper"), std::string::npos);
  RenderLimits small;
  small.max_output_bytes = 1000;
  EXPECT_NE(error("{{ 'x' * 100000 }}", nlohmann::ordered_json::object(), small).find("exceeds"), std::string::npos);
  EXPECT_NE(error("{% set ns = namespace(s='xx') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
                  nlohmann::ordered_json::object(), small)
                .find("exceeds"),
            std::string::npos);
  EXPECT_NE(error("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}").find("nested deeper"),
            std::string::npos);
  EXPECT_NE(error("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}").find("nested too deeply"),
            std::string::npos);
}

}  // namespace
}  // namespace strata::jinja
