#include "common/grammar/grammar.h"

#include <algorithm>
#include <functional>
#include <map>
#include <optional>

#include <fmt/format.h>

#include "common/utf8.h"

namespace strata::grammar {

bool Element::matches(uint32_t code_point) const {
  const bool in = std::any_of(ranges.begin(), ranges.end(), [&](const CodePointRange& r) {
    return r.first <= code_point && code_point <= r.last;
  });
  return in != negated;
}

bool Element::matches_any(uint32_t first, uint32_t last) const {
  if (!negated) {
    return std::any_of(ranges.begin(), ranges.end(),
                       [&](const CodePointRange& r) { return r.first <= last && first <= r.last; });
  }
  // Some code point of [first, last] outside every range: walk the gaps.
  uint32_t next = first;
  std::vector<CodePointRange> sorted = ranges;
  std::sort(sorted.begin(), sorted.end(), [](auto& a, auto& b) { return a.first < b.first; });
  for (const CodePointRange& r : sorted) {
    if (r.last < next) continue;
    if (r.first > next) return true;
    if (r.last >= last) return false;
    next = r.last + 1;
  }
  return next <= last;
}

int Grammar::find(std::string_view name) const {
  for (size_t i = 0; i < rules.size(); ++i) {
    if (rules[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

namespace {

constexpr uint32_t kMaxCodePoint = 0x10FFFF;
constexpr int kMaxRepeat = 1000;  // {m,n} bounds: more is a mistake, and a huge grammar
constexpr int kMaxNesting = 64;   // ( groups ): the parser recurses once per level

bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
}

// A recursive-descent parser of GBNF; each rule, group and repetition becomes a Rule.
class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  StatusOr<Grammar> parse(std::string_view root) {
    skip_space();
    while (pos_ < text_.size()) {
      STRATA_RETURN_IF_ERROR(parse_rule());
      skip_space();
    }
    for (const auto& [name, line] : referenced_) {
      if (!defined_.count(name)) return error_at(line, fmt::format("rule `{}` is used but never defined", name));
    }
    grammar_.root = grammar_.find(root);
    if (grammar_.root < 0) return invalid_argument("grammar: no rule `{}` to start from", root);
    STRATA_RETURN_IF_ERROR(check_no_left_recursion(grammar_));
    return std::move(grammar_);
  }

 private:
  Status parse_rule() {
    const std::string name = parse_name();
    if (name.empty()) return error("a rule name");
    skip_space();
    if (text_.substr(pos_, 3) != "::=") return error("`::=` after the rule name");
    pos_ += 3;
    if (defined_.count(name)) return error_at(line(), fmt::format("rule `{}` is defined twice", name));
    defined_.insert({name, line()});
    const int index = rule_index(name);
    STRATA_ASSIGN_OR_RETURN(std::vector<Sequence> alternatives, parse_alternatives(false));
    grammar_.rules[static_cast<size_t>(index)].alternatives = std::move(alternatives);
    return ok_status();
  }

  StatusOr<std::vector<Sequence>> parse_alternatives(bool nested) {
    std::vector<Sequence> alternatives;
    while (true) {
      STRATA_ASSIGN_OR_RETURN(Sequence sequence, parse_sequence(nested));
      alternatives.push_back(std::move(sequence));
      skip_space();
      if (pos_ >= text_.size() || text_[pos_] != '|') return alternatives;
      ++pos_;
    }
  }

  StatusOr<Sequence> parse_sequence(bool nested) {
    Sequence sequence;
    while (true) {
      skip_space();
      if (pos_ >= text_.size() || text_[pos_] == '|') return sequence;
      if (text_[pos_] == ')') {
        if (!nested) return error("an element (a `)` closes no group)");
        return sequence;
      }
      if (!nested && starts_rule()) return sequence;
      STRATA_ASSIGN_OR_RETURN(Sequence atom, parse_atom());
      STRATA_RETURN_IF_ERROR(apply_repetition(atom));
      sequence.insert(sequence.end(), atom.begin(), atom.end());
    }
  }

  // One element, a literal (several), or a group (one reference).
  StatusOr<Sequence> parse_atom() {
    const char c = text_[pos_];
    if (c == '"') return parse_literal();
    if (c == '[') {
      STRATA_ASSIGN_OR_RETURN(Element e, parse_class());
      return Sequence{std::move(e)};
    }
    if (c == '.') {
      ++pos_;
      return Sequence{Element{.ranges = {{0, kMaxCodePoint}}}};
    }
    if (c == '(') {
      ++pos_;
      if (++depth_ > kMaxNesting) return error_at(line(), fmt::format("groups nest deeper than {}", kMaxNesting));
      STRATA_ASSIGN_OR_RETURN(std::vector<Sequence> alternatives, parse_alternatives(true));
      --depth_;
      skip_space();
      if (pos_ >= text_.size() || text_[pos_] != ')') return error("`)` to close the group");
      ++pos_;
      return Sequence{reference(helper_rule(std::move(alternatives)))};
    }
    const std::string name = parse_name();
    if (name.empty()) return error("an element: a \"literal\", a [class], `.`, a ( group ) or a rule name");
    referenced_.insert({name, line()});
    return Sequence{reference(rule_index(name))};
  }

  Status apply_repetition(Sequence& atom) {
    if (pos_ >= text_.size()) return ok_status();
    const char c = text_[pos_];
    int min = 0, max = -1;  // -1: unbounded
    if (c == '*') {
      ++pos_;
    } else if (c == '+') {
      ++pos_;
      min = 1;
    } else if (c == '?') {
      ++pos_;
      max = 1;
    } else if (c == '{') {
      STRATA_RETURN_IF_ERROR(parse_bounds(min, max));
    } else {
      return ok_status();
    }
    atom = repeat(std::move(atom), min, max);
    return ok_status();
  }

  Status parse_bounds(int& min, int& max) {
    ++pos_;
    std::optional<int> first = parse_int();
    if (!first) return error("a number after `{`");
    min = *first;
    max = *first;
    if (pos_ < text_.size() && text_[pos_] == ',') {
      ++pos_;
      std::optional<int> second = parse_int();
      max = second ? *second : -1;
    }
    if (pos_ >= text_.size() || text_[pos_] != '}') return error("`}` to close the repetition");
    ++pos_;
    if (min > kMaxRepeat || max > kMaxRepeat || (max >= 0 && max < min)) {
      return error_at(line(), fmt::format("repetition {{{},{}}}: bounds must be ordered and at most {}", min, max,
                                          kMaxRepeat));
    }
    return ok_status();
  }

  // `atom` min times, then up to max - min more (unbounded: any number) as helper rules.
  Sequence repeat(Sequence atom, int min, int max) {
    Sequence out;
    for (int i = 0; i < min; ++i) out.insert(out.end(), atom.begin(), atom.end());
    if (max < 0) {  // star ::= atom star | ε
      const int star = helper_rule({});
      Sequence again = atom;
      again.push_back(reference(star));
      grammar_.rules[static_cast<size_t>(star)].alternatives = {std::move(again), {}};
      out.push_back(reference(star));
      return out;
    }
    // opt_k ::= atom opt_{k-1} | ε, nested so that at most max - min more match.
    int tail = -1;
    for (int i = min; i < max; ++i) {
      Sequence more = atom;
      if (tail >= 0) more.push_back(reference(tail));
      tail = helper_rule({std::move(more), {}});
    }
    if (tail >= 0) out.push_back(reference(tail));
    return out;
  }

  StatusOr<Sequence> parse_literal() {
    ++pos_;  // the opening quote
    Sequence out;
    while (pos_ < text_.size() && text_[pos_] != '"') {
      STRATA_ASSIGN_OR_RETURN(uint32_t cp, parse_char());
      out.push_back(Element{.ranges = {{cp, cp}}});
    }
    if (pos_ >= text_.size()) return error("a closing `\"`");
    ++pos_;
    return out;
  }

  StatusOr<Element> parse_class() {
    ++pos_;  // [
    Element e;
    if (pos_ < text_.size() && text_[pos_] == '^') {
      e.negated = true;
      ++pos_;
    }
    while (pos_ < text_.size() && text_[pos_] != ']') {
      STRATA_ASSIGN_OR_RETURN(uint32_t first, parse_char());
      uint32_t last = first;
      if (pos_ + 1 < text_.size() && text_[pos_] == '-' && text_[pos_ + 1] != ']') {
        ++pos_;
        STRATA_ASSIGN_OR_RETURN(last, parse_char());
        if (last < first) return error_at(line(), "a character range must go upwards, as in [a-z]");
      }
      e.ranges.push_back({first, last});
    }
    if (pos_ >= text_.size()) return error("a closing `]`");
    ++pos_;
    return e;
  }

  // One code point of a literal or class: UTF-8, or an escape.
  StatusOr<uint32_t> parse_char() {
    if (text_[pos_] != '\\') {
      if (utf8::valid_sequence_length(text_, pos_) == 0) return error("valid UTF-8");
      size_t length = 0;
      const char32_t cp = utf8::decode(text_, pos_, &length);
      pos_ += length;
      return static_cast<uint32_t>(cp);
    }
    if (++pos_ >= text_.size()) return error("an escaped character after `\\`");
    const char c = text_[pos_++];
    switch (c) {
      case 'n': return uint32_t{'\n'};
      case 't': return uint32_t{'\t'};
      case 'r': return uint32_t{'\r'};
      case '\\': case '"': case '[': case ']': case '-': case '^': return static_cast<uint32_t>(c);
      case 'x': return parse_hex(2);
      case 'u': return parse_hex(4);
      case 'U': return parse_hex(8);
      default: return error(fmt::format("a known escape (\\n \\t \\r \\\\ \\\" \\xHH \\uHHHH), not \\{}", c));
    }
  }

  StatusOr<uint32_t> parse_hex(int digits) {
    uint32_t value = 0;
    for (int i = 0; i < digits; ++i, ++pos_) {
      if (pos_ >= text_.size() || !std::isxdigit(static_cast<unsigned char>(text_[pos_]))) {
        return error(fmt::format("{} hex digits", digits));
      }
      value = value * 16 + static_cast<uint32_t>(std::stoi(std::string(1, text_[pos_]), nullptr, 16));
    }
    if (value > kMaxCodePoint) return error("a code point at most U+10FFFF");
    return value;
  }

  std::optional<int> parse_int() {
    size_t end = pos_;
    while (end < text_.size() && end - pos_ < 6 && std::isdigit(static_cast<unsigned char>(text_[end]))) ++end;
    if (end == pos_) return std::nullopt;
    const int value = std::stoi(std::string(text_.substr(pos_, end - pos_)));
    pos_ = end;
    return value;
  }

  std::string parse_name() {
    const size_t start = pos_;
    while (pos_ < text_.size() && is_name_char(text_[pos_])) ++pos_;
    return std::string(text_.substr(start, pos_ - start));
  }

  // At `name ::=`: the current rule has ended.
  bool starts_rule() const {
    size_t p = pos_;
    while (p < text_.size() && is_name_char(text_[p])) ++p;
    if (p == pos_) return false;
    while (p < text_.size() && (text_[p] == ' ' || text_[p] == '\t')) ++p;
    return text_.substr(p, 3) == "::=";
  }

  void skip_space() {
    while (pos_ < text_.size()) {
      if (std::isspace(static_cast<unsigned char>(text_[pos_]))) {
        ++pos_;
      } else if (text_[pos_] == '#') {
        while (pos_ < text_.size() && text_[pos_] != '\n') ++pos_;
      } else {
        return;
      }
    }
  }

  int rule_index(const std::string& name) {
    if (const int found = grammar_.find(name); found >= 0) return found;
    grammar_.rules.push_back(Rule{.name = name, .alternatives = {}});
    return static_cast<int>(grammar_.rules.size()) - 1;
  }

  int helper_rule(std::vector<Sequence> alternatives) {
    grammar_.rules.push_back(Rule{.name = fmt::format("_{}", grammar_.rules.size()),
                                  .alternatives = std::move(alternatives)});
    return static_cast<int>(grammar_.rules.size()) - 1;
  }

  static Element reference(int rule) { return Element{.kind = Element::Kind::kRule, .rule = rule}; }

  int line() const { return 1 + static_cast<int>(std::count(text_.begin(), text_.begin() + pos_, '\n')); }
  Status error(std::string_view expected) const { return error_at(line(), fmt::format("expected {}", expected)); }
  static Status error_at(int line, std::string_view what) {
    return invalid_argument("grammar line {}: {}", line, what);
  }

  std::string_view text_;
  size_t pos_ = 0;
  int depth_ = 0;
  Grammar grammar_;
  std::map<std::string, int> defined_;
  std::multimap<std::string, int> referenced_;
};

}  // namespace

StatusOr<Grammar> parse_gbnf(std::string_view text, std::string_view root) { return Parser(text).parse(root); }

namespace {

// Rules that can match the empty string, by fixed point.
std::vector<bool> nullable_rules(const Grammar& g) {
  std::vector<bool> nullable(g.rules.size(), false);
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t r = 0; r < g.rules.size(); ++r) {
      if (nullable[r]) continue;
      for (const Sequence& seq : g.rules[r].alternatives) {
        const bool empty = std::all_of(seq.begin(), seq.end(), [&](const Element& e) {
          return e.kind == Element::Kind::kRule && nullable[static_cast<size_t>(e.rule)];
        });
        if (empty) {
          nullable[r] = changed = true;
          break;
        }
      }
    }
  }
  return nullable;
}

}  // namespace

Status check_no_left_recursion(const Grammar& g) {
  const std::vector<bool> nullable = nullable_rules(g);
  // leftmost[r]: the rules r can reach before consuming a code point.
  std::vector<std::vector<int>> leftmost(g.rules.size());
  for (size_t r = 0; r < g.rules.size(); ++r) {
    for (const Sequence& seq : g.rules[r].alternatives) {
      for (const Element& e : seq) {
        if (e.kind != Element::Kind::kRule) break;
        leftmost[r].push_back(e.rule);
        if (!nullable[static_cast<size_t>(e.rule)]) break;
      }
    }
  }
  // A cycle in the leftmost graph, by depth-first search with colours.
  std::vector<int> colour(g.rules.size(), 0);  // 0 new, 1 on the path, 2 done
  std::function<int(int)> visit = [&](int r) -> int {
    colour[static_cast<size_t>(r)] = 1;
    for (int next : leftmost[static_cast<size_t>(r)]) {
      if (colour[static_cast<size_t>(next)] == 1) return next;
      if (colour[static_cast<size_t>(next)] == 0) {
        if (const int found = visit(next); found >= 0) return found;
      }
    }
    colour[static_cast<size_t>(r)] = 2;
    return -1;
  };
  for (size_t r = 0; r < g.rules.size(); ++r) {
    if (colour[r] != 0) continue;
    if (const int found = visit(static_cast<int>(r)); found >= 0) {
      return invalid_argument("grammar: rule `{}` is left-recursive (it can reach itself before matching "
                              "anything); write the repetition with * or + instead",
                              g.rules[static_cast<size_t>(found)].name);
    }
  }
  return ok_status();
}

}  // namespace strata::grammar
