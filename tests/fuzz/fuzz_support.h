// Shared pieces of the fuzz targets: the libFuzzer entry point's signature, and a scratch
// file for loaders that take a path (the checkpoint readers mmap files; a file per process
// in /dev/shm keeps that off the disk and fast).
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace strata::fuzz {

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Writes the input to /dev/shm/strata-fuzz-<pid><suffix> and returns the path. The suffix
// matters to loaders that dispatch on the extension (.safetensors, .gguf, .bin).
inline std::string scratch_file(const uint8_t* data, size_t size, std::string_view suffix) {
  const std::string dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  std::string path = dir + "/strata-fuzz-" + std::to_string(::getpid()) + std::string(suffix);
  // Removed at exit: one file per suffix this process used.
  static std::set<std::string> written;
  if (written.empty()) std::atexit([] { for (const auto& p : written) std::remove(p.c_str()); });
  written.insert(path);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}

}  // namespace strata::fuzz
