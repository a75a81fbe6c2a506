#include "tools/bench/bench_report.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numeric>

#include <fmt/format.h>

namespace strata::bench {

Percentiles percentiles(std::vector<double> v) {
  Percentiles p;
  p.count = v.size();
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    const double pos = q * static_cast<double>(v.size() - 1);
    const size_t lo = static_cast<size_t>(std::floor(pos));
    const size_t hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
  };
  p.mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  p.p50 = at(0.50);
  p.p90 = at(0.90);
  p.p99 = at(0.99);
  return p;
}

namespace {

double mean_itl_s(const RequestResult& r) {
  return r.output_tokens > 1 ? (r.e2e_s - r.ttft_s) / (r.output_tokens - 1) : 0.0;
}

nlohmann::json percentiles_json(const Percentiles& p) {
  return {{"mean", p.mean}, {"p50", p.p50}, {"p90", p.p90}, {"p99", p.p99}, {"count", p.count}};
}

}  // namespace

LoadPointSummary summarize(const LoadPointResult& point, const Slo& slo, double cost_per_hour_usd) {
  LoadPointSummary s;
  s.label = point.label;
  s.load = point.load;
  s.duration_s = point.duration_s;
  s.num_requests = static_cast<int>(point.requests.size());
  std::vector<double> ttft, itl, e2e, tpot;
  int good = 0;
  for (const RequestResult& r : point.requests) {
    s.retries += r.retries;
    if (!r.ok) {
      ++s.failures[r.failure];
      continue;
    }
    ++s.num_ok;
    s.input_tokens += r.input_tokens;
    s.output_tokens += r.output_tokens;
    if ((r.usage_prompt_tokens && *r.usage_prompt_tokens != r.input_tokens) ||
        (r.usage_completion_tokens && *r.usage_completion_tokens != r.output_tokens)) {
      ++s.usage_mismatches;
    }
    ttft.push_back(r.ttft_s * 1e3);
    e2e.push_back(r.e2e_s * 1e3);
    for (double g : r.itl_s) itl.push_back(g * 1e3);
    if (r.output_tokens > 1) tpot.push_back(mean_itl_s(r) * 1e3);
    const bool ttft_ok = slo.ttft_ms <= 0 || r.ttft_s * 1e3 <= slo.ttft_ms;
    const bool itl_ok = slo.itl_ms <= 0 || mean_itl_s(r) * 1e3 <= slo.itl_ms;
    good += ttft_ok && itl_ok;
  }
  if (s.duration_s > 0) {
    s.requests_per_s = s.num_ok / s.duration_s;
    s.output_tokens_per_s = static_cast<double>(s.output_tokens) / s.duration_s;
    s.goodput_requests_per_s = good / s.duration_s;
  }
  if (cost_per_hour_usd > 0 && s.num_ok > 0) {
    s.cost_per_request_usd = cost_per_hour_usd * (s.duration_s / 3600) / s.num_ok;
  }
  s.ttft_ms = percentiles(std::move(ttft));
  s.itl_ms = percentiles(std::move(itl));
  s.e2e_ms = percentiles(std::move(e2e));
  s.tpot_ms = percentiles(std::move(tpot));
  return s;
}

