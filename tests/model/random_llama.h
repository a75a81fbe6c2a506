// Random Llama weights for tests: written as a llama2.c checkpoint (the format's bytes are
// produced here, independently of strata's loader) and kept as doubles for the reference.
#pragma once

#include <cstdint>
#include <fstream>
#include <random>
#include <string>

#include "tests/model/reference_llama.h"

namespace strata::testing {

struct RandomLlama {
  RefConfig config;
  bool tied = true;
  RefWeights weights;
};

inline RandomLlama make_random_llama(RefConfig c, bool tied, uint32_t seed) {
  std::mt19937 rng(seed);
  // Values are rounded to float so the fp32 engine sees exactly what the reference sees.
  auto fill = [&](std::vector<double>& v, size_t n, double scale, double offset = 0.0) {
    std::normal_distribution<float> dist(0.0f, 1.0f);
    v.resize(n);
    for (double& x : v) x = static_cast<float>(offset + scale * dist(rng));
  };
  RandomLlama m{c, tied, {}};
  const size_t d = c.dim, kvd = c.kv_dim(), f = c.hidden_dim, vocab = c.vocab;
  fill(m.weights.embedding, vocab * d, 1.0);
  for (int l = 0; l < c.n_layers; ++l) {
    RefLayer L;
    fill(L.rms_att, d, 0.2, 1.0);
    fill(L.wq, d * d, 1.0 / std::sqrt(double(d)));
    fill(L.wk, kvd * d, 1.0 / std::sqrt(double(d)));
    fill(L.wv, kvd * d, 1.0 / std::sqrt(double(d)));
    fill(L.wo, d * d, 1.0 / std::sqrt(double(d)));
    fill(L.rms_ffn, d, 0.2, 1.0);
    fill(L.w1, f * d, 1.0 / std::sqrt(double(d)));
    fill(L.w2, d * f, 1.0 / std::sqrt(double(f)));
    fill(L.w3, f * d, 1.0 / std::sqrt(double(d)));
    if (c.bias) {
      fill(L.bq, d, 0.5);
      fill(L.bk, kvd, 0.5);
      fill(L.bv, kvd, 0.5);
    }
    m.weights.layers.push_back(std::move(L));
  }
  fill(m.weights.rms_final, d, 0.2, 1.0);
  if (tied) {
    m.weights.wcls = m.weights.embedding;
  } else {
    fill(m.weights.wcls, vocab * d, 1.0 / std::sqrt(double(d)));
  }
  return m;
}

// Writes the llama2.c "version 0" layout: header, arrays in run.c's order, the legacy
// freq_cis tables, and wcls when the classifier is not shared (negative vocab_size).
inline void write_llama2c(const RandomLlama& m, const std::string& path) {
  std::ofstream out(path, std::ios::binary);
  const RefConfig& c = m.config;
  const int32_t header[7] = {c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads,
                             m.tied ? c.vocab : -c.vocab, c.seq_len};
  out.write(reinterpret_cast<const char*>(header), sizeof header);
  auto put = [&](const std::vector<double>& v) {
    for (double x : v) {
      const float f = static_cast<float>(x);
      out.write(reinterpret_cast<const char*>(&f), sizeof f);
    }
  };
  const auto& L = m.weights.layers;
  put(m.weights.embedding);
  for (auto& l : L) put(l.rms_att);
  for (auto& l : L) put(l.wq);
  for (auto& l : L) put(l.wk);
  for (auto& l : L) put(l.wv);
  for (auto& l : L) put(l.wo);
  for (auto& l : L) put(l.rms_ffn);
  for (auto& l : L) put(l.w1);
  for (auto& l : L) put(l.w2);
  for (auto& l : L) put(l.w3);
  put(m.weights.rms_final);
  put(std::vector<double>(static_cast<size_t>(c.seq_len) * c.head_dim(), 0.0));  // freq_cis re+im
  if (!m.tied) put(m.weights.wcls);
}

}  // namespace strata::testing
