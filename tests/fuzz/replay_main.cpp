// A main() for the fuzz targets in an ordinary (gcc) build: runs every file of the given
// corpus directories (or files) through LLVMFuzzerTestOneInput once. CTest uses it so the
// seed corpora and every crash input kept as a regression (tests/fuzz/regressions/) replay
// on each submission without clang; the sanitizer lane links the same targets to libFuzzer.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <vector>

#include "tests/fuzz/fuzz_support.h"

namespace {

int replay(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

}  // namespace

int main(int argc, char** argv) {
  size_t replayed = 0;
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path arg = argv[i];
    std::vector<std::filesystem::path> files;
    if (std::filesystem::is_directory(arg)) {
      for (const auto& entry : std::filesystem::recursive_directory_iterator(arg)) {
        if (entry.is_regular_file()) files.push_back(entry.path());
      }
    } else if (std::filesystem::exists(arg)) {
      files.push_back(arg);
    }
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
      replay(file);
      ++replayed;
    }
  }
  std::cout << argv[0] << ": replayed " << replayed << " inputs without a crash\n";
  return replayed > 0 ? 0 : 1;  // an empty corpus means the seeds were not found
}
