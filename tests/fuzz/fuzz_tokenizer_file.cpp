// Tokenizer files as load_tokenizer reads them: a GGUF (by its magic), an HF tokenizer.json
// (by its leading '{') or a llama2.c tokenizer.bin. A file that loads must then encode and
// decode without crashing.
#include <string>
#include <vector>

#include "common/tokenizer/tokenizer.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view head = strata::fuzz::as_text(data, size < 4 ? size : 4);
  const char* suffix = head == "GGUF" ? ".gguf" : (size > 0 && data[0] == '{') ? ".json" : ".bin";
  auto tokenizer = strata::load_tokenizer(strata::fuzz::scratch_file(data, size, suffix));
  if (!tokenizer.ok()) return 0;
  const auto& t = **tokenizer;
  std::vector<int32_t> ids = t.encode("Hello, wörld! 123 <s>\n\t  end", true);
  (void)t.decode(ids, false);
  std::vector<int32_t> first;
  for (int32_t id = 0; id < t.vocab_size() && id < 64; ++id) first.push_back(id);
  (void)t.decode(first, true);
  return 0;
}
