// Encode follows HF: split the raw text on non-normalized added tokens (leftmost-longest),
// normalize each remaining piece, split again on normalized added tokens, pre-tokenize,
// run the BPE model per pre-token, then apply the post-processor's single template.
#include "common/tokenizer/hf_tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "common/tokenizer/added_tokens.h"
#include "common/tokenizer/hf_bpe_model.h"
#include "common/tokenizer/hf_decoder.h"
#include "common/tokenizer/hf_normalizer.h"
#include "common/tokenizer/hf_pre_tokenizer.h"
#include "common/utf8.h"

namespace strata {
namespace {

class HfTokenizer final : public Tokenizer {
 public:
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const override;
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const override;
  int32_t vocab_size() const override { return static_cast<int32_t>(pieces_.size()); }
  std::optional<int32_t> bos_id() const override { return bos_id_; }
  std::vector<int32_t> stop_ids() const override { return stop_ids_; }
  std::string id_to_piece(int32_t id) const override {
    return id >= 0 && id < vocab_size() ? pieces_[id] : std::string();
  }
  std::optional<int32_t> piece_to_id(std::string_view piece) const override {
    auto it = ids_.find(std::string(piece));
    if (it == ids_.end()) return std::nullopt;
    return it->second;
  }
  std::string_view kind() const override { return "hf-bpe"; }

  std::optional<hf::Normalizer> normalizer_;
  std::optional<hf::PreTokenizer> pre_tokenizer_;
  std::optional<hf::Decoder> decoder_;
  std::optional<hf::BpeModel> model_;
  AddedTokenMatcher added_;
  std::unordered_set<int32_t> special_ids_;
  std::vector<int32_t> prefix_ids_, suffix_ids_;  // post-processor template around $A
  std::vector<std::string> pieces_;
  std::unordered_map<std::string, int32_t> ids_;
  std::optional<int32_t> bos_id_;
  std::vector<int32_t> stop_ids_;
};

std::vector<int32_t> HfTokenizer::encode(std::string_view text, bool add_special_tokens) const {
  std::vector<Segment> segments{{utf8::to_valid_lossy(text), -1, true}};
  added_.split(segments, /*normalized=*/false);
  if (normalizer_) {
    for (Segment& segment : segments) {
      if (segment.added_id < 0) segment.text = (*normalizer_)(segment.text);
    }
  }
  added_.split(segments, /*normalized=*/true);
  std::vector<int32_t> ids;
  if (add_special_tokens) ids = prefix_ids_;
  for (const Segment& segment : segments) {
    if (segment.added_id >= 0) {
      ids.push_back(segment.added_id);
      continue;
    }
    std::vector<hf::PreToken> pieces{{segment.text, segment.at_start}};
    if (pre_tokenizer_) (*pre_tokenizer_)(pieces);
    for (const auto& piece : pieces) model_->tokenize(piece.text, ids);
  }
  if (add_special_tokens) ids.insert(ids.end(), suffix_ids_.begin(), suffix_ids_.end());
  return ids;
}

std::string HfTokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size() || pieces_[id].empty()) continue;
    if (skip_special_tokens && special_ids_.count(id)) continue;
    tokens.push_back(pieces_[id]);
  }
  if (!decoder_) {
    std::string joined;
    for (size_t i = 0; i < tokens.size(); ++i) joined += (i ? " " : "") + tokens[i];
    return joined;
  }
  (*decoder_)(tokens);
  std::string out;
  for (const auto& token : tokens) out += token;
  return out;
}

Status parse_post_processor(const hf::JsonContext& ctx, const std::string& field,
                            const nlohmann::json& node, HfTokenizer& tok) {
  const std::string type = node.value("type", "");
  auto id_of = [&](const std::string& piece) -> StatusOr<int32_t> {
    auto id = tok.piece_to_id(piece);
    if (!id) return invalid_argument("{}: {} names \"{}\", which is not in the vocabulary",
                                     ctx.file, field, piece);
    return *id;
  };
  if (type == "ByteLevel") return ok_status();
  if (type == "Sequence") {
    const auto& list = node["processors"];
    for (size_t i = 0; i < list.size(); ++i) {
      STRATA_RETURN_IF_ERROR(parse_post_processor(
          ctx, fmt::format("{}.processors[{}]", field, i), list[i], tok));
    }
    return ok_status();
  }
  if (type == "TemplateProcessing") {
    bool after_sequence = false;
    for (const auto& item : node["single"]) {
      if (item.contains("Sequence")) {
        after_sequence = true;
        continue;
      }
      const std::string name = item["SpecialToken"]["id"].get<std::string>();
      const auto& special = node["special_tokens"];
      if (!special.contains(name)) {
        return invalid_argument("{}: {}.special_tokens has no entry \"{}\"", ctx.file, field, name);
      }
      auto& target = after_sequence ? tok.suffix_ids_ : tok.prefix_ids_;
      for (const auto& id : special[name]["ids"]) {
        STRATA_ASSIGN_OR_RETURN(const int32_t checked,
                                hf::token_id(ctx, fmt::format("{}.special_tokens[\"{}\"].ids", field, name), id));
        target.push_back(checked);
      }
    }
    return ok_status();
  }
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    STRATA_ASSIGN_OR_RETURN(int32_t cls, id_of(node["cls"][0].get<std::string>()));
    STRATA_ASSIGN_OR_RETURN(int32_t sep, id_of(node["sep"][0].get<std::string>()));
    tok.prefix_ids_.push_back(cls);
    tok.suffix_ids_.push_back(sep);
    return ok_status();
  }
  return hf::unsupported_type(ctx, field, node);
}

