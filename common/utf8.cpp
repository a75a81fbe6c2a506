#include "common/utf8.h"

namespace strata::utf8 {
namespace {

// Allowed range of the second byte for a given lead byte (RFC 3629 table), 0 when the lead
// byte cannot start a sequence.
bool second_byte_range(uint8_t lead, uint8_t* lo, uint8_t* hi, size_t* length) {
  *lo = 0x80;
  *hi = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    *length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    *length = 3;
    if (lead == 0xE0) *lo = 0xA0;
    if (lead == 0xED) *hi = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    *length = 4;
    if (lead == 0xF0) *lo = 0x90;
    if (lead == 0xF4) *hi = 0x8F;
  } else {
    return false;
  }
  return true;
}

// Number of bytes from pos that form a valid prefix of a sequence (the "maximal subpart").
size_t valid_prefix_length(std::string_view s, size_t pos, size_t* full_length) {
  const auto lead = static_cast<uint8_t>(s[pos]);
  *full_length = 1;
  if (lead < 0x80) return 1;
  uint8_t lo, hi;
  if (!second_byte_range(lead, &lo, &hi, full_length)) return 0;
  size_t n = 1;
  while (n < *full_length && pos + n < s.size()) {
    const auto b = static_cast<uint8_t>(s[pos + n]);
    const bool ok = n == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    if (!ok) break;
    ++n;
  }
  return n;
}

}  // namespace

size_t valid_sequence_length(std::string_view s, size_t pos) {
  size_t full = 0;
  const size_t n = valid_prefix_length(s, pos, &full);
  return n == full ? n : 0;
}

size_t char_length(std::string_view s, size_t pos) {
  const size_t n = valid_sequence_length(s, pos);
  return n == 0 ? 1 : n;
}

char32_t decode(std::string_view s, size_t pos, size_t* length) {
  const size_t n = valid_sequence_length(s, pos);
  if (n == 0) {
    *length = 1;
    return 0xFFFD;
  }
  *length = n;
  const auto b0 = static_cast<uint8_t>(s[pos]);
  if (n == 1) return b0;
  char32_t cp = b0 & (n == 2 ? 0x1F : n == 3 ? 0x0F : 0x07);
  for (size_t i = 1; i < n; ++i) cp = (cp << 6) | (static_cast<uint8_t>(s[pos + i]) & 0x3F);
  return cp;
}

void append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool is_valid(std::string_view s) {
  for (size_t pos = 0; pos < s.size();) {
    const size_t n = valid_sequence_length(s, pos);
    if (n == 0) return false;
    pos += n;
  }
  return true;
}

std::string to_valid_lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t pos = 0; pos < s.size();) {
    size_t full = 0;
    const size_t n = valid_prefix_length(s, pos, &full);
    if (n != 0 && n == full) {
      out.append(s.substr(pos, n));
      pos += n;
    } else {
      out.append(kReplacementChar);
      pos += n == 0 ? 1 : n;
    }
  }
  return out;
}

bool ends_with_incomplete_sequence(std::string_view s) {
  // Look back at most 3 bytes for a lead byte whose sequence runs past the end.
  for (size_t back = 1; back <= 3 && back <= s.size(); ++back) {
    const size_t pos = s.size() - back;
    const auto b = static_cast<uint8_t>(s[pos]);
    if ((b & 0xC0) == 0x80) continue;
    size_t full = 0;
    const size_t n = valid_prefix_length(s, pos, &full);
    return n == back && full > back;
  }
  return false;
}

}  // namespace strata::utf8