nlohmann::json report_json(const nlohmann::json& settings, const std::vector<LoadPointResult>& points,
                           const std::vector<LoadPointSummary>& summaries) {
  nlohmann::json out = {{"settings", settings}, {"load_points", nlohmann::json::array()}};
  for (size_t i = 0; i < summaries.size(); ++i) {
    const LoadPointSummary& s = summaries[i];
    nlohmann::json requests = nlohmann::json::array();
    for (const RequestResult& r : points[i].requests) {
      nlohmann::json jr = {{"ok", r.ok},           {"failure", r.failure},
                           {"send_s", r.send_s},   {"ttft_s", r.ttft_s},
                           {"e2e_s", r.e2e_s},     {"itl_s", r.itl_s},
                           {"input_tokens", r.input_tokens}, {"output_tokens", r.output_tokens},
                           {"retries", r.retries}};
      jr["usage_prompt_tokens"] = r.usage_prompt_tokens ? nlohmann::json(*r.usage_prompt_tokens) : nullptr;
      jr["usage_completion_tokens"] =
          r.usage_completion_tokens ? nlohmann::json(*r.usage_completion_tokens) : nullptr;
      requests.push_back(std::move(jr));
    }
    out["load_points"].push_back({{"label", s.label},
                                  {"load", s.load},
                                  {"num_requests", s.num_requests},
                                  {"num_ok", s.num_ok},
                                  {"failures", s.failures},
                                  {"duration_s", s.duration_s},
                                  {"requests_per_s", s.requests_per_s},
                                  {"output_tokens_per_s", s.output_tokens_per_s},
                                  {"goodput_requests_per_s", s.goodput_requests_per_s},
                                  {"input_tokens", s.input_tokens},
                                  {"output_tokens", s.output_tokens},
                                  {"usage_mismatches", s.usage_mismatches},
                                  {"retries", s.retries},
                                  {"cost_per_request_usd", s.cost_per_request_usd ? nlohmann::json(*s.cost_per_request_usd) : nullptr},
                                  {"ttft_ms", percentiles_json(s.ttft_ms)},
                                  {"itl_ms", percentiles_json(s.itl_ms)},
                                  {"tpot_ms", percentiles_json(s.tpot_ms)},
                                  {"e2e_ms", percentiles_json(s.e2e_ms)},
                                  {"requests", std::move(requests)}});
    if (s.server) {
      out["load_points"].back()["server"] = {{"kv_utilization_mean", s.server->kv_utilization_mean},
                                             {"kv_utilization_max", s.server->kv_utilization_max},
                                             {"preemptions", s.server->preemptions},
                                             {"spec_draft_tokens", s.server->spec_draft_tokens},
                                             {"spec_accepted_tokens", s.server->spec_accepted_tokens},
                                             {"spec_acceptance_rate", s.server->acceptance_rate()},
                                             {"spec_mean_accepted_length", s.server->mean_accepted_length()},
                                             {"num_samples", s.server->num_samples}};
    }
  }
  return out;
}

namespace {

// The last cell: failures by reason, then the retries that hid a closed connection.
std::string failures_cell(const LoadPointSummary& s) {
  std::string cell;
  for (const auto& [reason, n] : s.failures) cell += fmt::format("{}{}: {}", cell.empty() ? "" : ", ", reason, n);
  if (cell.empty()) cell = "none";
  if (s.retries > 0) cell += fmt::format(" ({} {} after the server closed the connection)", s.retries,
                                         s.retries == 1 ? "retry" : "retries");
  return cell;
}

}  // namespace