std::optional<std::string> token_content(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object() && value.contains("content")) return value["content"].get<std::string>();
  return std::nullopt;
}

StatusOr<std::unique_ptr<Tokenizer>> parse_hf(const std::string& path, const nlohmann::json& j,
                                              const nlohmann::json& config) {
  hf::JsonContext ctx{path};
  auto tok = std::make_unique<HfTokenizer>();
  if (!j.contains("model") || !j["model"].is_object()) {
    return invalid_argument("{}: has no \"model\" object; is this a tokenizer.json?", path);
  }
  const auto& model = j["model"];
  const std::string model_type = model.value("type", "BPE");
  if (model_type != "BPE") return hf::unsupported_type(ctx, "model", model);
  STRATA_ASSIGN_OR_RETURN(hf::BpeModel bpe, hf::BpeModel::parse(ctx, model));
  for (const auto& [piece, id] : bpe.vocab()) {
    if (static_cast<size_t>(id) >= tok->pieces_.size()) tok->pieces_.resize(id + 1);
    tok->pieces_[id] = piece;
    tok->ids_[piece] = id;
  }
  tok->model_ = std::move(bpe);
  std::vector<AddedToken> added;
  if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
    for (const auto& t : j["added_tokens"]) {
      if (!t.is_object() || !t.contains("id")) continue;
      STRATA_ASSIGN_OR_RETURN(const int32_t id, hf::token_id(ctx, "added_tokens[].id", t["id"]));
      AddedToken token{id, t.value("content", ""), t.value("special", false),
                       t.value("normalized", false), t.value("lstrip", false),
                       t.value("rstrip", false), t.value("single_word", false)};
      if (static_cast<size_t>(token.id) >= tok->pieces_.size()) tok->pieces_.resize(token.id + 1);
      tok->pieces_[token.id] = token.content;
      tok->ids_[token.content] = token.id;
      if (token.special) tok->special_ids_.insert(token.id);
      added.push_back(std::move(token));
    }
  }
  tok->added_ = AddedTokenMatcher(std::move(added));
  auto present = [](const nlohmann::json& node, const char* key) {
    return node.contains(key) && !node[key].is_null();
  };
  if (present(j, "normalizer")) {
    STRATA_ASSIGN_OR_RETURN(tok->normalizer_, hf::parse_normalizer(ctx, "normalizer", j["normalizer"]));
  }
  if (present(j, "pre_tokenizer")) {
    STRATA_ASSIGN_OR_RETURN(tok->pre_tokenizer_,
                            hf::parse_pre_tokenizer(ctx, "pre_tokenizer", j["pre_tokenizer"]));
  }
  if (present(j, "decoder")) {
    STRATA_ASSIGN_OR_RETURN(tok->decoder_, hf::parse_decoder(ctx, "decoder", j["decoder"]));
  }
  if (present(j, "post_processor")) {
    STRATA_RETURN_IF_ERROR(parse_post_processor(ctx, "post_processor", j["post_processor"], *tok));
  }

  // BOS: tokenizer_config.json's bos_token, else the post-processor's first id, else a
  // well-known name. Stop ids: the configured eos_token plus well-known EOS-like tokens.
  std::optional<std::string> bos_name, eos_name;
  if (config.is_object()) {
    if (config.contains("bos_token")) bos_name = token_content(config["bos_token"]);
    if (config.contains("eos_token")) eos_name = token_content(config["eos_token"]);
  }
  if (bos_name) tok->bos_id_ = tok->piece_to_id(*bos_name);
  if (!tok->bos_id_ && !tok->prefix_ids_.empty()) tok->bos_id_ = tok->prefix_ids_.front();
  for (const char* name : {"<s>", "<|begin_of_text|>", "<|startoftext|>"}) {
    if (!tok->bos_id_) tok->bos_id_ = tok->piece_to_id(name);
  }
  if (config.is_object() && config.value("add_bos_token", false) && tok->bos_id_ &&
      tok->prefix_ids_.empty()) {
    tok->prefix_ids_.push_back(*tok->bos_id_);
  }
  std::vector<std::string> stop_names = {"</s>", "<|end_of_text|>", "<|eot_id|>", "<|im_end|>",
                                         "<|endoftext|>"};
  if (eos_name) stop_names.insert(stop_names.begin(), *eos_name);
  for (const auto& name : stop_names) {
    auto id = tok->piece_to_id(name);
    if (id && std::find(tok->stop_ids_.begin(), tok->stop_ids_.end(), *id) == tok->stop_ids_.end()) {
      tok->stop_ids_.push_back(*id);
    }
  }
  return std::unique_ptr<Tokenizer>(std::move(tok));
}

StatusOr<nlohmann::json> read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) return not_found("{}: cannot open", path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  try {
    return nlohmann::json::parse(buffer.str());
  } catch (const nlohmann::json::exception& e) {
    return invalid_argument("{}: malformed JSON: {}", path, e.what());
  }
}

}  // namespace

StatusOr<std::unique_ptr<Tokenizer>> load_hf_tokenizer(const std::string& path) {
  STRATA_ASSIGN_OR_RETURN(nlohmann::json j, read_json(path));
  nlohmann::json config;
  const auto config_path = std::filesystem::path(path).parent_path() / "tokenizer_config.json";
  if (std::filesystem::exists(config_path)) {
    STRATA_ASSIGN_OR_RETURN(config, read_json(config_path.string()));
  }
  try {
    return parse_hf(path, j, config);
  } catch (const nlohmann::json::exception& e) {
    return invalid_argument("{}: unexpected JSON structure: {}", path, e.what());
  }
}

}  // namespace strata
