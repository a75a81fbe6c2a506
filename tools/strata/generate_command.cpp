// `strata generate`: prompt in, text (or ids) out on stdout; timings and the model summary
// on stderr, so stdout can be compared byte for byte with other implementations.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <sstream>

#include <fmt/format.h>

#include "common/model_path.h"
#include "common/tokenizer/tokenizer.h"
#include "kernels/ops.h"
#include "tools/strata/commands.h"
#include "worker/engine/generator.h"
#include "worker/model/model_loader.h"

namespace strata::cli {
namespace {

struct GenerateOptions {
  ModelSettings load;
  GeneratorConfig generator;
  std::string tokenizer;
  std::string prompt;
  std::string prompt_ids;
  bool prompt_given = false;  // --prompt was on the command line, even as ""
  // The sampler's own defaults, but for a longer answer than an API request's.
  SamplingParams sampling{.max_tokens = 256};
  int64_t seed = -1;
  bool output_ids = false;
};

std::optional<std::vector<int32_t>> parse_ids(const std::string& text) {
  std::vector<int32_t> ids;
  std::istringstream in(text);
  std::string word;
  while (in >> word) {
    try {
      size_t used = 0;
      const long id = std::stol(word, &used);
      if (used != word.size()) return std::nullopt;
      ids.push_back(static_cast<int32_t>(id));
    } catch (...) {
      return std::nullopt;
    }
  }
  return ids;
}

// Asked for when neither --prompt nor --prompt-ids is given. llama.cpp's llama-cli asks for
// input without a prompt; a one-shot command cannot ask, so it says what to give instead of
// generating from BOS alone (which --prompt "" still does).
int usage_without_prompt() {
  std::cerr << "strata generate: give a prompt: --prompt TEXT, or --prompt-ids \"1 2 3\" (token ids); "
               "--prompt \"\" starts from BOS alone. For example:\n"
               "  strata generate --model ../shared/models/aidreams260K/aidreams260K.bin "
               "--prompt \"Once upon a time\" --max-tokens 64\n"
               "(the default model, builtin:tiny, has random weights: its text is random bytes)\n";
  return 2;
}

void print_model_summary(const LoadedModel& m, const GenerateOptions& o, Device device, double load_s) {
  std::cerr << "model: " << m.config.summary() << ", weights " << dtype_name(m.weights.dtype)
            << fmt::format(" ({:.1f} MB, loaded in {:.2f} s)", m.weights.bytes() / 1e6, load_s);
  if (device.is_cpu()) {
    std::cerr << ", CPU kernels " << kernels::cpu_isa_name() << " × " << kernels::cpu_threads()
              << " threads\n";
  } else {
    std::cerr << " on " << device.to_string() << (o.generator.engine.cuda_graphs ? " with" : " without")
              << " CUDA graphs\n";
  }
}

// The prompt's ids: --prompt-ids as given, else --prompt encoded (with BOS).
StatusOr<std::vector<int32_t>> prompt_ids(const GenerateOptions& o, const Tokenizer* tokenizer) {
  if (!o.prompt_ids.empty()) {
    auto ids = parse_ids(o.prompt_ids);
    if (!ids || ids->empty()) return invalid_argument("--prompt-ids must be space-separated integers. Given: \"{}\"", o.prompt_ids);
    return *ids;
  }
  std::vector<int32_t> ids = tokenizer->encode(o.prompt, /*add_special_tokens=*/true);
  if (ids.empty()) return invalid_argument("the prompt encodes to no tokens and the tokenizer adds no BOS; give a non-empty --prompt");
  return ids;
}

// Streams the answer to stdout (text, or ids with --output-ids), then the timings to stderr.
int generate_and_print(const LoadedModel& m, const GenerateOptions& o, const Tokenizer* tokenizer,
                       const std::vector<int32_t>& prompt) {
  SamplingParams params = o.sampling;
  if (o.seed >= 0) params.seed = static_cast<uint64_t>(o.seed);

  SequenceGenerator generator(m, o.generator);
  std::unique_ptr<IncrementalDecoder> decoder;
  if (tokenizer && !o.output_ids) decoder = std::make_unique<IncrementalDecoder>(*tokenizer, prompt);
  bool first = true;
  auto on_token = [&](const SampledToken& t) {
    if (o.output_ids) {
      std::cout << (first ? "" : " ") << t.id;
    } else {
      std::cout << decoder->push(t.id);
    }
    std::cout.flush();
    first = false;
  };
  auto result = generator.generate(prompt, params, on_token);
  if (!result.ok()) return report_failure("generate", result.status());
  if (decoder) std::cout << decoder->flush();
  if (o.output_ids) std::cout << "\n";
  std::cout.flush();
  const size_t n = result->output_ids.size();
  std::cerr << fmt::format(
      "\nprompt {} tokens, generated {} tokens ({}); TTFT {:.1f} ms, prefill {:.1f} tokens/s, "
      "decode {:.1f} tokens/s\n",
      prompt.size(), n, result->finish_reason, result->time_to_first_token_s * 1e3,
      prompt.size() / std::max(result->time_to_first_token_s, 1e-9),
      n > 1 ? (n - 1) / std::max(result->decode_seconds, 1e-9) : 0.0);
  return 0;
}

int run_generate(const GenerateOptions& o) {
  if (!o.prompt_given && o.prompt_ids.empty()) return usage_without_prompt();
  if (auto st = config::check_ranges(o.load); !st.ok()) return report_failure("generate", st);
  if (auto st = config::check_ranges(o.generator); !st.ok()) return report_failure("generate", st);
  // The tokenizer is found (or found missing) before the model loads, which may take long;
  // only token ids in and out need none.
  std::unique_ptr<Tokenizer> tokenizer;
  if (o.prompt_ids.empty() || !o.output_ids || !o.tokenizer.empty()) {
    auto path = resolve_tokenizer_path(o.load.model, o.tokenizer);
    if (!path.ok()) return report_failure("generate", path.status());
    auto loaded = load_tokenizer(*path);
    if (!loaded.ok()) return report_failure("generate", loaded.status());
    tokenizer = std::move(loaded).value();
  }
  kernels::set_cpu_threads(o.load.threads);
  auto load_options = o.load.load_options({}, o.generator.engine.gpu_memory_fraction);
  if (!load_options.ok()) return report_failure("generate", load_options.status());
  const auto load_start = std::chrono::steady_clock::now();
  auto model = load_model(o.load.model, *load_options);
  if (!model.ok()) return report_failure("generate", model.status());
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();
  const LoadedModel& m = **model;
  print_model_summary(m, o, load_options->device, load_s);
  auto prompt_or = prompt_ids(o, tokenizer.get());
  if (!prompt_or.ok()) return report_failure("generate", prompt_or.status());
  if (m.format == "builtin" && !o.output_ids && isatty(STDOUT_FILENO)) {
    std::cerr << "note: " << o.load.model << " has random weights, so its text is random bytes "
              << "(--output-ids prints token ids instead)\n";
  }
  return generate_and_print(m, o, tokenizer.get(), *prompt_or);
}

}  // namespace

CommandRunner add_generate_command(CLI::App& app) {
  auto o = std::make_shared<GenerateOptions>();
  CLI::App* cmd = app.add_subcommand("generate", "Generate text for one prompt, offline");
  config::CliBinder flags(*cmd);
  o->load.visit_fields(flags);
  o->generator.visit_fields(flags);
  cmd->add_option("--tokenizer", o->tokenizer, "tokenizer.bin / tokenizer.json (default: found next to the model)");
  CLI::Option* prompt = cmd->add_option("--prompt", o->prompt, "prompt text (\"\" = start from BOS alone)");
  cmd->add_option("--prompt-ids", o->prompt_ids, "prompt as space-separated token ids (instead of --prompt)");
  cmd->add_option("--max-tokens", o->sampling.max_tokens, "tokens to generate at most")->capture_default_str()->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--temperature", o->sampling.temperature, "0 = greedy")->capture_default_str();
  cmd->add_option("--top-p", o->sampling.top_p, "nucleus sampling mass (0, 1]")->capture_default_str();
  cmd->add_option("--top-k", o->sampling.top_k, "keep the k most likely tokens (0 = off)")->capture_default_str();
  cmd->add_option("--min-p", o->sampling.min_p, "drop tokens below min_p × p(top token)")->capture_default_str();
  cmd->add_option("--repetition-penalty", o->sampling.repetition_penalty, "HF-style repetition penalty")->capture_default_str();
  cmd->add_option("--presence-penalty", o->sampling.presence_penalty, "OpenAI presence penalty")->capture_default_str();
  cmd->add_option("--frequency-penalty", o->sampling.frequency_penalty, "OpenAI frequency penalty")->capture_default_str();
  cmd->add_option("--seed", o->seed, "random seed (-1 = random)")->capture_default_str();
  cmd->add_flag("--ignore-eos", o->sampling.ignore_eos, "keep generating past end-of-sequence tokens");
  cmd->add_flag("--output-ids", o->output_ids, "print generated token ids instead of text");
  return [o, prompt] {
    o->prompt_given = prompt->count() > 0;
    return run_generate(*o);
  };
}

}  // namespace strata::cli
