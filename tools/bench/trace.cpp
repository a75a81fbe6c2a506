#include "tools/bench/trace.h"

#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>

namespace strata {
namespace {

// "2023-11-16 18:15:46.6805900" → seconds since the epoch (UTC; only differences matter).
bool parse_timestamp(const std::string& text, double& seconds) {
  std::tm tm{};
  double frac_seconds = 0;
  int year, month, day, hour, minute;
  if (std::sscanf(text.c_str(), "%d-%d-%d %d:%d:%lf", &year, &month, &day, &hour, &minute, &frac_seconds) != 6) {
    return false;
  }
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  seconds = static_cast<double>(timegm(&tm)) + frac_seconds;
  return true;
}

}  // namespace

StatusOr<std::vector<TraceRequest>> load_trace_csv(const std::string& path) {
  std::ifstream in(path);
  if (!in) return not_found("{}: cannot open the trace file", path);
  std::string line;
  std::getline(in, line);
  if (line.rfind("TIMESTAMP", 0) != 0) {
    return invalid_argument("{}: line 1 must be the header TIMESTAMP,ContextTokens,GeneratedTokens", path);
  }
  std::vector<TraceRequest> rows;
  double t0 = 0;
  for (int line_no = 2; std::getline(in, line); ++line_no) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::stringstream fields(line);
    std::string ts, prompt, output;
    std::getline(fields, ts, ',');
    std::getline(fields, prompt, ',');
    std::getline(fields, output, ',');
    double t;
    TraceRequest r;
    try {
      r.prompt_tokens = std::stoi(prompt);
      r.output_tokens = std::stoi(output);
    } catch (...) {
      return invalid_argument("{}:{}: expected integer token counts, got \"{}\"", path, line_no, line);
    }
    if (!parse_timestamp(ts, t)) return invalid_argument("{}:{}: bad TIMESTAMP \"{}\"", path, line_no, ts);
    if (rows.empty()) t0 = t;
    r.arrival_s = t - t0;
    rows.push_back(r);
  }
  return rows;
}

}  // namespace strata
