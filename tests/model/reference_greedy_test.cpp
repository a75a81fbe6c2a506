// strata against the reference C implementation of the llama2.c format (run.c): the greedy
// token ids and text in ../shared/models/reference-greedy.json, through the library and
// through the `strata generate` binary.
#include <array>
#include <cstdio>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/tokenizer/tokenizer.h"
#include "tests/test_support.h"
#include "worker/engine/generator.h"
#include "worker/model/model_loader.h"

namespace strata {
namespace {

nlohmann::json load_cases() {
  std::ifstream in(testing::shared_dir() / "models" / "reference-greedy.json");
  return nlohmann::json::parse(in)["cases"];
}

std::string first_word(const std::string& s) { return s.substr(0, s.find(' ')); }

// What the test needs of one case, with paths resolved against the shared folder.
struct GreedyCase {
  std::string id, model, tokenizer, prompt, stdout_text;
  std::vector<int32_t> prompt_ids, output_ids;
  size_t stable_prefix_len;
};

std::vector<GreedyCase> cases() {
  std::vector<GreedyCase> out;
  for (const auto& c : load_cases()) {
    out.push_back({c["id"], (testing::shared_dir() / c["model"].get<std::string>()).string(),
                   (testing::shared_dir() / first_word(c["tokenizer"])).string(), c["prompt"],
                   c["stdout"], c["prompt_ids"], c["output_ids"], c["stable_prefix_len"]});
  }
  return out;
}

TEST(ReferenceGreedy, LibraryReproducesRunCTokensAndText) {
  STRATA_REQUIRE_SHARED_FILE(json_path, "models/reference-greedy.json");
  const auto all = cases();
  ASSERT_GE(all.size(), 3u);
  for (const GreedyCase& c : all) {
    SCOPED_TRACE(c.id);
    auto model = load_model(c.model);
    ASSERT_TRUE(model.ok()) << model.status().to_string();
    auto tokenizer = load_tokenizer(c.tokenizer);
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().to_string();
    const auto prompt_ids = (*tokenizer)->encode(c.prompt, true);
    EXPECT_EQ(prompt_ids, c.prompt_ids);

    SequenceGenerator generator(**model);
    SamplingParams greedy{.temperature = 0.0f, .max_tokens = static_cast<int32_t>(c.output_ids.size())};
    auto result = generator.generate(c.prompt_ids, greedy);
    ASSERT_TRUE(result.ok()) << result.status().to_string();
    ASSERT_GE(result->output_ids.size(), c.stable_prefix_len);
    EXPECT_EQ(std::vector<int32_t>(result->output_ids.begin(), result->output_ids.begin() + c.stable_prefix_len),
              std::vector<int32_t>(c.output_ids.begin(), c.output_ids.begin() + c.stable_prefix_len));
    if (c.stable_prefix_len == c.output_ids.size()) {
      // run.c prints the prompt's pieces then the outputs, stripping the space after BOS.
      std::vector<int32_t> all = c.prompt_ids;
      all.insert(all.end(), result->output_ids.begin(), result->output_ids.end());
      EXPECT_EQ((*tokenizer)->decode(all, true), c.stdout_text);
    }
  }
}

// The same cases through the real command line: ids with --output-ids, text without.
TEST(ReferenceGreedy, GenerateCommandPrintsRunCOutput) {
  STRATA_REQUIRE_SHARED_FILE(json_path, "models/reference-greedy.json");
  const std::string strata_bin = std::string(STRATA_BINARY_DIR) + "/bin/strata";
  ASSERT_TRUE(std::filesystem::exists(strata_bin)) << strata_bin;
  auto run = [&](const std::string& args) {
    const std::string cmd = strata_bin + " generate " + args + " 2>/dev/null";
    std::string out;
    FILE* pipe = popen(cmd.c_str(), "r");
    std::array<char, 4096> buf;
    size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
    EXPECT_EQ(pclose(pipe), 0) << cmd;
    return out;
  };
  for (const GreedyCase& c : cases()) {
    SCOPED_TRACE(c.id);
    const std::string common = "--model '" + c.model + "' --tokenizer '" + c.tokenizer +
                               "' --prompt '" + c.prompt + "' --temperature 0 --max-tokens " +
                               std::to_string(c.output_ids.size());
    std::string expected_ids;
    for (size_t i = 0; i < c.stable_prefix_len; ++i) expected_ids += (i ? " " : "") + std::to_string(c.output_ids[i]);
    const std::string ids = run(common + " --output-ids");
    EXPECT_EQ(ids.substr(0, expected_ids.size()), expected_ids);
    if (c.stable_prefix_len == c.output_ids.size()) {
      EXPECT_EQ(c.prompt + run(common), c.stdout_text);
    }
  }
}

}  // namespace
}  // namespace strata
