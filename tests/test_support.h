// Helpers shared by the tests: where the shared model files are, and how a test that needs
// one behaves when it is missing (skip on a user's fresh clone; fail under CI=true).
#pragma once

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

#include <gtest/gtest.h>

namespace strata::testing {

// $STRATA_SHARED_DIR, or ../shared beside the source tree.
inline std::filesystem::path shared_dir() {
  if (const char* env = std::getenv("STRATA_SHARED_DIR"); env && *env) return env;
  return std::filesystem::path(STRATA_SOURCE_DIR) / ".." / "shared";
}

inline bool running_under_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

// Where test-time reference data (written by Python packages in the test setup) lives.
inline std::filesystem::path test_data_dir() {
  return std::filesystem::path(STRATA_BINARY_DIR) / "test-data";
}

}  // namespace strata::testing

// Resolves `relative` (to shared_dir()) into `var`, or skips the test with a message saying
// what is missing; under CI=true a missing file fails the test instead.
#define STRATA_REQUIRE_SHARED_FILE(var, relative)                                           \
  std::filesystem::path var = ::strata::testing::shared_dir() / (relative);                 \
  if (!std::filesystem::exists(var)) {                                                      \
    if (::strata::testing::running_under_ci()) {                                            \
      FAIL() << "shared file missing under CI: " << var                                     \
             << " (set STRATA_SHARED_DIR or place ../shared beside the checkout)";          \
    }                                                                                       \
    GTEST_SKIP() << "shared file " << var << " not found; set STRATA_SHARED_DIR to run this"; \
  }

// Same for a file a test-setup script produces (it needs the Python reference packages).
#define STRATA_REQUIRE_TEST_DATA(var, relative)                                             \
  std::filesystem::path var = ::strata::testing::test_data_dir() / (relative);              \
  if (!std::filesystem::exists(var)) {                                                      \
    if (::strata::testing::running_under_ci()) {                                            \
      FAIL() << "test data missing under CI: " << var << " (its setup step did not run)";   \
    }                                                                                       \
    GTEST_SKIP() << "test data " << var << " not found; run scripts/install-deps.sh and "   \
                 << "the tests' setup (ctest runs it first)";                               \
  }
