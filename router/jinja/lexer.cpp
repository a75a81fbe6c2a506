#include "router/jinja/lexer.h"

#include <fmt/format.h>

#include <cctype>

#include "common/utf8.h"
#include "router/jinja/value.h"

namespace strata::jinja {
namespace {

// Python's \s for the ASCII range (what jinja2's whitespace regexes see in templates).
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

std::string normalize_newlines(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

[[noreturn]] void fail(const std::string& message, int line) {
  throw TemplateError(fmt::format("{} (line {})", message, line));
}

class Lexer {
 public:
  explicit Lexer(std::string source) : src_(std::move(source)) {}

  std::vector<Token> run() {
    while (pos_ < src_.size()) {
      const size_t start = find_tag_start(pos_);
      if (start == std::string::npos) {
        emit_text(src_.substr(pos_));
        break;
      }
      const char kind = src_[start + 1];
      const char sign = start + 2 < src_.size() && (src_[start + 2] == '-' || src_[start + 2] == '+')
                            ? src_[start + 2]
                            : '\0';
      std::string text = src_.substr(pos_, start - pos_);
      emit_text(control_leading(std::move(text), kind, sign));
      pos_ = start + 2 + (sign ? 1 : 0);
      if (kind == '#') {
        skip_comment();
      } else if (kind == '%' && is_raw_start()) {
        read_raw();
      } else {
        read_tag(kind == '{');
      }
    }
    tokens_.push_back({TokenType::kEnd, "", line_});
    return std::move(tokens_);
  }

 private:
  size_t find_tag_start(size_t from) const {
    for (size_t p = src_.find('{', from); p != std::string::npos; p = src_.find('{', p + 1)) {
      if (p + 1 < src_.size() && (src_[p + 1] == '{' || src_[p + 1] == '%' || src_[p + 1] == '#')) {
        return p;
      }
    }
    return std::string::npos;
  }

  // The text before a tag: `-` strips all trailing whitespace; lstrip_blocks strips the
  // spaces that start the tag's line when only spaces precede it (not for `{{`, not with `+`).
  std::string control_leading(std::string text, char kind, char sign) const {
    if (sign == '-') {
      size_t end = text.size();
      while (end > 0 && is_space(text[end - 1])) --end;
      text.resize(end);
      return text;
    }
    if (sign == '+' || kind == '{') return text;
    const size_t nl = text.rfind('\n');
    const size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
    if (l_pos == 0 && !line_starting_) return text;
    if (l_pos == text.size()) return text;
    for (size_t i = l_pos; i < text.size(); ++i) {
      if (!is_space(text[i])) return text;
    }
    text.resize(l_pos);
    return text;
  }

  void emit_text(std::string text) {
    if (text.empty()) return;
    const int line = line_;
    for (char c : text) line_ += c == '\n';
    tokens_.push_back({TokenType::kText, std::move(text), line});
  }

  // After an end tag at end_pos (one past it): `-` ate whitespace, `+` kept it, else
  // trim_blocks drops one newline (block and comment tags only).
  void finish_tag(size_t end_pos, char sign, bool trim_newline) {
    size_t p = end_pos;
    if (sign == '-') {
      while (p < src_.size() && is_space(src_[p])) ++p;
    } else if (sign != '+' && trim_newline && p < src_.size() && src_[p] == '\n') {
      ++p;
    }
    for (size_t i = pos_; i < p; ++i) line_ += src_[i] == '\n';
    line_starting_ = p > 0 && src_[p - 1] == '\n';
    pos_ = p;
  }

  void skip_comment() {
    const size_t end = src_.find("#}", pos_);
    if (end == std::string::npos) fail("Missing end of comment tag", line_);
    const char sign = end > pos_ && (src_[end - 1] == '-' || src_[end - 1] == '+') ? src_[end - 1] : '\0';
    finish_tag(end + 2, sign, true);
  }

  bool is_raw_start() const {
    size_t p = pos_;
    while (p < src_.size() && is_space(src_[p])) ++p;
    if (src_.compare(p, 3, "raw") != 0) return false;
    p += 3;
    while (p < src_.size() && is_space(src_[p])) ++p;
    return src_.compare(p, 2, "%}") == 0 || src_.compare(p, 3, "-%}") == 0;
  }

  void read_raw() {
    size_t p = src_.find("raw", pos_) + 3;
    while (is_space(src_[p])) ++p;
    const bool strip = src_[p] == '-';
    p += strip ? 3 : 2;
    if (strip) {
      while (p < src_.size() && is_space(src_[p])) ++p;
    }
    for (size_t i = pos_; i < p; ++i) line_ += src_[i] == '\n';
    pos_ = p;
    for (size_t q = src_.find("{%", p); q != std::string::npos; q = src_.find("{%", q + 2)) {
      size_t r = q + 2;
      const char sign = r < src_.size() && (src_[r] == '-' || src_[r] == '+') ? src_[r] : '\0';
      if (sign) ++r;
      while (r < src_.size() && is_space(src_[r])) ++r;
      if (src_.compare(r, 6, "endraw") != 0) continue;
      r += 6;
      while (r < src_.size() && is_space(src_[r])) ++r;
      const char end_sign = src_[r] == '-' || src_[r] == '+' ? src_[r] : '\0';
      if (end_sign) ++r;
      if (src_.compare(r, 2, "%}") != 0) continue;
      emit_text(control_leading(src_.substr(p, q - p), '%', sign));
      pos_ = q;
      finish_tag(r + 2, end_sign, true);
      return;
    }
    fail("Missing end of raw directive", line_);
  }

  // The tokens of one {{ ... }} or {% ... %}, through its end tag.
  void read_tag(bool is_var) {
    tokens_.push_back({is_var ? TokenType::kVarBegin : TokenType::kBlockBegin, "", line_});
    const char close = is_var ? '}' : '%';
    int depth = 0;  // open brackets: "}}" inside {{ {'a': {}} }} is not the end
    while (true) {
      while (pos_ < src_.size() && is_space(src_[pos_])) line_ += src_[pos_++] == '\n';
      if (pos_ >= src_.size()) fail(is_var ? "unexpected end of template, expected '}}'" : "unexpected end of template, expected '%}'", line_);
      if (depth == 0 && end_tag_at(close)) return;
      read_token(&depth);
    }
  }

  bool end_tag_at(char close) {
    const char c = src_[pos_];
    const char sign = c == '-' || (c == '+' && close == '%') ? c : '\0';
    const size_t p = pos_ + (sign ? 1 : 0);
    if (p + 1 >= src_.size() + 0 || src_[p] != close || src_[p + 1] != '}') return false;
    tokens_.push_back({close == '}' ? TokenType::kVarEnd : TokenType::kBlockEnd, "", line_});
    finish_tag(p + 2, sign, close == '%');
    return true;
  }

  void read_token(int* depth) {
    const char c = src_[pos_];
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t end = pos_;
      while (end < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[end])) || src_[end] == '_')) ++end;
      push(TokenType::kName, src_.substr(pos_, end - pos_), end);
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      read_number();
    } else if (c == '\'' || c == '"') {
      read_string(c);
    } else {
      read_operator(depth);
    }
  }

  void push(TokenType type, std::string value, size_t end) {
    tokens_.push_back({type, std::move(value), line_});
    pos_ = end;
  }

  void read_number() {
    size_t end = pos_;
    auto digits = [&] {
      while (end < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[end])) || src_[end] == '_')) ++end;
    };
    digits();
    bool is_float = false;
    if (end + 1 < src_.size() && src_[end] == '.' && std::isdigit(static_cast<unsigned char>(src_[end + 1]))) {
      is_float = true;
      ++end;
      digits();
    }
    if (end < src_.size() && (src_[end] == 'e' || src_[end] == 'E')) {
      size_t e = end + 1;
      if (e < src_.size() && (src_[e] == '+' || src_[e] == '-')) ++e;
      if (e < src_.size() && std::isdigit(static_cast<unsigned char>(src_[e]))) {
        is_float = true;
        end = e;
        digits();
      }
    }
    std::string text;
    for (size_t i = pos_; i < end; ++i) {
      if (src_[i] != '_') text += src_[i];
    }
    push(is_float ? TokenType::kFloat : TokenType::kInt, text, end);
  }

  // Python's unicode-escape decoding of a string literal's body.
  void read_string(char quote) {
    std::string out;
    size_t p = pos_ + 1;
    const int line = line_;
    while (true) {
      if (p >= src_.size()) fail("unexpected end of string literal", line);
      const char c = src_[p];
      if (c == quote) break;
      if (c == '\n') ++line_;
      if (c != '\\' || p + 1 >= src_.size()) {
        out += c;
        ++p;
        continue;
      }
      p = read_escape(p + 1, &out);
    }
    tokens_.push_back({TokenType::kString, std::move(out), line});
    pos_ = p + 1;
  }

  size_t read_escape(size_t p, std::string* out) {
    const char e = src_[p];
    auto hex = [&](size_t start, size_t count) -> size_t {
      if (start + count > src_.size()) fail("truncated \\x, \\u or \\U escape in a string literal", line_);
      uint32_t cp = 0;
      for (size_t i = start; i < start + count; ++i) {
        const char h = src_[i];
        if (!std::isxdigit(static_cast<unsigned char>(h))) fail("truncated \\x, \\u or \\U escape in a string literal", line_);
        cp = cp * 16 + static_cast<uint32_t>(std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (std::tolower(h) - 'a' + 10));
      }
      utf8::append(*out, static_cast<char32_t>(cp));
      return start + count;
    };
    switch (e) {
      case 'n': *out += '\n'; return p + 1;
      case 't': *out += '\t'; return p + 1;
      case 'r': *out += '\r'; return p + 1;
      case '\\': *out += '\\'; return p + 1;
      case '\'': *out += '\''; return p + 1;
      case '"': *out += '"'; return p + 1;
      case 'a': *out += '\a'; return p + 1;
      case 'b': *out += '\b'; return p + 1;
      case 'f': *out += '\f'; return p + 1;
      case 'v': *out += '\v'; return p + 1;
      case '\n': return p + 1;
      case 'x': return hex(p + 1, 2);
      case 'u': return hex(p + 1, 4);
      case 'U': return hex(p + 1, 8);
      default:
        if (e >= '0' && e <= '7') {
          uint32_t cp = 0;
          size_t q = p;
          while (q < p + 3 && q < src_.size() && src_[q] >= '0' && src_[q] <= '7') cp = cp * 8 + static_cast<uint32_t>(src_[q++] - '0');
          utf8::append(*out, static_cast<char32_t>(cp));
          return q;
        }
        *out += '\\';  // Python keeps unknown escapes as written
        return p;
    }
  }

  void read_operator(int* depth) {
    static const char* const kTwo[] = {"//", "**", "==", "!=", "<=", ">="};
    for (const char* op : kTwo) {
      if (src_.compare(pos_, 2, op) == 0) {
        push(TokenType::kOperator, op, pos_ + 2);
        return;
      }
    }
    const char c = src_[pos_];
    if (std::string_view("+-*/%~<>=()[]{},.:|").find(c) == std::string_view::npos) {
      fail(fmt::format("unexpected char '{}'", c), line_);
    }
    if (c == '(' || c == '[' || c == '{') ++*depth;
    if (c == ')' || c == ']' || c == '}') {
      if (*depth == 0) fail(fmt::format("unexpected '{}'", c), line_);
      --*depth;
    }
    push(TokenType::kOperator, std::string(1, c), pos_ + 1);
  }

  std::string src_;
  size_t pos_ = 0;
  int line_ = 1;
  bool line_starting_ = true;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize(std::string_view source) { return Lexer(normalize_newlines(source)).run(); }

}  // namespace strata::jinja
