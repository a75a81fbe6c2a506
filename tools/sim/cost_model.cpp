#include "tools/sim/cost_model.h"

#include <array>
#include <cmath>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace strata::sim {
namespace {

constexpr int kTerms = 4;
using Row = std::array<double, kTerms>;

Row features(const StepShape& s) {
  return {1.0, static_cast<double>(s.prefill_tokens), static_cast<double>(s.decode_sequences),
          static_cast<double>(s.context_tokens)};
}

// Solves the normal equations restricted to the `active` terms (Gaussian elimination with
// partial pivoting; 4×4 at most, so a library buys nothing). False when singular.
bool solve_least_squares(const std::vector<StepSample>& samples, const std::array<bool, kTerms>& active,
                         Row& coef) {
  std::vector<int> idx;
  for (int i = 0; i < kTerms; ++i) {
    if (active[static_cast<size_t>(i)]) idx.push_back(i);
  }
  const size_t n = idx.size();
  // Columns are scaled to unit RMS first: prefill tokens and context tokens differ from the
  // constant by orders of magnitude, and the normal equations square that.
  std::vector<double> scale(n, 0.0);
  for (const StepSample& s : samples) {
    const Row f = features(s.shape);
    for (size_t i = 0; i < n; ++i) scale[i] += f[static_cast<size_t>(idx[i])] * f[static_cast<size_t>(idx[i])];
  }
  for (double& x : scale) x = x > 0 ? std::sqrt(x / static_cast<double>(samples.size())) : 0.0;
  for (double x : scale) {
    if (x == 0) return false;
  }
  std::vector<std::vector<double>> m(n, std::vector<double>(n + 1, 0.0));
  for (const StepSample& s : samples) {
    const Row f = features(s.shape);
    for (size_t i = 0; i < n; ++i) {
      const double fi = f[static_cast<size_t>(idx[i])] / scale[i];
      for (size_t j = 0; j < n; ++j) m[i][j] += fi * f[static_cast<size_t>(idx[j])] / scale[j];
      m[i][n] += fi * s.seconds;
    }
  }
  for (size_t col = 0; col < n; ++col) {
    size_t pivot = col;
    for (size_t r = col + 1; r < n; ++r) {
      if (std::fabs(m[r][col]) > std::fabs(m[pivot][col])) pivot = r;
    }
    if (std::fabs(m[pivot][col]) < 1e-9 * static_cast<double>(samples.size())) return false;
    std::swap(m[col], m[pivot]);
    for (size_t r = 0; r < n; ++r) {
      if (r == col) continue;
      const double k = m[r][col] / m[col][col];
      for (size_t j = col; j <= n; ++j) m[r][j] -= k * m[col][j];
    }
  }
  coef = {0, 0, 0, 0};
  for (size_t i = 0; i < n; ++i) coef[static_cast<size_t>(idx[i])] = m[i][n] / m[i][i] / scale[i];
  return true;
}

}  // namespace

Status save_cost_model(const CostModel& model, const std::string& path) {
  const nlohmann::json j = {{"a", model.a}, {"b", model.b}, {"c", model.c}, {"d", model.d}, {"source", model.source}};
  std::ofstream out(path);
  if (!out) return not_found("cost model {}: cannot write it", path);
  out << j.dump(2) << "\n";
  return out.good() ? ok_status() : data_loss("cost model {}: writing failed", path);
}

StatusOr<CostModel> load_cost_model(const std::string& path) {
  std::ifstream in(path);
  if (!in) return not_found("cost model {} does not exist or cannot be read (write one with `strata simulate --profile-model`)", path);
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return invalid_argument("cost model {} is not a JSON object", path);
  CostModel m;
  for (auto [key, field] : {std::pair{"a", &m.a}, {"b", &m.b}, {"c", &m.c}, {"d", &m.d}}) {
    if (!j.contains(key) || !j[key].is_number() || !(j[key].get<double>() >= 0)) {
      return invalid_argument("cost model {}: `{}` must be a number >= 0 (seconds per unit)", path, key);
    }
    *field = j[key].get<double>();
  }
  m.source = j.value("source", path);
  return m;
}

