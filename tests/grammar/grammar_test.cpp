// The GBNF parser and the pushdown matcher against an independent recognizer: the set of
// end positions each rule can reach from each position (a memoized recursive descent over
// the same Grammar, which shares nothing with the matcher's stacks), on every string of a
// small alphabet up to a length; plus JSON, repetition bounds, UTF-8 split across calls, and
// the parser's errors.
#include "common/grammar/grammar.h"
#include "common/grammar/grammar_matcher.h"
#include "common/grammar/json_schema.h"
#include "common/grammar/token_mask.h"

#include <map>
#include <random>
#include <set>
#include <string>

#include <gtest/gtest.h>

namespace strata::grammar {
namespace {

// End positions of `rule` matched from `pos` of `text` (code points = bytes here: ASCII).
class Reference {
 public:
  Reference(const Grammar& g, std::string text) : g_(g), text_(std::move(text)) {}

  bool matches_whole() { return ends(g_.root, 0).count(text_.size()) > 0; }
  // Whether `text_` is a prefix of some sentence: some derivation reads all of it.
  bool is_prefix() { return reads_all(g_.root, 0); }

 private:
  const std::set<size_t>& ends(int rule, size_t pos) {
    auto key = std::make_pair(rule, pos);
    if (auto it = memo_.find(key); it != memo_.end()) return it->second;
    std::set<size_t>& out = memo_[key];
    for (const Sequence& seq : g_.rules[static_cast<size_t>(rule)].alternatives) {
      std::set<size_t> at = {pos};
      for (const Element& e : seq) {
        std::set<size_t> next;
        for (size_t p : at) {
          if (e.kind == Element::Kind::kCodePoint) {
            if (p < text_.size() && e.matches(static_cast<unsigned char>(text_[p]))) next.insert(p + 1);
          } else {
            const auto& sub = ends(e.rule, p);
            next.insert(sub.begin(), sub.end());
          }
        }
        at = std::move(next);
      }
      out.insert(at.begin(), at.end());
    }
    return out;
  }

  // Some derivation of `rule` from `pos` reaches the end of the text (and may go on).
  bool reads_all(int rule, size_t pos) {
    if (pos == text_.size()) return true;
    for (const Sequence& seq : g_.rules[static_cast<size_t>(rule)].alternatives) {
      std::set<size_t> at = {pos};
      for (const Element& e : seq) {
        std::set<size_t> next;
        for (size_t p : at) {
          if (p == text_.size()) return true;
          if (e.kind == Element::Kind::kCodePoint) {
            if (e.matches(static_cast<unsigned char>(text_[p]))) next.insert(p + 1);
          } else {
            if (reads_all(e.rule, p)) return true;
            const auto& sub = ends(e.rule, p);
            next.insert(sub.begin(), sub.end());
          }
        }
        at = std::move(next);
      }
      if (at.count(text_.size())) return true;
    }
    return false;
  }

