// HttpAccess on request heads built by hand: which checks fire, in which order, and what
// each error says. The live server's behaviour is tests/e2e/test_access.py.
#include "router/http_access.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace strata::router {
namespace {

RequestHead head(std::string method, std::string path,
                 std::vector<std::pair<std::string, std::string>> headers) {
  return RequestHead{.method = std::move(method), .path = std::move(path), .headers = std::move(headers)};
}

HttpAccess make(AccessConfig config, std::string_view listen_host = "127.0.0.1") {
  auto access = HttpAccess::create(std::move(config), listen_host);
  EXPECT_TRUE(access.ok()) << access.status().message();
  return std::move(access).value();
}

TEST(HttpAccess, HeaderNamesCompareCaseInsensitively) {
  const RequestHead h = head("GET", "/", {{"content-length", "1"}, {"CONTENT-LENGTH", "2"}, {"Host", "x"}});
  EXPECT_EQ(h.values("Content-Length").size(), 2u);
  EXPECT_EQ(h.value("host"), "x");
  EXPECT_FALSE(h.value("Origin"));
}

TEST(HttpAccess, WithoutKeysEveryPathIsOpen) {
  const HttpAccess access = make({});
  EXPECT_FALSE(access.requires_key());
  EXPECT_FALSE(access.check(head("POST", "/v1/completions", {{"Host", "127.0.0.1:8000"}})));
}

TEST(HttpAccess, KeysFromFlagFileAndEnvironmentAllCount) {
  const auto file = std::filesystem::temp_directory_path() / "strata_http_access_keys.txt";
  std::ofstream(file) << "# comment\n  k-file \n";
  setenv("STRATA_API_KEY", "k-env1,,k-env2", 1);
  const HttpAccess access = make({.api_keys = {"k-flag"}, .api_key_file = file.string()});
  unsetenv("STRATA_API_KEY");
  std::filesystem::remove(file);
  for (const char* key : {"k-flag", "k-file", "k-env1", "k-env2"}) {
    EXPECT_FALSE(access.check(head("GET", "/v1/models", {{"Authorization", std::string("Bearer ") + key}})))
        << key;
  }
  for (const char* auth : {"Bearer k-fla", "Bearer k-flagg", "Bearer # comment", "Bearer ", "k-flag"}) {
    const auto error = access.check(head("GET", "/v1/models", {{"Authorization", auth}}));
    ASSERT_TRUE(error) << auth;
    EXPECT_EQ(error->http_status, 401);
    EXPECT_EQ(error->code, "invalid_api_key");
  }
  EXPECT_TRUE(access.check(head("GET", "/v1/models", {})));
}

TEST(HttpAccess, ProbesAndMetricsAreOpenUnlessProtected) {
  const HttpAccess open = make({.api_keys = {"k"}});
  const HttpAccess closed = make({.api_keys = {"k"}, .protect_probes = true, .protect_metrics = true});
  for (const char* path : {"/health", "/ready", "/metrics"}) {
    EXPECT_FALSE(open.check(head("GET", path, {}))) << path;
    EXPECT_TRUE(closed.check(head("GET", path, {}))) << path;
  }
  const HttpAccess only_probes = make({.api_keys = {"k"}, .protect_probes = true});
  EXPECT_FALSE(only_probes.check(head("GET", "/metrics", {})));
  EXPECT_TRUE(only_probes.check(head("GET", "/health", {})));
}

TEST(HttpAccess, AMissingKeyFileNamesTheFlagAndTheFile) {
  const auto access = HttpAccess::create({.api_key_file = "/nonexistent/keys"}, "127.0.0.1");
  ASSERT_FALSE(access.ok());
  EXPECT_NE(access.status().message().find("--api-key-file /nonexistent/keys"), std::string::npos);
}

TEST(HttpAccess, HostsDefaultToLoopbackNamesOnALoopbackListener) {
  const HttpAccess loopback = make({});
  for (const char* host : {"localhost", "localhost:80", "127.0.0.1:9", "[::1]:8000", "LocalHost"}) {
    EXPECT_FALSE(loopback.check(head("GET", "/health", {{"Host", host}}))) << host;
  }
  for (const char* host : {"evil.example", "127.0.0.1.evil.example", "[::2]:80"}) {
    const auto error = loopback.check(head("GET", "/health", {{"Host", host}}));
    ASSERT_TRUE(error) << host;
    EXPECT_EQ(error->http_status, 403);
    EXPECT_EQ(error->code, "host_not_allowed");
  }
  const HttpAccess anywhere = make({}, "0.0.0.0");
  EXPECT_FALSE(anywhere.check(head("GET", "/health", {{"Host", "strata.internal:8000"}})));
  const HttpAccess named = make({.allowed_hosts = {"Strata.Internal"}}, "0.0.0.0");
  EXPECT_FALSE(named.check(head("GET", "/health", {{"Host", "strata.internal:8000"}})));
  EXPECT_TRUE(named.check(head("GET", "/health", {{"Host", "other.internal"}})));
}

TEST(HttpAccess, OriginsMustBeTheServersOwnOrAllowed) {
  const HttpAccess access = make({.allowed_origins = {"https://app.example"}});
  const auto from = [](const char* origin) {
    return head("POST", "/v1/completions", {{"Host", "127.0.0.1:8000"}, {"Origin", origin}});
  };
  EXPECT_FALSE(access.check(from("http://127.0.0.1:8000")));
  EXPECT_FALSE(access.check(from("https://app.example")));
  EXPECT_TRUE(access.cors_headers(from("http://127.0.0.1:8000")).size() > 0);
  for (const char* origin : {"https://app.example:444", "http://app.example", "null", "http://127.0.0.1:8001"}) {
    const auto error = access.check(from(origin));
    ASSERT_TRUE(error) << origin;
    EXPECT_EQ(error->code, "origin_not_allowed");
    EXPECT_TRUE(access.cors_headers(from(origin)).empty());
  }
  EXPECT_FALSE(make({.allowed_origins = {"*"}}).check(from("https://anything.example")));
}

TEST(HttpAccess, BodiesMustBeJsonWhenTheirTypeIsGiven) {
  const HttpAccess access = make({});
  EXPECT_FALSE(access.check(head("POST", "/v1/completions", {{"Content-Type", "application/json; charset=utf-8"}})));
  EXPECT_FALSE(access.check(head("POST", "/v1/completions", {})));
  const auto error = access.check(head("POST", "/v1/completions", {{"Content-Type", "text/plain"}}));
  ASSERT_TRUE(error);
  EXPECT_EQ(error->http_status, 415);
}

TEST(HttpAccess, HeaderLimitsComeFirst) {
  const HttpAccess access = make({.api_keys = {"k"}, .max_header_count = 8});
  std::vector<std::pair<std::string, std::string>> many(9, {"X", "y"});
  const auto too_many = access.check(head("GET", "/v1/models", many));
  ASSERT_TRUE(too_many);
  EXPECT_EQ(too_many->http_status, 431);
  const auto two_lengths = access.check(
      head("POST", "/v1/completions", {{"Content-Length", "5"}, {"Content-Length", "5"}}));
  ASSERT_TRUE(two_lengths);
  EXPECT_EQ(two_lengths->http_status, 400);
  EXPECT_NE(two_lengths->message.find("Content-Length"), std::string::npos);
}

}  // namespace
}  // namespace strata::router
