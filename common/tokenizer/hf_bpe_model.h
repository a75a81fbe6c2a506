// The BPE model of tokenizer.json: vocab + ranked merges, byte_fallback, unk/fuse_unk,
// ignore_merges, continuing_subword_prefix / end_of_word_suffix. Tokenizes one pre-token.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/tokenizer/hf_json.h"

namespace strata::hf {

class BpeModel {
 public:
  static StatusOr<BpeModel> parse(const JsonContext& ctx, const nlohmann::json& model);

  void tokenize(std::string_view piece, std::vector<int32_t>& ids) const;

  const std::unordered_map<std::string, int32_t>& vocab() const { return vocab_; }

 private:
  struct PairHash {
    size_t operator()(uint64_t key) const { return std::hash<uint64_t>()(key); }
  };
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  static uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }

  std::unordered_map<std::string, int32_t> vocab_;
  std::unordered_map<uint64_t, Merge, PairHash> merges_;
  std::optional<int32_t> unk_id_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  std::string continuing_subword_prefix_;
  std::string end_of_word_suffix_;
  std::vector<int32_t> byte_ids_;  // id of "<0xXX>" per byte, -1 where absent
};

}  // namespace strata::hf
