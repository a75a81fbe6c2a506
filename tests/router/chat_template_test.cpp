// Chat templates. Expected strings are derived by hand from the public Jinja templates of
// each family (what HF's apply_chat_template renders with tokenize=False):
//   llama-2: bos + '[INST] ' + content.strip() + ' [/INST]'; ' ' + content.strip() + ' ' + eos;
//            the first user content is '<<SYS>>\n' + system + '\n<</SYS>>\n\n' + user.
//   llama-3: bos once, then '<|start_header_id|>' + role + '<|end_header_id|>\n\n' +
//            content|trim + '<|eot_id|>'; generation prompt = assistant header.
//   chatml:  '<|im_start|>' + role + '\n' + content + '<|im_end|>\n'.
//   mistral: bos + '[INST] ' + content + ' [/INST]' / content + eos.
#include "router/chat_template.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <vector>

namespace strata::router {
namespace {

std::vector<ChatMessage> conversation() {
  return {{"system", "You are helpful."},
          {"user", "Hi  "},
          {"assistant", " Hello!\n"},
          {"user", "How are you?"}};
}

std::string render(ChatTemplateKind kind, const std::vector<ChatMessage>& msgs,
                   bool add_generation_prompt = true) {
  auto r = render_chat(default_chat_template(kind), msgs, add_generation_prompt);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? r->text : "";
}

TEST(ChatTemplateTest, Llama2MatchesHfTemplate) {
  EXPECT_EQ(render(ChatTemplateKind::kLlama2, conversation()),
            "<s>[INST] <<SYS>>\nYou are helpful.\n<</SYS>>\n\nHi [/INST] Hello! </s>"
            "<s>[INST] How are you? [/INST]");
  EXPECT_EQ(render(ChatTemplateKind::kLlama2, {{"user", " \tplain\n"}}), "<s>[INST] plain [/INST]");
  auto r = render_chat(default_chat_template(ChatTemplateKind::kLlama2),
                       std::vector<ChatMessage>{{"user", "x"}});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->contains_bos);
  EXPECT_FALSE(r->add_special_tokens);
}

TEST(ChatTemplateTest, Llama3MatchesHfTemplate) {
  EXPECT_EQ(render(ChatTemplateKind::kLlama3, conversation()),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are helpful."
            "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHow are you?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(render(ChatTemplateKind::kLlama3, {{"user", "x"}}, false),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nx<|eot_id|>");
  // `trim` is Python's str.strip(): Unicode spaces (U+3000, U+00A0) go too.
  EXPECT_EQ(render(ChatTemplateKind::kLlama3, {{"user", "\xe3\x80\x80x\xc2\xa0"}}, false),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nx<|eot_id|>");
}

TEST(ChatTemplateTest, ChatmlMatchesHfTemplate) {
  auto r = render_chat(default_chat_template(ChatTemplateKind::kChatml), conversation());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->text,
            "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi  <|im_end|>\n"
            "<|im_start|>assistant\n Hello!\n<|im_end|>\n<|im_start|>user\nHow are you?"
            "<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_FALSE(r->contains_bos);
  EXPECT_FALSE(r->add_special_tokens);
}

TEST(ChatTemplateTest, MistralMatchesHfTemplate) {
  EXPECT_EQ(render(ChatTemplateKind::kMistral,
                   {{"user", "Hi"}, {"assistant", "Hello"}, {"user", "More"}}),
            "<s>[INST] Hi [/INST]Hello</s>[INST] More [/INST]");
  // strata extension: a leading system message is prepended to the first user turn.
  EXPECT_EQ(render(ChatTemplateKind::kMistral, {{"system", "Sys"}, {"user", "Hi"}}),
            "<s>[INST] Sys\n\nHi [/INST]");
}

TEST(ChatTemplateTest, PlainFallback) {
  auto r = render_chat(
      default_chat_template(ChatTemplateKind::kPlain),
      std::vector<ChatMessage>{
          {"developer", "Be nice."}, {"user", "Hi"}, {"assistant", "Yo"}, {"user", "Bye"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->text, "System: Be nice.\nUser: Hi\nAssistant: Yo\nUser: Bye\nAssistant:");
  EXPECT_FALSE(r->contains_bos);
  EXPECT_TRUE(r->add_special_tokens);
}

TEST(ChatTemplateTest, DeveloperRendersAsSystem) {
  EXPECT_EQ(render(ChatTemplateKind::kChatml, {{"developer", "d"}, {"user", "u"}}, false),
            "<|im_start|>system\nd<|im_end|>\n<|im_start|>user\nu<|im_end|>\n");
}

TEST(ChatTemplateTest, RolesThatDoNotAlternateAreRefused) {
  for (ChatTemplateKind kind : {ChatTemplateKind::kLlama2, ChatTemplateKind::kMistral}) {
    const auto t = default_chat_template(kind);
    EXPECT_FALSE(render_chat(t, std::vector<ChatMessage>{{"user", "a"}, {"user", "b"}}).ok());
    EXPECT_FALSE(render_chat(t, std::vector<ChatMessage>{{"assistant", "a"}}).ok());
    auto tool = render_chat(t, std::vector<ChatMessage>{{"user", "a"}, {"tool", "b"}});
    ASSERT_FALSE(tool.ok());
    EXPECT_NE(tool.status().message().find("messages[1].role"), std::string::npos);
  }
  // Formats without the rule accept any order.
  EXPECT_TRUE(render_chat(default_chat_template(ChatTemplateKind::kChatml),
                          std::vector<ChatMessage>{{"user", "a"}, {"user", "b"}})
                  .ok());
  // A system message alone has no turn to answer.
  EXPECT_FALSE(render_chat(default_chat_template(ChatTemplateKind::kChatml),
                           std::vector<ChatMessage>{{"system", "s"}})
                   .ok());
}

TEST(ChatTemplateTest, DetectsFamiliesFromTemplateMarkers) {
  const std::string llama2 =
      "{% if messages[0]['role'] == 'system' %}...{% set content = '<<SYS>>\\n' + "
      "system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}...{{ bos_token + "
      "'[INST] ' + content.strip() + ' [/INST]' }}";
  const std::string llama3 =
      "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
      "+ message['content'] | trim + '<|eot_id|>' %}";
  const std::string chatml =
      "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
      "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}";
  const std::string mistral =
      "{{ bos_token }}{% for message in messages %}{{ '[INST] ' + "
      "message['content'] + ' [/INST]' }}{% endfor %}";
  EXPECT_EQ(detect_chat_template_kind(llama2), ChatTemplateKind::kLlama2);
  EXPECT_EQ(detect_chat_template_kind(llama3), ChatTemplateKind::kLlama3);
  EXPECT_EQ(detect_chat_template_kind(chatml), ChatTemplateKind::kChatml);
  EXPECT_EQ(detect_chat_template_kind(mistral), ChatTemplateKind::kMistral);
  EXPECT_EQ(detect_chat_template_kind("{{ messages }}"), ChatTemplateKind::kPlain);
  const std::vector<std::string> special = {"<s>", "<|im_start|>", "<|im_end|>"};
  EXPECT_EQ(detect_chat_template_kind("", special), ChatTemplateKind::kChatml);
  const std::vector<std::string> llama3_special = {"<|begin_of_text|>", "<|start_header_id|>"};
  EXPECT_EQ(detect_chat_template_kind("", llama3_special), ChatTemplateKind::kLlama3);
  EXPECT_EQ(detect_chat_template_kind(""), ChatTemplateKind::kPlain);
}

TEST(ChatTemplateTest, NamesRoundTrip) {
  for (ChatTemplateKind kind :
       {ChatTemplateKind::kLlama2, ChatTemplateKind::kLlama3, ChatTemplateKind::kChatml,
        ChatTemplateKind::kMistral, ChatTemplateKind::kPlain}) {
    EXPECT_EQ(chat_template_kind_from_name(chat_template_name(kind)), kind);
  }
  EXPECT_FALSE(chat_template_kind_from_name("jinja").has_value());
}

class ChatTemplateDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("strata_chat_template_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
  }
  std::filesystem::path dir_;
};

TEST_F(ChatTemplateDirTest, ReadsTemplateAndSpecialTokensFromTokenizerConfig) {
  write("tokenizer_config.json",
        R"({"bos_token": {"content": "<BOS>", "lstrip": false}, "eos_token": "<EOS>",
            "chat_template": "{{ bos_token }}{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}"})");
  auto t = load_chat_template(dir_);
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(t->kind, ChatTemplateKind::kMistral);
  EXPECT_EQ(t->bos_token, "<BOS>");
  EXPECT_EQ(t->eos_token, "<EOS>");
  ASSERT_NE(t->jinja, nullptr);  // the model's own template is what renders
  auto r = render_chat(*t, std::vector<ChatMessage>{{.role = "user", .content = "a"}, {.role = "assistant", .content = "b"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->text, "<BOS>[INST] a [/INST][INST] b [/INST]");
  EXPECT_TRUE(r->contains_bos);
  EXPECT_FALSE(r->add_special_tokens);
}

TEST_F(ChatTemplateDirTest, TemplateListPicksDefaultAndOverrideWins) {
  write("tokenizer_config.json",
        R"({"chat_template": [{"name": "tool_use", "template": "[INST]"},
                              {"name": "default", "template": "<|im_start|>"}]})");
  auto t = load_chat_template(dir_ / "model.safetensors");  // a file: its directory is used
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->kind, ChatTemplateKind::kChatml);
  auto o = load_chat_template(dir_, "llama-3");
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->kind, ChatTemplateKind::kLlama3);
  EXPECT_EQ(o->bos_token, "<|begin_of_text|>");
  auto bad = load_chat_template(dir_, "jinja2");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("llama-2, llama-3, chatml, mistral, plain"),
            std::string::npos);
}