namespace {

// Least squares with every coefficient >= 0, on `samples` as given.
StatusOr<CostModel> fit_non_negative(const std::vector<StepSample>& samples) {
  std::array<bool, kTerms> active = {true, true, true, true};
  Row coef{};
  for (int round = 0; round < kTerms; ++round) {
    if (!solve_least_squares(samples, active, coef)) {
      return invalid_argument("the profiled steps cannot separate the cost terms (too little variety in "
                              "batch size, prefill length and context); profile more load levels");
    }
    bool changed = false;
    for (int i = 0; i < kTerms; ++i) {
      if (active[static_cast<size_t>(i)] && coef[static_cast<size_t>(i)] < 0) {
        active[static_cast<size_t>(i)] = false;
        changed = true;
      }
    }
    if (!changed) break;
  }
  return CostModel{.a = std::max(coef[0], 0.0), .b = std::max(coef[1], 0.0), .c = std::max(coef[2], 0.0),
                   .d = std::max(coef[3], 0.0)};
}

double median_of(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

}  // namespace

StatusOr<std::vector<StepSample>> load_step_csv(const std::string& path) {
  std::ifstream in(path);
  if (!in) return not_found("step log {} does not exist or cannot be read (write one with strata-worker --step-log)", path);
  std::string line;
  std::getline(in, line);
  if (line.rfind("prefill_tokens,decode_sequences,context_tokens,seconds", 0) != 0) {
    return invalid_argument("{}:1: want the header prefill_tokens,decode_sequences,context_tokens,seconds", path);
  }
  std::vector<StepSample> out;
  for (int number = 2; std::getline(in, line); ++number) {
    if (line.empty() || line == "\r") continue;
    StepSample s;
    char c1 = 0, c2 = 0, c3 = 0;
    std::istringstream fields(line);
    if (!(fields >> s.shape.prefill_tokens >> c1 >> s.shape.decode_sequences >> c2 >> s.shape.context_tokens >> c3 >>
          s.seconds) ||
        c1 != ',' || c2 != ',' || c3 != ',' || s.seconds < 0) {
      return invalid_argument("{}:{}: want four numbers (prefill_tokens,decode_sequences,context_tokens,seconds), got `{}`",
                              path, number, line);
    }
    out.push_back(s);
  }
  return out;
}

StatusOr<CostModelFit> fit_cost_model(const std::vector<StepSample>& samples, bool drop_stalls) {
  if (samples.size() < 8) return invalid_argument("fitting a cost model needs at least 8 steps, got {}", samples.size());
  bool any_prefill = false, any_decode = false;
  for (const StepSample& s : samples) {
    any_prefill |= s.shape.prefill_tokens > 0;
    any_decode |= s.shape.decode_sequences > 0;
  }
  if (!any_prefill || !any_decode) {
    return invalid_argument("fitting a cost model needs steps with {} tokens; the profile had none",
                            any_prefill ? "decode" : "prefill");
  }
  // Steps stalled by something outside the engine (another process taking a core in the
  // middle of an OpenMP barrier) take many times their normal time; they would drag every
  // coefficient. So: fit, drop steps whose residual is beyond 5 robust standard deviations
  // (1.4826·MAD), refit, a few rounds.
  std::vector<StepSample> kept = samples;
  CostModelFit fit;
  for (int round = 0; round < 4; ++round) {
    STRATA_ASSIGN_OR_RETURN(fit.model, fit_non_negative(kept));
    if (!drop_stalls) break;
    std::vector<double> residuals;
    for (const StepSample& s : kept) residuals.push_back(s.seconds - fit.model.step_seconds(s.shape));
    const double med = median_of(residuals);
    std::vector<double> deviations;
    for (double r : residuals) deviations.push_back(std::fabs(r - med));
    const double limit = 5 * 1.4826 * median_of(deviations);
    std::vector<StepSample> next;
    for (size_t i = 0; i < kept.size(); ++i) {
      if (std::fabs(residuals[i] - med) <= limit) next.push_back(kept[i]);
    }
    if (next.size() == kept.size() || next.size() < 8) break;
    kept = std::move(next);
  }
  fit.outliers = samples.size() - kept.size();
  double mean = 0;
  for (const StepSample& s : kept) mean += s.seconds;
  mean /= static_cast<double>(kept.size());
  double ss_res = 0, ss_tot = 0, rel = 0;
  for (const StepSample& s : kept) {
    const double p = fit.model.step_seconds(s.shape);
    ss_res += (p - s.seconds) * (p - s.seconds);
    ss_tot += (s.seconds - mean) * (s.seconds - mean);
    rel += s.seconds > 0 ? std::fabs(p - s.seconds) / s.seconds : 0;
  }
  fit.r_squared = ss_tot > 0 ? 1 - ss_res / ss_tot : 1;
  fit.mean_abs_relative_error = rel / static_cast<double>(kept.size());
  fit.model.source = fmt::format("least-squares fit of {} steps{} (R² {:.3f}, mean |error| {:.1f}%)", kept.size(),
                                 drop_stalls ? fmt::format(", {} stalled ones left out", fit.outliers) : "",
                                 fit.r_squared, 100 * fit.mean_abs_relative_error);
  return fit;
}

CostModel roofline_cost_model(const bench::ModelCosts& costs, const bench::HardwareSpec& hw,
                              bench::RooflineDtype compute_dtype, int tp, double efficiency) {
  const double bandwidth = hw.memory_bandwidth_gb_per_s * 1e9 * tp * efficiency;
  const double flops = bench::peak_tflops(hw, compute_dtype) * 1e12 * tp * efficiency;
  CostModel m;
  m.a = costs.weight_bytes / bandwidth;
  m.b = costs.linear_flops_per_token / flops;
  m.c = 0;
  m.d = costs.kv_bytes_per_token / bandwidth + costs.attention_flops_per_token_per_context / flops;
  m.source = fmt::format("roofline of {} x{} at {:.0f}% efficiency", hw.name, tp, 100 * efficiency);
  return m;
}

}  // namespace strata::sim
