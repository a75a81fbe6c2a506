// UTF-8 helpers shared by the tokenizers: code-point iteration, encoding, and the lossy
// repair HF applies (one U+FFFD per maximal invalid subpart, as Rust's from_utf8_lossy).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace strata::utf8 {

inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

// Space, tab, newline, carriage return: the whitespace the tokenizers trim and split at.
inline constexpr bool is_ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Length of the valid UTF-8 sequence starting at s[pos], or 0 if it is invalid/truncated.
size_t valid_sequence_length(std::string_view s, size_t pos);
// Byte length of the character starting at s[pos]; an invalid byte counts as one.
size_t char_length(std::string_view s, size_t pos);
// Decodes the character at s[pos] (U+FFFD for an invalid one) and its byte length.
char32_t decode(std::string_view s, size_t pos, size_t* length);
void append(std::string& out, char32_t cp);
bool is_valid(std::string_view s);
std::string to_valid_lossy(std::string_view s);
// True when `s` ends in the middle of a (so far valid) multi-byte sequence.
bool ends_with_incomplete_sequence(std::string_view s);

}  // namespace strata::utf8
