// A GGUF model's chat template: the router takes tokenizer.chat_template and the vocabulary's
// BOS/EOS pieces from the file (written by the `gguf` package, see make_gguf_fixtures.py), or
// without a template detects a built-in kind from the control tokens. The zephyr case renders
// as the same source does when given to chat_template_from_jinja directly.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "router/chat_template.h"
#include "tests/test_support.h"

namespace strata::router {
namespace {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::string render_text(const ChatTemplate& t) {
  const std::vector<ChatMessage> messages{{.role = "system", .content = "Be brief."},
                                          {.role = "user", .content = "hi"}};
  auto r = render_chat(t, messages, /*add_generation_prompt=*/true);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? r->text : "";
}

TEST(GgufChatTemplate, UsesTheFilesTemplateAndVocabularyTokens) {
  STRATA_REQUIRE_TEST_DATA(model, "gguf/templates/zephyr/model.gguf");
  const std::string source = read_file(std::filesystem::path(STRATA_SOURCE_DIR) /
                                       "tests/router/chat_templates/HuggingFaceH4-zephyr-7b-beta.jinja");
  auto direct = chat_template_from_jinja(source, "<s>", "</s>");
  ASSERT_TRUE(direct.ok()) << direct.status().message();
  for (const auto& path : {model, model.parent_path()}) {  // the file, or its directory
    auto t = load_chat_template(path);
    ASSERT_TRUE(t.ok()) << t.status().message();
    ASSERT_NE(t->jinja, nullptr) << path;
    EXPECT_EQ(t->bos_token, "<s>");
    EXPECT_EQ(t->eos_token, "</s>");
    EXPECT_EQ(render_text(*t), render_text(*direct));
  }
}

TEST(GgufChatTemplate, TokenizerConfigBesideTheFileWinsAndOverrideNamesABuiltin) {
  STRATA_REQUIRE_TEST_DATA(model, "gguf/templates/zephyr/model.gguf");
  const auto dir = std::filesystem::temp_directory_path() /
                   ("strata_gguf_template_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(model, dir / "model.gguf",
                             std::filesystem::copy_options::overwrite_existing);
  std::ofstream(dir / "tokenizer_config.json") << R"({"chat_template": "<|im_start|>{{ messages[0].content }}"})";
  auto from_config = load_chat_template(dir);
  auto overridden = load_chat_template(model, "llama-2");
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(from_config.ok()) << from_config.status().message();
  EXPECT_EQ(from_config->kind, ChatTemplateKind::kChatml);
  ASSERT_TRUE(overridden.ok());
  EXPECT_EQ(overridden->kind, ChatTemplateKind::kLlama2);
  EXPECT_EQ(overridden->jinja, nullptr);
}

TEST(GgufChatTemplate, WithoutATemplateTheControlTokensPickTheKind) {
  STRATA_REQUIRE_TEST_DATA(model, "gguf/templates/llama3/model.gguf");
  auto t = load_chat_template(model);
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(t->jinja, nullptr);
  EXPECT_EQ(t->kind, ChatTemplateKind::kLlama3);
  EXPECT_EQ(t->bos_token, "<|begin_of_text|>");
}

TEST(GgufChatTemplate, ATemplateThatDoesNotParseNamesTheFileAndKey) {
  STRATA_REQUIRE_TEST_DATA(model, "gguf/templates/broken/model.gguf");
  auto t = load_chat_template(model);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find(model.string()), std::string::npos) << t.status().message();
  EXPECT_NE(t.status().message().find("tokenizer.chat_template"), std::string::npos);
  EXPECT_NE(t.status().message().find("--chat-template"), std::string::npos);
}

}  // namespace
}  // namespace strata::router
