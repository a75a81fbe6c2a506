// `strata generate`: prompt in, text (or ids) out on stdout; timings and the model summary
// on stderr, so stdout can be compared byte for byte with other implementations.
#include <cstdio>
#include <iostream>
#include <memory>
#include <sstream>

#include <fmt/format.h>

#include "common/tokenizer/tokenizer.h"
#include "kernels/device.h"
#include "kernels/ops.h"
#include "tools/strata/commands.h"
#include "worker/generator.h"
#include "worker/model_loader.h"

namespace strata::cli {
namespace {

struct GenerateOptions {
  std::string model = "builtin:tiny";
  std::string tokenizer;
  std::string prompt;
  std::string prompt_ids;
  std::string dtype;
  int max_tokens = 256;
  float temperature = 1.0f;
  float top_p = 1.0f;
  int top_k = 0;
  float min_p = 0.0f;
  float repetition_penalty = 1.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  int64_t seed = -1;
  bool ignore_eos = false;
  bool output_ids = false;
  int threads = 0;
  int block_size = 16;
  int prefill_chunk = 512;
  std::string device = "cpu";
  double gpu_memory_fraction = 0.9;
  bool cuda_graphs = true;
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

int fail(const Status& status) {
  std::cerr << "strata generate: " << status.message() << "\n";
  return status.code() == StatusCode::kInternal ? 70 : 2;
}

int run_generate(const GenerateOptions& o) {
  kernels::set_cpu_threads(o.threads);
  ModelLoadOptions load_options;
  if (!o.dtype.empty()) {
    load_options.dtype = parse_dtype(o.dtype);
    if (!load_options.dtype) return fail(invalid_argument("--dtype must be fp32, bf16 or fp16. Given: {}", o.dtype));
  }
  auto device = parse_device(o.device);
  if (!device.ok()) return fail(device.status());
  load_options.device = *device;
  load_options.gpu_memory_fraction = o.gpu_memory_fraction;
  auto model = load_model(o.model, load_options);
  if (!model.ok()) return fail(model.status());
  const LoadedModel& m = **model;
  std::cerr << "model: " << m.config.summary() << ", weights " << dtype_name(m.weights.dtype)
            << fmt::format(" ({:.1f} MB)", m.weights.bytes() / 1e6);
  if (device->is_cpu()) {
    std::cerr << ", CPU kernels " << kernels::cpu_isa_name() << " × " << kernels::cpu_threads()
              << " threads\n";
  } else {
    std::cerr << " on " << device->to_string() << (o.cuda_graphs ? " with" : " without")
              << " CUDA graphs\n";
  }

  const std::string tokenizer_path = o.tokenizer.empty() ? m.default_tokenizer : o.tokenizer;
  std::unique_ptr<Tokenizer> tokenizer;
  if (!tokenizer_path.empty()) {
    auto loaded = load_tokenizer(tokenizer_path);
    if (!loaded.ok()) return fail(loaded.status());
    tokenizer = std::move(loaded).value();
  }
  std::vector<int32_t> prompt;
  if (!o.prompt_ids.empty()) {
    auto ids = parse_ids(o.prompt_ids);
    if (!ids || ids->empty()) return fail(invalid_argument("--prompt-ids must be space-separated integers. Given: \"{}\"", o.prompt_ids));
    prompt = *ids;
  } else if (!tokenizer) {
    return fail(invalid_argument("no tokenizer found next to `{}`; pass --tokenizer PATH, or give "
                                 "--prompt-ids", o.model));
  } else {
    prompt = tokenizer->encode(o.prompt, /*add_special_tokens=*/true);
    if (prompt.empty()) return fail(invalid_argument("the prompt encodes to no tokens and the tokenizer adds no BOS; give a non-empty --prompt"));
  }
  if (!tokenizer && !o.output_ids) {
    return fail(invalid_argument("printing text needs a tokenizer; pass --tokenizer PATH or --output-ids"));
  }

  SamplingParams params{.temperature = o.temperature, .top_k = o.top_k, .top_p = o.top_p,
                        .min_p = o.min_p, .repetition_penalty = o.repetition_penalty,
                        .presence_penalty = o.presence_penalty,
                        .frequency_penalty = o.frequency_penalty, .max_tokens = o.max_tokens,
                        .ignore_eos = o.ignore_eos};
  if (o.seed >= 0) params.seed = static_cast<uint64_t>(o.seed);

  SequenceGenerator generator(m, {.block_size = o.block_size, .prefill_chunk_tokens = o.prefill_chunk,
                                  .gpu_memory_fraction = o.gpu_memory_fraction,
                                  .cuda_graphs = o.cuda_graphs});
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
  if (!result.ok()) return fail(result.status());
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

}  // namespace

CommandRunner add_generate_command(CLI::App& app) {
  auto o = std::make_shared<GenerateOptions>();
  CLI::App* cmd = app.add_subcommand("generate", "Generate text for one prompt, offline");
  cmd->add_option("--model", o->model, "llama2.c .bin, HF directory, or builtin:NAME")->capture_default_str();
  cmd->add_option("--tokenizer", o->tokenizer, "tokenizer.bin / tokenizer.json (default: found next to the model)");
  cmd->add_option("--prompt", o->prompt, "prompt text");
  cmd->add_option("--prompt-ids", o->prompt_ids, "prompt as space-separated token ids (instead of --prompt)");
  cmd->add_option("--dtype", o->dtype, "weight dtype: fp32, bf16, fp16 (default: the checkpoint's)");
  cmd->add_option("--max-tokens", o->max_tokens, "tokens to generate at most")->capture_default_str()->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--temperature", o->temperature, "0 = greedy")->capture_default_str();
  cmd->add_option("--top-p", o->top_p, "nucleus sampling mass (0, 1]")->capture_default_str();
  cmd->add_option("--top-k", o->top_k, "keep the k most likely tokens (0 = off)")->capture_default_str();
  cmd->add_option("--min-p", o->min_p, "drop tokens below min_p × p(top token)")->capture_default_str();
  cmd->add_option("--repetition-penalty", o->repetition_penalty, "HF-style repetition penalty")->capture_default_str();
  cmd->add_option("--presence-penalty", o->presence_penalty, "OpenAI presence penalty")->capture_default_str();
  cmd->add_option("--frequency-penalty", o->frequency_penalty, "OpenAI frequency penalty")->capture_default_str();
  cmd->add_option("--seed", o->seed, "random seed (-1 = random)")->capture_default_str();
  cmd->add_flag("--ignore-eos", o->ignore_eos, "keep generating past end-of-sequence tokens");
  cmd->add_flag("--output-ids", o->output_ids, "print generated token ids instead of text");
  cmd->add_option("--threads", o->threads, "CPU threads (0 = all cores)")->capture_default_str();
  cmd->add_option("--block-size", o->block_size, "KV cache block size in tokens")->capture_default_str()->check(CLI::Range(1, 1024));
  cmd->add_option("--prefill-chunk", o->prefill_chunk, "prompt tokens per forward pass")->capture_default_str()->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--device", o->device, "where the model runs: cpu, cuda or cuda:N (needs a build with -DSTRATA_CUDA=ON)")->capture_default_str();
  cmd->add_option("--gpu-memory-fraction", o->gpu_memory_fraction, "share of the GPU's memory strata may use")->capture_default_str()->check(CLI::Range(0.01, 1.0));
  cmd->add_flag("--cuda-graphs,!--no-cuda-graphs", o->cuda_graphs, "GPU: replay decode steps from CUDA graphs")->capture_default_str();
  return [o] { return run_generate(*o); };
}

}  // namespace strata::cli