  const Grammar& g_;
  const std::string text_;
  std::map<std::pair<int, size_t>, std::set<size_t>> memo_;
};

Grammar parse_ok(std::string_view text) {
  auto g = parse_gbnf(text);
  EXPECT_TRUE(g.ok()) << g.status().message();
  return g.ok() ? std::move(*g) : Grammar{};
}

bool accepts_whole(const Grammar& g, std::string_view text) {
  GrammarMatcher m(g);
  return m.accept(text) && m.complete();
}

void expect_matches_reference(std::string_view gbnf, std::string_view alphabet, size_t max_length) {
  const Grammar g = parse_ok(gbnf);
  std::vector<std::string> texts = {""};
  for (size_t n = 0; n < max_length; ++n) {
    std::vector<std::string> longer;
    for (const std::string& t : texts) {
      if (t.size() != n) continue;
      for (char c : alphabet) longer.push_back(t + c);
    }
    texts.insert(texts.end(), longer.begin(), longer.end());
  }
  for (const std::string& t : texts) {
    Reference ref(g, t);
    GrammarMatcher m(g);
    const bool read = m.accept(t);
    EXPECT_EQ(read, ref.is_prefix()) << gbnf << " on \"" << t << "\"";
    EXPECT_EQ(read && m.complete(), ref.matches_whole()) << gbnf << " on \"" << t << "\"";
  }
}

TEST(GrammarMatcher, AgreesWithAReferenceRecognizerOnEveryShortString) {
  expect_matches_reference(R"(root ::= "a" root "b" | "")", "ab", 8);                     // a^n b^n
  expect_matches_reference(R"(root ::= ("a" | "b")* "a" ("a" | "b"))", "ab", 7);         // 2nd last is a
  expect_matches_reference(R"(root ::= x x
                                x ::= "a"? "b"{1,2})", "ab", 7);
  expect_matches_reference(R"g(root ::= "(" root ")" root | "")g", "()", 8);                // balanced
  expect_matches_reference(R"(root ::= [^a]+ "a" | [a-b]{2,})", "abc", 5);
}

const char* kJson = R"(
root   ::= value
value  ::= object | array | string | number | ("true" | "false" | "null")
object ::= "{" ws ( string ws ":" ws value ws ( "," ws string ws ":" ws value ws )* )? "}"
array  ::= "[" ws ( value ws ( "," ws value ws )* )? "]"
string ::= "\"" ( [^"\\\x00-\x1f] | "\\" ["\\/bfnrt] | "\\u" [0-9a-fA-F]{4} )* "\""
number ::= "-"? ( "0" | [1-9] [0-9]* ) ( "." [0-9]+ )? ( [eE] [-+]? [0-9]+ )?
ws     ::= [ \t\n]*   # whitespace
)";

TEST(GrammarMatcher, JsonGrammarAcceptsJsonAndRefusesTheRest) {
  const Grammar g = parse_ok(kJson);
  for (const char* ok : {R"({"a": [1, 2.5e3, -0.1, true, null], "b": {"c": "x\n\u00e9"}})", "[]", "\"\"", "-12"}) {
    EXPECT_TRUE(accepts_whole(g, ok)) << ok;
  }
  for (const char* bad : {"{a: 1}", "[1,]", "01", "\"\\x\"", "{\"a\" 1}", "tru"}) {
    EXPECT_FALSE(accepts_whole(g, bad)) << bad;
  }
  GrammarMatcher m(g);
  EXPECT_TRUE(m.accept("{\"key\": [1, "));
  EXPECT_FALSE(m.complete());
  EXPECT_FALSE(m.allows("]"));  // a value must follow the comma
  EXPECT_TRUE(m.allows("2]}"));
  EXPECT_TRUE(m.accept("2]}"));
  EXPECT_TRUE(m.complete() && m.must_end());
}

TEST(GrammarMatcher, ACharacterSplitAcrossCallsIsCheckedByItsPossibleCodePoints) {
  const Grammar g = parse_ok(R"(root ::= [α-ω]+)");  // U+03B1..U+03C9: CE B1 .. CF 89
  GrammarMatcher m(g);
  EXPECT_TRUE(m.accept("\xCE"));       // may become α..ο
  EXPECT_FALSE(m.allows("\xCE\x80"));  // U+0380: not in the class
  EXPECT_TRUE(m.accept("\xB1"));       // α
  EXPECT_TRUE(m.complete());
  EXPECT_FALSE(m.allows("\xD0"));      // U+0400..: no Greek small letter starts so
  EXPECT_FALSE(m.allows("a"));
  EXPECT_FALSE(m.allows("\xFF"));      // not UTF-8
}

TEST(GrammarMatcher, RepetitionBoundsAreExact) {
  const Grammar g = parse_ok(R"(root ::= "x"{2,4} "y"{3} "z"{1,})");
  EXPECT_FALSE(accepts_whole(g, "xyyyz"));
  EXPECT_TRUE(accepts_whole(g, "xxyyyz"));
  EXPECT_TRUE(accepts_whole(g, "xxxxyyyzzz"));
  EXPECT_FALSE(accepts_whole(g, "xxxxxyyyz"));
  EXPECT_FALSE(accepts_whole(g, "xxyyz"));
}

// A vocabulary of random byte strings over JSON's characters, some Greek, and stray
// continuation bytes (the way byte-level BPE splits characters across tokens).
std::vector<std::string> random_vocabulary(size_t size, uint32_t seed) {
  const std::vector<std::string> pieces = {"{", "}", "[", "]", ",", ":", " ", "\n", "\"", "\\", "a", "b", "key", "1",
                                           "0", "-", ".", "e", "true", "null", "\xCE", "\xB1", "\xCE\xB1", "\x80"};
  std::mt19937 rng(seed);
  std::vector<std::string> vocab(size);
  for (size_t id = 1; id < size; ++id) {  // id 0: a control token, never allowed
    const size_t n = 1 + rng() % 3;
    for (size_t i = 0; i < n; ++i) vocab[id] += pieces[rng() % pieces.size()];
  }
  return vocab;
}

TEST(TokenTrie, MasksEqualTryingEveryTokenOnItsOwn) {
  const Grammar g = parse_ok(kJson);
  const std::vector<std::string> vocab = random_vocabulary(3000, 7);
  const TokenTrie trie(vocab, {0});
  for (const char* prefix : {"", "{", "{\"ke", "{\"key\": [1", "{\"key\": [1, \"\xCE", "{\"a\": true}", "[-"}) {
    GrammarMatcher m(g);
    ASSERT_TRUE(m.accept(prefix)) << prefix;
    const std::vector<bool> mask = trie.allowed(m);
    size_t allowed = 0;
    for (size_t id = 1; id < vocab.size(); ++id) {
      EXPECT_EQ(mask[id], m.allows(vocab[id])) << "prefix " << prefix << ", token " << id << " \"" << vocab[id] << "\"";
      allowed += mask[id];
    }
    EXPECT_EQ(mask[0], m.complete()) << prefix;  // the end token, exactly when the text is whole
    EXPECT_GT(allowed + mask[0], 0u) << prefix;  // a grammar state always allows something here
  }
}

TEST(GrammarParser, ErrorsNameTheLineAndTheProblem) {
  const std::pair<std::string, const char*> cases[] = {
      {"root ::= item", "rule `item` is used but never defined"},
      {"root ::= \"a\"\nroot ::= \"b\"", "defined twice"},
      {"root ::= list\nlist ::= list \",\" \"x\" | \"x\"", "left-recursive"},
      {"root ::= [z-a]", "line 1: a character range must go upwards"},
      {"root ::= \"a\"\nx ::= (\"b\"", "line 2: expected `)`"},
      {"root ::= \"a\"{3,2}", "bounds must be ordered"},
      {"root ::= \"\\q\"", "a known escape"},
      {"other ::= \"a\"", "no rule `root`"},
      {"root ::= " + std::string(100, '(') + "\"a\"" + std::string(100, ')'), "nest deeper than 64"},
  };
  for (const auto& [text, expected] : cases) {
    auto g = parse_gbnf(text);
    ASSERT_FALSE(g.ok()) << text;
    EXPECT_NE(g.status().message().find(expected), std::string::npos) << text << ": " << g.status().message();
  }
}

Grammar schema_grammar(const char* schema_text) {
  auto gbnf = json_schema_to_gbnf(nlohmann::ordered_json::parse(schema_text));
  EXPECT_TRUE(gbnf.ok()) << gbnf.status().message();
  if (!gbnf.ok()) return Grammar{};
  auto g = parse_gbnf(*gbnf);
  EXPECT_TRUE(g.ok()) << g.status().message() << "\n" << *gbnf;
  return g.ok() ? std::move(*g) : Grammar{};
}

TEST(JsonSchema, ObjectsWithRequiredAndOptionalPropertiesEnumsAndBounds) {
  const Grammar g = schema_grammar(R"({
    "type": "object",
    "properties": {
      "name": {"type": "string", "maxLength": 5},
      "age": {"type": "integer"},
      "tags": {"type": "array", "items": {"enum": ["a", "b", 3]}, "minItems": 1, "maxItems": 2},
      "when": {"type": "string", "format": "date"},
      "kind": {"const": "x"}
    },
    "required": ["name", "kind"]
  })");
  // Required properties first, in the schema's order, then the optional ones.
  for (const char* ok : {R"({"name": "bob", "kind": "x"})", R"({"name":"","kind":"x","age":-3,"tags":["a",3]})",
                         R"({"name": "ab", "kind": "x", "when": "2024-02-29"})"}) {
    EXPECT_TRUE(accepts_whole(g, ok)) << ok;
  }
  for (const char* bad : {R"({"name": "bob"})", R"({"name": "toolong", "kind": "x"})",
                          R"({"name": "a", "kind": "x", "tags": []})", R"({"name": "a", "kind": "x", "tags": ["c"]})",
                          R"({"name": "a", "kind": "x", "tags": ["a", "b", "a"]})", R"({"name": "a", "kind": "y"})",
                          R"({"name": "a", "kind": "x", "age": 1.5})", R"({"name": "a", "kind": "x", "when": "2024-13-01"})",
                          R"({"name": "a", "kind": "x", "other": 1})"}) {
    EXPECT_FALSE(accepts_whole(g, bad)) << bad;
  }
}