std::string report_markdown(const std::string& load_name, const std::vector<LoadPointSummary>& summaries) {
  const bool server = std::any_of(summaries.begin(), summaries.end(),
                                  [](const LoadPointSummary& s) { return s.server.has_value(); });
  const bool cost = std::any_of(summaries.begin(), summaries.end(),
                                [](const LoadPointSummary& s) { return s.cost_per_request_usd.has_value(); });
  const bool spec = std::any_of(summaries.begin(), summaries.end(), [](const LoadPointSummary& s) {
    return s.server && s.server->spec_draft_tokens > 0;
  });
  std::string md = fmt::format(
      "| {} | ok/sent | req/s | out tok/s | goodput req/s | TTFT p50 / p90 / p99 (mean) ms | "
      "ITL p50 / p90 / p99 (mean) ms | E2E p50 / p90 / p99 (mean) ms |{}{}{} failures |\n",
      load_name, server ? " preemptions | KV util mean / max |" : "",
      spec ? " drafts | acceptance | tokens / verification |" : "", cost ? " USD / request |" : "");
  md += fmt::format("|---:|---:|---:|---:|---:|---:|---:|---:|{}{}{}---|\n", server ? "---:|---:|" : "",
                    spec ? "---:|---:|---:|" : "", cost ? "---:|" : "");
  auto pct = [](const Percentiles& p) {
    return fmt::format("{:.1f} / {:.1f} / {:.1f} ({:.1f})", p.p50, p.p90, p.p99, p.mean);
  };
  for (const LoadPointSummary& s : summaries) {
    std::string extra_cells;
    if (server) {
      extra_cells = s.server ? fmt::format(" {:g} | {:.0f}% / {:.0f}% |", s.server->preemptions,
                                           100 * s.server->kv_utilization_mean, 100 * s.server->kv_utilization_max)
                             : " - | - |";
    }
    if (spec) {
      extra_cells += s.server ? fmt::format(" {:g} | {:.2f} | {:.2f} |", s.server->spec_draft_tokens,
                                            s.server->acceptance_rate(), s.server->mean_accepted_length())
                              : " - | - | - |";
    }
    if (cost) extra_cells += s.cost_per_request_usd ? fmt::format(" {:.3g} |", *s.cost_per_request_usd) : " - |";
    md += fmt::format("| {:g} | {}/{} | {:.2f} | {:.1f} | {:.2f} | {} | {} | {} |{} {} |\n", s.load, s.num_ok,
                      s.num_requests, s.requests_per_s, s.output_tokens_per_s, s.goodput_requests_per_s,
                      pct(s.ttft_ms), pct(s.itl_ms), pct(s.e2e_ms), extra_cells, failures_cell(s));
  }
  return md;
}

namespace {

// Writes the sorted values of one metric of one load point as "value cumulative_fraction".
void write_cdf(const std::filesystem::path& file, std::vector<double> v) {
  std::sort(v.begin(), v.end());
  std::ofstream out(file);
  for (size_t i = 0; i < v.size(); ++i) {
    out << v[i] << " " << static_cast<double>(i + 1) / static_cast<double>(v.size()) << "\n";
  }
}

bool have_gnuplot() { return std::system("command -v gnuplot >/dev/null 2>&1") == 0; }

}  // namespace

