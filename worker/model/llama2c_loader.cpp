// llama2.c legacy checkpoints ("version 0", what run.c reads): a 7 × int32 header, then
// fp32 arrays back to back. The format carries no names, so messages use the array's name
// from run.c and its byte offset.
#include <filesystem>
#include <limits>

#include "common/tokenizer/tokenizer_discovery.h"
#include "worker/model/model_loader.h"
#include "worker/model/safetensors.h"

namespace strata {
namespace {

struct Llama2cHeader {
  int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
};

class Llama2cSource final : public WeightSource {
 public:
  Llama2cSource(std::shared_ptr<MappedFile> file, const ModelConfig& config, bool shared_classifier)
      : file_(std::move(file)), config_(config), shared_classifier_(shared_classifier) {}

  // Element count of each array in file order; the classifier is last and optional.
  // Saturates at what no file can hold: each array's count fits in int64 (the header's
  // values are at most 2^20), but their sum and the byte size need not.
  int64_t expected_floats() const {
    constexpr int64_t kMaxFloats = (std::numeric_limits<int64_t>::max() - 28) / 4;
    int64_t total = 0;
    for (const Array& a : arrays()) total = a.count > kMaxFloats - total ? kMaxFloats : total + a.count;
    return total;
  }

  StatusOr<SourceTensor> get(WeightRole role, int layer) override {
    const int64_t h = config_.hidden_size, L = config_.num_layers, q = config_.q_size();
    const int64_t kv = config_.kv_size(), ffn = config_.intermediate_size;
    const char* name = nullptr;
    std::vector<int64_t> shape;
    int64_t per_layer = 0;
    switch (role) {
      case WeightRole::kEmbedding: name = "token_embedding_table"; shape = {config_.vocab_size, h}; break;
      case WeightRole::kAttnNorm: name = "rms_att_weight"; shape = {h}; per_layer = h; break;
      case WeightRole::kWq: name = "wq"; shape = {q, h}; per_layer = q * h; break;
      case WeightRole::kWk: name = "wk"; shape = {kv, h}; per_layer = kv * h; break;
      case WeightRole::kWv: name = "wv"; shape = {kv, h}; per_layer = kv * h; break;
      case WeightRole::kWo: name = "wo"; shape = {h, q}; per_layer = h * q; break;
      case WeightRole::kFfnNorm: name = "rms_ffn_weight"; shape = {h}; per_layer = h; break;
      case WeightRole::kWGate: name = "w1"; shape = {ffn, h}; per_layer = ffn * h; break;
      case WeightRole::kWDown: name = "w2"; shape = {h, ffn}; per_layer = h * ffn; break;
      case WeightRole::kWUp: name = "w3"; shape = {ffn, h}; per_layer = ffn * h; break;
      case WeightRole::kFinalNorm: name = "rms_final_weight"; shape = {h}; break;
      case WeightRole::kLmHead:
        name = shared_classifier_ ? "token_embedding_table" : "wcls";
        shape = {config_.vocab_size, h};
        break;
      default:
        return invalid_argument("{}: llama2.c checkpoints have no attention biases",
                                file_->path());
    }
    int64_t offset = 28 / 4;  // in floats, after the header
    for (const Array& a : arrays()) {
      if (a.name == std::string_view(name)) break;
      offset += a.count;
    }
    offset += per_layer * layer;
    (void)L;
    SourceTensor t;
    t.name = fmt::format("{}{}", name, per_layer ? fmt::format("[layer {}]", layer) : "");
    t.data = reinterpret_cast<const float*>(file_->data()) + offset;
    t.dtype = DType::kF32;
    t.shape = shape;
    return t;
  }
  bool rotate_half_layout() const override { return false; }
  std::string description() const override { return file_->path(); }