TEST(JsonSchema, RefsAnyOfAndRecursion) {
  const Grammar g = schema_grammar(R"({
    "$defs": {"node": {"type": "object", "properties": {"v": {"type": "integer"},
                                                         "next": {"anyOf": [{"$ref": "#/$defs/node"}, {"type": "null"}]}},
                       "required": ["v", "next"]}},
    "$ref": "#/$defs/node"
  })");
  EXPECT_TRUE(accepts_whole(g, R"({"v": 1, "next": {"v": 2, "next": null}})"));
  EXPECT_FALSE(accepts_whole(g, R"({"v": 1, "next": {"v": 2}})"));
  EXPECT_FALSE(accepts_whole(g, R"({"v": 1, "next": 3})"));
}

TEST(JsonSchema, NoRequiredPropertyMeansAnySubsetAndUnsupportedKeywordsAreNamed) {
  const Grammar g = schema_grammar(R"({"type": "object", "properties": {"a": {"type": "boolean"}, "b": {"type": "null"}},
                                       "additionalProperties": false})");
  for (const char* ok : {"{}", R"({"a": true})", R"({"b": null})", R"({"a": false, "b": null})"}) {
    EXPECT_TRUE(accepts_whole(g, ok)) << ok;
  }
  EXPECT_FALSE(accepts_whole(g, R"({,"b": null})"));
  for (const auto& [schema, expected] : std::vector<std::pair<const char*, const char*>>{
           {R"({"type": "integer", "minimum": 3})", "unsupported JSON Schema keyword `minimum` at #"},
           {R"({"type": "object", "properties": {"x": {"type": "string", "pattern": "a+"}}})", "`pattern` at #/properties/x"},
           {R"({"type": "string", "format": "email"})", "unsupported string `format` `email`"},
           {R"({"$ref": "#/$defs/missing"})", "points at nothing"},
           {R"({"type": "object", "properties": {}, "required": ["a"]})", "names `a`, not a property"},
           {R"({"type": "array", "minItems": "two"})", "wrong type"}}) {
    auto gbnf = json_schema_to_gbnf(nlohmann::ordered_json::parse(schema));
    ASSERT_FALSE(gbnf.ok()) << schema;
    EXPECT_NE(gbnf.status().message().find(expected), std::string::npos) << gbnf.status().message();
  }
}

}  // namespace
}  // namespace strata::grammar
