// What strata checks before it loads or starts anything: the model path, the tokenizer
// that goes with it, llama2.c files given in each other's place, and the address to listen
// on. Each wrong input gets a message naming it and saying what to do instead.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "common/listen_address.h"
#include "common/llama2c_format.h"
#include "common/model_path.h"
#include "common/tokenizer/tokenizer.h"
#include "tests/model/random_llama.h"
#include "worker/model/model_loader.h"

namespace strata {
namespace {

namespace fs = std::filesystem;

bool has(const Status& st, const std::string& text) { return st.message().find(text) != std::string::npos; }

// A directory with a llama2.c checkpoint (model.bin) and a tokenizer (tok16.bin) side by side.
class Llama2cFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("strata_startup_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    testing::write_llama2c(testing::make_random_llama({16, 24, 1, 2, 2, 20, 8}, true, 1), model());
    std::ofstream out(tokenizer(), std::ios::binary);
    const int32_t max_len = 3;
    out.write(reinterpret_cast<const char*>(&max_len), 4);
    for (int i = 0; i < 20; ++i) {
      const float score = i == 0 ? 0.0f : -static_cast<float>(i);
      const std::string piece = i < 3 ? std::string("<") + char('a' + i) + ">" : std::string(1, char('a' + i));
      const int32_t len = static_cast<int32_t>(piece.size());
      out.write(reinterpret_cast<const char*>(&score), 4);
      out.write(reinterpret_cast<const char*>(&len), 4);
      out.write(piece.data(), len);
    }
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string model() const { return (dir_ / "model.bin").string(); }
  std::string tokenizer() const { return (dir_ / "tok16.bin").string(); }

  fs::path dir_;
};

TEST_F(Llama2cFiles, EachKindIsRecognizedAndNotTheOther) {
  EXPECT_TRUE(looks_like_llama2c_checkpoint(model()));
  EXPECT_FALSE(looks_like_llama2c_tokenizer(model()));
  EXPECT_TRUE(looks_like_llama2c_tokenizer(tokenizer()));
  EXPECT_FALSE(looks_like_llama2c_checkpoint(tokenizer()));
}

TEST_F(Llama2cFiles, TokenizerGivenAsModelSaysToPassItAsTokenizer) {
  for (const Status& st : {check_model_path(tokenizer()), load_model(tokenizer()).status()}) {
    EXPECT_TRUE(has(st, tokenizer())) << st.message();
    EXPECT_TRUE(has(st, "is not a llama2.c checkpoint")) << st.message();
    EXPECT_TRUE(has(st, "pass it as --tokenizer")) << st.message();
  }
}

TEST_F(Llama2cFiles, ModelGivenAsTokenizerSaysToPassItAsModel) {
  for (const Status& st : {resolve_tokenizer_path(model(), model()).status(), load_tokenizer(model()).status()}) {
    EXPECT_TRUE(has(st, model())) << st.message();
    EXPECT_TRUE(has(st, "is not a llama2.c tokenizer.bin")) << st.message();
    EXPECT_TRUE(has(st, "pass it as --model")) << st.message();
  }
}

TEST_F(Llama2cFiles, TokenizerIsFoundBesideTheModel) {
  const auto found = resolve_tokenizer_path(model(), "");
  ASSERT_TRUE(found.ok()) << found.status().message();
  EXPECT_EQ(*found, tokenizer());
  fs::remove(tokenizer());
  const Status st = resolve_tokenizer_path(model(), "").status();
  EXPECT_TRUE(has(st, "no tokenizer found next to model")) << st.message();
  EXPECT_TRUE(has(st, "--tokenizer")) << st.message();
}

TEST(ModelPath, MissingModelIsReportedBeforeItsTokenizer) {
  const Status st = resolve_tokenizer_path("/nonexistent.bin", "").status();
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_TRUE(has(st, "model `/nonexistent.bin` does not exist")) << st.message();
  EXPECT_FALSE(has(st, "tokenizer found")) << st.message();
  for (const char* kind : {"llama2.c .bin", ".gguf", "HF directory", "builtin:NAME", "strata models"}) {
    EXPECT_TRUE(has(st, kind)) << kind << ": " << st.message();
  }
  EXPECT_EQ(load_model("/nonexistent.bin").status().message(), st.message());
}

TEST(ModelPath, BuiltinsNeedNoFilesAndMissingTokenizerIsNamed) {
  EXPECT_TRUE(check_model_path("builtin:tiny").ok());
  EXPECT_EQ(resolve_tokenizer_path("builtin:tiny", "").value(), "builtin:bytes");
  const Status st = resolve_tokenizer_path("builtin:tiny", "/no/tok.bin").status();
  EXPECT_TRUE(has(st, "tokenizer `/no/tok.bin` does not exist")) << st.message();
}

// A listening socket on 127.0.0.1, to make a port busy.
struct Listener {
  Listener() {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(fd, 4), 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    port = ntohs(addr.sin_port);
  }
  ~Listener() { ::close(fd); }
  int fd = -1;
  int port = 0;
};

TEST(ListenAddress, AddressNotOnThisMachineIsNotCalledABusyPort) {
  // 203.0.113.0/24 is TEST-NET-3: documentation only, never a local address.
  const Status st = check_listen_address("203.0.113.5", 8000);
  EXPECT_TRUE(has(st, "203.0.113.5 is not an address of this machine")) << st.message();
  EXPECT_TRUE(has(st, "0.0.0.0")) << st.message();
  EXPECT_TRUE(has(st, "127.0.0.1")) << st.message();
  EXPECT_FALSE(has(st, "port")) << st.message();
}

TEST(ListenAddress, UnresolvableHostSaysWhatToUse) {
  const Status st = check_listen_address("no-such-host.invalid", 8000);
  EXPECT_TRUE(has(st, "no-such-host.invalid")) << st.message();
  EXPECT_TRUE(has(st, "0.0.0.0")) << st.message();
}

TEST(ListenAddress, BusyPortIsReportedAsInUse) {
  Listener busy;
  const Status st = check_listen_address("127.0.0.1", busy.port);
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_TRUE(has(st, "port " + std::to_string(busy.port) + " on 127.0.0.1 is in use")) << st.message();
  EXPECT_TRUE(has(st, "--port")) << st.message();
  EXPECT_FALSE(check_listen_address("0.0.0.0", busy.port).ok());
}

TEST(ListenAddress, FreePortAndLocalAddressesPass) {
  int port = 0;
  {
    Listener was_busy;
    port = was_busy.port;
  }
  EXPECT_TRUE(check_listen_address("127.0.0.1", port).ok());
  EXPECT_TRUE(check_listen_address("0.0.0.0", port).ok());
  EXPECT_TRUE(check_listen_address("localhost", 0).ok());
}

}  // namespace
}  // namespace strata
