// Quality loss of the quantization schemes: one checkpoint loaded at full precision (the
// reference) and once per scheme, compared position by position along the reference's own
// long greedy generation (teacher forcing). Prints one Markdown row per scheme.
//
//   bench_quality --model ../shared/models/stories260K/stories260K.bin --tokens 512
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <iostream>
#include <sstream>

#include "kernels/kv_cache_format.h"
#include "tools/bench/bench_model_flags.h"
#include "tools/bench/quality.h"

namespace {

using namespace strata;

std::vector<int32_t> parse_ids(const std::string& text) {
  std::vector<int32_t> ids;
  std::istringstream in(text);
  for (int32_t id; in >> id;) ids.push_back(id);
  return ids;
}

// A scheme as --schemes names it: a --quantization value, "kv-DTYPE" (the KV cache's
// dtype, fp32 otherwise), or both joined by '+', e.g. "w8a8+kv-int8".
struct Scheme {
  std::string quantization = "none";
  DType kv_dtype = DType::kF32;
};

StatusOr<Scheme> parse_scheme(const std::string& text) {
  Scheme scheme;
  std::istringstream parts(text);
  for (std::string part; std::getline(parts, part, '+');) {
    if (!part.starts_with("kv-")) {
      scheme.quantization = part;
      continue;
    }
    const std::string name = part.substr(3);
    const std::optional<DType> dtype = name == "int8" ? DType::kI8 : parse_dtype(name);
    if (!dtype || !kernels::is_kv_cache_dtype(*dtype)) {
      return invalid_argument("--schemes: {} names no KV cache dtype (kv-int8, kv-bf16, kv-fp16, "
                              "kv-fp32)", part);
    }
    scheme.kv_dtype = *dtype;
  }
  return scheme;
}

// Loads the flags' model with `quantization` instead of the one given.
StatusOr<std::unique_ptr<LoadedModel>> load_as(bench::BenchModelFlags flags,
                                               const std::string& quantization) {
  flags.settings.quantization = quantization;
  return flags.load();
}

// The scheme's teacher-forced logits along `text`.
StatusOr<std::vector<std::vector<float>>> scheme_logits(const bench::BenchModelFlags& flags,
                                                        const std::string& name,
                                                        const std::vector<int32_t>& text) {
  STRATA_ASSIGN_OR_RETURN(const Scheme scheme, parse_scheme(name));
  STRATA_ASSIGN_OR_RETURN(auto candidate, load_as(flags, scheme.quantization));
  return bench::teacher_forced_logits(*candidate, text, scheme.kv_dtype);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"strata quantization quality: KL divergence and top-1 agreement vs full precision"};
  bench::BenchModelFlags model_flags;
  model_flags.settings.dtype = "fp32";
  std::string prompt = "1", schemes = "kv-int8,w8a8,w4a16,w8a8+kv-int8,w4a16+kv-int8";
  int64_t tokens = 256;
  bool header = false;
  model_flags.add_to(app, /*offer_device=*/false);
  app.add_option("--prompt-ids", prompt, "the greedy generation's prompt")->capture_default_str();
  app.add_option("--tokens", tokens, "positions generated and compared")->capture_default_str();
  app.add_option("--schemes", schemes, "comma-separated schemes: a --quantization value, kv-DTYPE, or both as w8a8+kv-int8")->capture_default_str();
  app.add_flag("--header", header, "print the Markdown table header first");
  CLI11_PARSE(app, argc, argv);

  auto reference = load_as(model_flags, "none");
  if (!reference.ok()) {
    std::cerr << reference.status().message() << "\n";
    return 2;
  }
  auto text = bench::greedy_tokens(**reference, parse_ids(prompt), tokens);
  auto ref_logits = text.ok() ? bench::teacher_forced_logits(**reference, *text)
                              : StatusOr<std::vector<std::vector<float>>>(text.status());
  if (!ref_logits.ok()) {
    std::cerr << ref_logits.status().message() << "\n";
    return 2;
  }
  if (header) {
    std::cout << "| model | weights | scheme | positions | mean KL | max KL | top-1 agreement | "
                 "perplexity (reference) | perplexity (scheme) |\n|---|---|---|---|---|---|---|---|---|\n";
  }
  std::istringstream list(schemes);
  for (std::string scheme; std::getline(list, scheme, ',');) {
    auto logits = scheme_logits(model_flags, scheme, *text);
    if (!logits.ok()) {
      std::cerr << scheme << ": " << logits.status().message() << "\n";
      return 2;
    }
    const bench::QualityReport r = bench::compare_logits(*ref_logits, *logits, *text);
    std::cout << fmt::format("| {} | {} | {} | {} | {:.5f} | {:.4f} | {:.1f}% | {:.3f} | {:.3f} |\n",
                             (*reference)->config.name, model_flags.settings.dtype, scheme,
                             r.positions, r.mean_kl, r.max_kl, 100.0 * r.top1_agreement,
                             r.reference_perplexity, r.candidate_perplexity);
  }
  return 0;
}
