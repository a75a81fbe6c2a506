// A straightforward double-precision Llama forward pass, written from the llama2.c and HF
// descriptions and sharing no code with strata's kernels, model or loaders. It recomputes
// the whole sequence (no cache) and serves as the independent reference for the engine.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

namespace strata::testing {

struct RefConfig {
  int dim = 0, hidden_dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, vocab = 0, seq_len = 0;
  double rope_theta = 10000.0, eps = 1e-5;
  bool rotate_half = false;  // HF layout: pairs (i, i + d/2); llama2.c: (2i, 2i + 1)
  bool bias = false;
  int head_dim() const { return dim / n_heads; }
  int kv_dim() const { return head_dim() * n_kv_heads; }
};

// Row-major [out][in] matrices, as stored in both checkpoint formats.
struct RefLayer {
  std::vector<double> rms_att, wq, wk, wv, bq, bk, bv, wo, rms_ffn, w1, w2, w3;
};
struct RefWeights {
  std::vector<double> embedding;  // [vocab, dim]
  std::vector<RefLayer> layers;
  std::vector<double> rms_final;  // [dim]
  std::vector<double> wcls;       // [vocab, dim]
};

// Logits [tokens.size(), vocab] for every position.
inline std::vector<std::vector<double>> reference_logits(const RefConfig& c, const RefWeights& w,
                                                         const std::vector<int>& tokens) {
  const int n = static_cast<int>(tokens.size()), d = c.dim, hd = c.head_dim(), kvd = c.kv_dim();
  auto matvec = [](const std::vector<double>& m, const std::vector<double>& x, int rows, int cols) {
    std::vector<double> y(rows, 0.0);
    for (int r = 0; r < rows; ++r)
      for (int k = 0; k < cols; ++k) y[r] += m[static_cast<size_t>(r) * cols + k] * x[k];
    return y;
  };
  auto rmsnorm = [&](const std::vector<double>& x, const std::vector<double>& g) {
    double ss = 0;
    for (double v : x) ss += v * v;
    const double inv = 1.0 / std::sqrt(ss / x.size() + c.eps);
    std::vector<double> y(x.size());
    for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * inv * g[i];
    return y;
  };
  auto rope = [&](std::vector<double>& v, int heads, int pos) {
    for (int h = 0; h < heads; ++h) {
      for (int i = 0; i < hd / 2; ++i) {
        const double freq = std::pow(c.rope_theta, -2.0 * i / hd);
        const double a = pos * freq, cs = std::cos(a), sn = std::sin(a);
        const int i0 = h * hd + (c.rotate_half ? i : 2 * i);
        const int i1 = h * hd + (c.rotate_half ? i + hd / 2 : 2 * i + 1);
        const double x0 = v[i0], x1 = v[i1];
        v[i0] = x0 * cs - x1 * sn;
        v[i1] = x0 * sn + x1 * cs;
      }
    }
  };

  std::vector<std::vector<double>> x(n);
  for (int t = 0; t < n; ++t)
    x[t].assign(w.embedding.begin() + static_cast<size_t>(tokens[t]) * d,
                w.embedding.begin() + static_cast<size_t>(tokens[t] + 1) * d);
  for (const RefLayer& L : w.layers) {
    std::vector<std::vector<double>> q(n), k(n), v(n);
    for (int t = 0; t < n; ++t) {
      const auto xn = rmsnorm(x[t], L.rms_att);
      q[t] = matvec(L.wq, xn, d, d);
      k[t] = matvec(L.wk, xn, kvd, d);
      v[t] = matvec(L.wv, xn, kvd, d);
      if (c.bias) {
        for (int i = 0; i < d; ++i) q[t][i] += L.bq[i];
        for (int i = 0; i < kvd; ++i) k[t][i] += L.bk[i], v[t][i] += L.bv[i];
      }
      rope(q[t], c.n_heads, t);
      rope(k[t], c.n_kv_heads, t);
    }
    for (int t = 0; t < n; ++t) {
      std::vector<double> att_out(d, 0.0);
      for (int h = 0; h < c.n_heads; ++h) {
        const int kvh = h / (c.n_heads / c.n_kv_heads);
        std::vector<double> scores(t + 1);
        double mx = -1e300;
        for (int s = 0; s <= t; ++s) {
          double dot = 0;
          for (int i = 0; i < hd; ++i) dot += q[t][h * hd + i] * k[s][kvh * hd + i];
          scores[s] = dot / std::sqrt(static_cast<double>(hd));
          mx = std::max(mx, scores[s]);
        }
        double sum = 0;
        for (double& s : scores) sum += (s = std::exp(s - mx));
        for (int s = 0; s <= t; ++s)
          for (int i = 0; i < hd; ++i) att_out[h * hd + i] += scores[s] / sum * v[s][kvh * hd + i];
      }
      const auto o = matvec(L.wo, att_out, d, d);
      for (int i = 0; i < d; ++i) x[t][i] += o[i];
      const auto xn = rmsnorm(x[t], L.rms_ffn);
      const auto g = matvec(L.w1, xn, c.hidden_dim, d);
      const auto u = matvec(L.w3, xn, c.hidden_dim, d);
      std::vector<double> act(c.hidden_dim);
      for (int i = 0; i < c.hidden_dim; ++i) act[i] = g[i] / (1.0 + std::exp(-g[i])) * u[i];
      const auto down = matvec(L.w2, act, d, c.hidden_dim);
      for (int i = 0; i < d; ++i) x[t][i] += down[i];
    }
  }
  std::vector<std::vector<double>> logits(n);
  for (int t = 0; t < n; ++t) logits[t] = matvec(w.wcls, rmsnorm(x[t], w.rms_final), c.vocab, d);
  return logits;
}

}  // namespace strata::testing