StatusOr<std::vector<std::string>> write_plots(const std::string& dir, const std::string& load_name,
                                               const std::vector<LoadPointResult>& points,
                                               const std::vector<LoadPointSummary>& summaries) {
  if (!have_gnuplot()) {
    return not_found("gnuplot is not installed; no plots written (scripts/install-deps.sh installs gnuplot-nox)");
  }
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return invalid_argument("--plot-dir `{}`: cannot create it: {}", dir, ec.message());
  const fs::path data = fs::path(dir) / ".plot-data";
  fs::create_directories(data, ec);

  struct Metric {
    std::string name, title;
  };
  const std::vector<Metric> metrics = {{"ttft", "TTFT (ms)"}, {"itl", "inter-token latency (ms)"},
                                       {"e2e", "end-to-end latency (ms)"}};
  std::string script =
      "set terminal pngcairo size 720,440 font 'sans,10'\n"
      "set grid\nset key bottom right\n";
  std::vector<std::string> written;
  for (const Metric& m : metrics) {
    std::string plot;
    for (size_t i = 0; i < points.size(); ++i) {
      std::vector<double> v;
      for (const RequestResult& r : points[i].requests) {
        if (!r.ok) continue;
        if (m.name == "ttft") v.push_back(r.ttft_s * 1e3);
        if (m.name == "e2e") v.push_back(r.e2e_s * 1e3);
        if (m.name == "itl") {
          for (double g : r.itl_s) v.push_back(g * 1e3);
        }
      }
      if (v.empty()) continue;
      const fs::path f = data / fmt::format("{}_{}.dat", m.name, i);
      write_cdf(f, std::move(v));
      plot += fmt::format("{}'{}' using 1:2 with lines lw 2 title '{} {:g}'", plot.empty() ? "" : ", ",
                          f.string(), load_name, points[i].load);
    }
    if (plot.empty()) continue;
    const fs::path png = fs::path(dir) / (m.name + "_cdf.png");
    script += fmt::format("set output '{}'\nset title '{} CDF'\nset xlabel '{}'\nset ylabel 'fraction of "
                          "{}'\nset logscale x\nplot {}\nunset logscale x\n",
                          png.string(), m.name == "itl" ? "Inter-token latency" : (m.name == "ttft" ? "TTFT" : "E2E latency"),
                          m.title, m.name == "itl" ? "gaps" : "requests", plot);
    written.push_back(png.string());
  }

  const fs::path summary_file = data / "summary.dat";
  {
    std::ofstream out(summary_file);
    out << "# load req_s out_tok_s goodput ttft_p50 ttft_p99 itl_p50 itl_p99 e2e_p50 e2e_p99\n";
    for (const LoadPointSummary& s : summaries) {
      out << s.load << " " << s.requests_per_s << " " << s.output_tokens_per_s << " " << s.goodput_requests_per_s
          << " " << s.ttft_ms.p50 << " " << s.ttft_ms.p99 << " " << s.itl_ms.p50 << " " << s.itl_ms.p99 << " "
          << s.e2e_ms.p50 << " " << s.e2e_ms.p99 << "\n";
    }
  }
  const std::string sf = summary_file.string();
  const fs::path tput = fs::path(dir) / "throughput.png";
  script += fmt::format(
      "set output '{}'\nset title 'Throughput vs load'\nset xlabel '{}'\nset ylabel 'output tokens/s'\n"
      "set y2label 'requests/s'\nset ytics nomirror\nset y2tics\nset key top left\n"
      "plot '{}' using 1:3 with linespoints lw 2 pt 7 title 'output tokens/s' axes x1y1, "
      "'{}' using 1:2 with linespoints lw 2 pt 5 title 'requests/s' axes x1y2, "
      "'{}' using 1:4 with linespoints lw 2 pt 4 dt 2 title 'goodput requests/s' axes x1y2\n"
      "unset y2tics\nunset y2label\nset ytics mirror\n",
      tput.string(), load_name, sf, sf, sf);
  written.push_back(tput.string());
  const fs::path lat = fs::path(dir) / "latency_vs_load.png";
  script += fmt::format(
      "set output '{}'\nset title 'Latency vs load'\nset xlabel '{}'\nset ylabel 'ms'\nset logscale y\n"
      "set key outside right top\n"
      "plot '{}' using 1:5 with linespoints lw 2 pt 7 title 'TTFT p50', "
      "'{}' using 1:6 with linespoints lw 2 pt 7 dt 2 title 'TTFT p99', "
      "'{}' using 1:7 with linespoints lw 2 pt 5 title 'ITL p50', "
      "'{}' using 1:8 with linespoints lw 2 pt 5 dt 2 title 'ITL p99', "
      "'{}' using 1:9 with linespoints lw 2 pt 9 title 'E2E p50', "
      "'{}' using 1:10 with linespoints lw 2 pt 9 dt 2 title 'E2E p99'\n",
      lat.string(), load_name, sf, sf, sf, sf, sf, sf);
  written.push_back(lat.string());

  const fs::path script_file = data / "plots.gp";
  {
    std::ofstream out(script_file);
    out << script;
  }
  const std::string cmd = fmt::format("gnuplot '{}' 2>'{}'", script_file.string(), (data / "gnuplot.log").string());
  if (std::system(cmd.c_str()) != 0) {
    return internal_error("gnuplot failed; see {}", (data / "gnuplot.log").string());
  }
  fs::remove_all(data, ec);
  return written;
}

}  // namespace strata::bench
