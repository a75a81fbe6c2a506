#include "tools/bench/trace.h"

#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

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

// One field of a Mooncake row, a non-negative integer.
StatusOr<int64_t> count_field(const nlohmann::json& row, const char* name, const std::string& where) {
  const auto it = row.find(name);
  if (it == row.end() || !it->is_number_integer() || it->get<int64_t>() < 0) {
    return invalid_argument("{}: `{}` must be a non-negative integer", where, name);
  }
  return it->get<int64_t>();
}

StatusOr<TraceRequest> mooncake_row(const std::string& line, const std::string& where) {
  const nlohmann::json row = nlohmann::json::parse(line, nullptr, false);
  if (!row.is_object()) return invalid_argument("{}: not a JSON object", where);
  STRATA_ASSIGN_OR_RETURN(const int64_t timestamp_ms, count_field(row, "timestamp", where));
  STRATA_ASSIGN_OR_RETURN(const int64_t input, count_field(row, "input_length", where));
  STRATA_ASSIGN_OR_RETURN(const int64_t output, count_field(row, "output_length", where));
  if (input > INT32_MAX || output > INT32_MAX) return invalid_argument("{}: lengths past 2^31", where);
  TraceRequest r{.arrival_s = static_cast<double>(timestamp_ms) / 1000.0,
                 .prompt_tokens = static_cast<int32_t>(input), .output_tokens = static_cast<int32_t>(output)};
  const auto ids = row.find("hash_ids");
  if (ids == row.end() || !ids->is_array()) return invalid_argument("{}: `hash_ids` must be an array", where);
  for (const nlohmann::json& id : *ids) {
    if (!id.is_number_integer()) return invalid_argument("{}: `hash_ids` holds a non-integer", where);
    r.block_ids.push_back(id.get<int64_t>());
  }
  const int64_t blocks_needed = (input + kMooncakeBlockTokens - 1) / kMooncakeBlockTokens;
  if (static_cast<int64_t>(r.block_ids.size()) < blocks_needed) {
    return invalid_argument("{}: {} hash_ids cannot name the {} blocks of {} input tokens", where,
                            r.block_ids.size(), blocks_needed, input);
  }
  return r;
}

}  // namespace

StatusOr<std::vector<TraceRequest>> load_trace_mooncake(const std::string& path) {
  std::ifstream in(path);
  if (!in) return not_found("{}: cannot open the trace file", path);
  std::vector<TraceRequest> rows;
  std::string line;
  for (int line_no = 1; std::getline(in, line); ++line_no) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    STRATA_ASSIGN_OR_RETURN(TraceRequest r, mooncake_row(line, fmt::format("{}:{}", path, line_no)));
    if (!rows.empty() && r.arrival_s < rows.back().arrival_s) {
      return invalid_argument("{}:{}: `timestamp` goes back in time", path, line_no);
    }
    rows.push_back(std::move(r));
  }
  if (!rows.empty()) {
    const double t0 = rows.front().arrival_s;
    for (TraceRequest& r : rows) r.arrival_s -= t0;
  }
  return rows;
}

StatusOr<std::vector<TraceRequest>> load_trace(const std::string& path) {
  const bool jsonl = path.size() >= 6 && path.compare(path.size() - 6, 6, ".jsonl") == 0;
  return jsonl ? load_trace_mooncake(path) : load_trace_csv(path);
}

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