 private:
  struct Array {
    std::string_view name;
    int64_t count;
  };
  std::vector<Array> arrays() const {
    const int64_t h = config_.hidden_size, L = config_.num_layers, q = config_.q_size();
    const int64_t kv = config_.kv_size(), ffn = config_.intermediate_size;
    const int64_t half_head = config_.head_dim / 2;
    std::vector<Array> a = {
        {"token_embedding_table", config_.vocab_size * h},
        {"rms_att_weight", L * h}, {"wq", L * q * h}, {"wk", L * kv * h}, {"wv", L * kv * h},
        {"wo", L * h * q}, {"rms_ffn_weight", L * h}, {"w1", L * ffn * h}, {"w2", L * h * ffn},
        {"w3", L * ffn * h}, {"rms_final_weight", h},
        {"freq_cis_real", config_.max_position_embeddings * half_head},
        {"freq_cis_imag", config_.max_position_embeddings * half_head},
    };
    if (!shared_classifier_) a.push_back({"wcls", config_.vocab_size * h});
    return a;
  }

  std::shared_ptr<MappedFile> file_;
  const ModelConfig& config_;
  bool shared_classifier_;
};

}  // namespace

StatusOr<std::unique_ptr<LoadedModel>> load_llama2c_model(const std::string& path,
                                                          const ModelLoadOptions& options) {
  STRATA_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> file, MappedFile::open(path));
  if (file->size() < sizeof(Llama2cHeader)) {
    return data_loss("{}: file is {} bytes, too short for the 28-byte llama2.c header", path,
                     file->size());
  }
  Llama2cHeader hdr;
  std::memcpy(&hdr, file->data(), sizeof hdr);
  auto model = std::make_unique<LoadedModel>();
  ModelConfig& c = model->config;
  c.name = std::filesystem::path(path).stem().string();
  c.hidden_size = hdr.dim;
  c.intermediate_size = hdr.hidden_dim;
  c.num_layers = hdr.n_layers;
  c.num_heads = hdr.n_heads;
  c.num_kv_heads = hdr.n_kv_heads;
  c.vocab_size = hdr.vocab_size < 0 ? -int64_t{hdr.vocab_size} : hdr.vocab_size;
  c.max_position_embeddings = hdr.seq_len;
  c.head_dim = hdr.n_heads > 0 ? hdr.dim / hdr.n_heads : 0;
  c.tie_word_embeddings = hdr.vocab_size > 0;
  c.bos_token_id = 1;
  c.eos_token_ids = {2};
  STRATA_RETURN_IF_ERROR(c.validate(path + " (llama2.c header)"));
  // Bounded before the tensor sizes are multiplied out (a product of these stays in int64).
  for (int32_t v : {hdr.dim, hdr.hidden_dim, hdr.n_layers, hdr.seq_len, hdr.vocab_size}) {
    if (v > (1 << 20) || v < -(1 << 20)) {
      return data_loss("{}: llama2.c header value {} is past 2^20; the file is not a llama2.c "
                       "checkpoint", path, v);
    }
  }
  if (c.head_dim * c.num_heads != c.hidden_size) {
    return invalid_argument("{} (llama2.c header): dim {} is not a multiple of n_heads {}", path,
                            c.hidden_size, c.num_heads);
  }
  Llama2cSource source(file, c, c.tie_word_embeddings);
  const int64_t expected = 28 + 4 * source.expected_floats();
  if (static_cast<int64_t>(file->size()) != expected) {
    return data_loss(
        "{}: file is {} bytes but its header (dim {}, hidden_dim {}, {} layers, {} heads, {} KV "
        "heads, vocab {}, seq_len {}) implies {} bytes; the file is truncated or not a llama2.c "
        "version-0 checkpoint",
        path, file->size(), hdr.dim, hdr.hidden_dim, hdr.n_layers, hdr.n_heads, hdr.n_kv_heads,
        hdr.vocab_size, hdr.seq_len, expected);
  }
  STRATA_ASSIGN_OR_RETURN(const ShardPlan shard, ShardPlan::make(c, options.topology));
  STRATA_ASSIGN_OR_RETURN(model->weights, build_model_weights(c, source, options.build_options(options.dtype.value_or(DType::kF32)), shard));
  model->format = "llama2c";
  model->default_tokenizer = default_tokenizer_for_model(path);
  model->stop_token_ids = {1};  // run.c ends generation when the model emits BOS
  return model;
}

}  // namespace strata