TEST_F(ChatTemplateDirTest, SpecialTokensAndMissingFiles) {
  auto none = load_chat_template(dir_);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->kind, ChatTemplateKind::kPlain);
  write("tokenizer.json", R"({"added_tokens": [{"id": 0, "content": "<|im_start|>"}]})");
  auto from_tokens = load_chat_template(dir_);
  ASSERT_TRUE(from_tokens.ok());
  EXPECT_EQ(from_tokens->kind, ChatTemplateKind::kChatml);
  write("tokenizer_config.json", "{ not json");
  EXPECT_FALSE(load_chat_template(dir_).ok());
}

}  // namespace
}  // namespace strata::router

namespace strata::router {
namespace {

TEST(JinjaChatTemplate, KwargsToolsAndParsedToolCallArgumentsReachTheTemplate) {
  auto t = chat_template_from_jinja(
      "{{ bos_token }}{% for m in messages %}{{ m.role }}:{{ m.content }}"
      "{% for c in m.tool_calls or [] %}{{ c.function.arguments.city }}{% endfor %};{% endfor %}"
      "{{ tools | length }}{{ flavour }}{% if add_generation_prompt %}>{% endif %}",
      "<s>", "</s>");
  ASSERT_TRUE(t.ok()) << t.status().message();
  ChatMessage call{.role = "assistant", .content = "", .content_given = false,
                   .tool_calls_json = R"([{"id": "1", "type": "function", "function": {"name": "w", "arguments": "{\"city\": \"Oslo\"}"}}])"};
  const std::vector<ChatMessage> msgs = {{.role = "user", .content = "hi"}, call};
  auto r = render_chat(*t, msgs,
                       ChatRenderOptions{.add_generation_prompt = false,
                                         .tools_json = R"([{"type": "function", "function": {"name": "w"}}])",
                                         .chat_template_kwargs_json = R"({"flavour": "mint"})"});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->text, "<s>user:hi;assistant:Oslo;1mint");
  EXPECT_TRUE(r->contains_bos);
  EXPECT_FALSE(r->add_special_tokens);
}

TEST(JinjaChatTemplate, TemplateErrorsAreInvalidArgumentWithTheTemplatesMessage) {
  auto t = chat_template_from_jinja("{{ raise_exception('Only user and assistant roles are supported!') }}", "", "");
  ASSERT_TRUE(t.ok());
  auto r = render_chat(*t, std::vector<ChatMessage>{{.role = "user", .content = "a"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "Only user and assistant roles are supported!");
  EXPECT_FALSE(chat_template_from_jinja("{% if %}", "", "").ok());
}

TEST(JinjaChatTemplate, BuiltInFormatsRefuseTools) {
  auto r = render_chat(default_chat_template(ChatTemplateKind::kChatml),
                       std::vector<ChatMessage>{{.role = "user", .content = "a"}},
                       ChatRenderOptions{.tools_json = R"([{"type": "function", "function": {"name": "w"}}])"});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("`tools`"), std::string::npos);
}

}  // namespace
}  // namespace strata::router
