// Safetensors reader tests: files written by the reference `safetensors` package (values
// checked exactly against numpy's, from expected.json), then hostile files written here,
// each of which must give a Status naming the file (and tensor), never a crash.
#include "worker/model/safetensors.h"

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/test_support.h"

namespace strata {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

double element(const SafetensorView& v, int64_t i) {
  const auto* bytes = static_cast<const uint8_t*>(v.data);
  switch (v.dtype) {
    case DType::kF32: {
      float f;
      std::memcpy(&f, bytes + 4 * i, 4);
      return f;
    }
    case DType::kBF16:
    case DType::kF16: {
      uint16_t h;
      std::memcpy(&h, bytes + 2 * i, 2);
      return v.dtype == DType::kBF16 ? bf16_to_f32(h) : f16_to_f32(h);
    }
    case DType::kI32: {
      int32_t x;
      std::memcpy(&x, bytes + 4 * i, 4);
      return x;
    }
    case DType::kI8: return static_cast<int8_t>(bytes[i]);
    case DType::kU8: return bytes[i];
  }
  return 0.0;
}

DType dtype_from_name(const std::string& name) {
  if (name == "F32") return DType::kF32;
  if (name == "BF16") return DType::kBF16;
  if (name == "F16") return DType::kF16;
  if (name == "I32") return DType::kI32;
  if (name == "I8") return DType::kI8;
  return DType::kU8;
}

json load_expected() {
  std::ifstream in(testing::test_data_dir() / "safetensors" / "expected.json");
  return json::parse(in);
}

// Checks every tensor `expected` lists, exactly, and that the checkpoint has no others.
void expect_matches(const SafetensorsCheckpoint& ckpt, const json& expected) {
  std::vector<std::string> names;
  for (const auto& [name, want] : expected.items()) {
    names.push_back(name);
    SCOPED_TRACE(name);
    StatusOr<SafetensorView> got = ckpt.get(name);
    ASSERT_TRUE(got.ok()) << got.status().to_string();
    const SafetensorView& v = *got;
    EXPECT_EQ(v.name, name);
    EXPECT_EQ(v.dtype, dtype_from_name(want["dtype"]));
    EXPECT_EQ(v.shape, want["shape"].get<std::vector<int64_t>>());
    const auto values = want["values"].get<std::vector<double>>();
    ASSERT_EQ(v.numel(), static_cast<int64_t>(values.size()));
    EXPECT_EQ(v.nbytes, values.size() * dtype_size(v.dtype));
    for (size_t i = 0; i < values.size(); ++i) {
      ASSERT_EQ(element(v, static_cast<int64_t>(i)), values[i]) << "element " << i;
    }
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(ckpt.names(), names);
}

// ---- files from the reference writer ---------------------------------------------------

TEST(SafetensorsReference, ReadsNumpyFileWithEveryDtypeScalarAndEmptyTensor) {
  STRATA_REQUIRE_TEST_DATA(path, "safetensors/single.safetensors");
  StatusOr<SafetensorsCheckpoint> ckpt = SafetensorsCheckpoint::open(path.string());
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().to_string();
  expect_matches(*ckpt, load_expected()["single.safetensors"]);
  EXPECT_EQ(ckpt->get("scale")->numel(), 1);  // shape [] is a scalar
  EXPECT_EQ(ckpt->get("empty")->numel(), 0);
  EXPECT_EQ(ckpt->get("empty")->file, path.string());
}

TEST(SafetensorsReference, ReadsBf16WrittenBySerializeFile) {
  STRATA_REQUIRE_TEST_DATA(path, "safetensors/bf16.safetensors");
  StatusOr<SafetensorsCheckpoint> ckpt = SafetensorsCheckpoint::open(path.string());
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().to_string();
  expect_matches(*ckpt, load_expected()["bf16.safetensors"]);
}

TEST(SafetensorsReference, DirectoryWithoutIndexOpensModelSafetensors) {
  STRATA_REQUIRE_TEST_DATA(path, "safetensors/dir_single");
  StatusOr<SafetensorsCheckpoint> ckpt = SafetensorsCheckpoint::open(path.string());
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().to_string();
  expect_matches(*ckpt, load_expected()["dir_single"]);
}

TEST(SafetensorsReference, ShardedCheckpointOpensFromDirectoryOrIndex) {
  STRATA_REQUIRE_TEST_DATA(dir, "safetensors/sharded");
  const json expected = load_expected()["sharded"];
  for (const fs::path& p : {dir, dir / "model.safetensors.index.json"}) {
    SCOPED_TRACE(p.string());
    StatusOr<SafetensorsCheckpoint> ckpt = SafetensorsCheckpoint::open(p.string());
    ASSERT_TRUE(ckpt.ok()) << ckpt.status().to_string();
    expect_matches(*ckpt, expected);
    EXPECT_NE(ckpt->get("lm_head.weight")->file.find("model-00002-of-00002.safetensors"),
              std::string::npos);
  }
}

TEST(SafetensorsReference, MissingTensorIsNotFoundWithExamples) {
  STRATA_REQUIRE_TEST_DATA(path, "safetensors/single.safetensors");
  StatusOr<SafetensorsCheckpoint> ckpt = SafetensorsCheckpoint::open(path.string());
  ASSERT_TRUE(ckpt.ok());
  EXPECT_FALSE(ckpt->contains("nope"));
  StatusOr<SafetensorView> v = ckpt->get("nope");
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kNotFound);
  const std::string& msg = v.status().message();
  EXPECT_NE(msg.find("'nope'"), std::string::npos) << msg;
  EXPECT_NE(msg.find(path.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("6 tensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'bytes'"), std::string::npos) << msg;
}

// ---- hostile files ---------------------------------------------------------------------

class SafetensorsHostile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("strata_safetensors_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes 8-byte LE `header_len` (default: the header's size), the header, then `data`.
  std::string write(const std::string& name, const std::string& header, size_t data_bytes,
                    std::optional<uint64_t> header_len = std::nullopt) {
    const fs::path path = dir_ / name;
    std::ofstream out(path, std::ios::binary);
    const uint64_t n = header_len.value_or(header.size());
    for (int i = 0; i < 8; ++i) out.put(static_cast<char>((n >> (8 * i)) & 0xff));
    out << header;
    out << std::string(data_bytes, '\x01');
    return path.string();
  }

  std::string write_raw(const std::string& name, const std::string& bytes) {
    const fs::path path = dir_ / name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path.string();
  }

  // Opening `path` fails and the message holds every one of `needles`.
  static void expect_error(const std::string& path, std::vector<std::string> needles) {
    StatusOr<SafetensorsCheckpoint> ckpt = SafetensorsCheckpoint::open(path);
    ASSERT_FALSE(ckpt.ok()) << path << " opened but should not have";
    const std::string& msg = ckpt.status().message();
    for (const std::string& needle : needles) {
      EXPECT_NE(msg.find(needle), std::string::npos) << "'" << needle << "' not in: " << msg;
    }
  }

  fs::path dir_;
};

const char* kOneTensor = R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})";

TEST_F(SafetensorsHostile, ValidHandWrittenFileOpens) {
  const std::string path = write("ok.safetensors", kOneTensor, 16);
  StatusOr<SafetensorsCheckpoint> ckpt = SafetensorsCheckpoint::open(path);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().to_string();
  EXPECT_EQ(ckpt->get("w")->nbytes, 16u);
}

TEST_F(SafetensorsHostile, TruncatedDataNamesFileAndTensor) {
  expect_error(write("trunc.safetensors", kOneTensor, 8), {"trunc.safetensors", "'w'"});
}

TEST_F(SafetensorsHostile, FileShorterThanLengthPrefix) {
  expect_error(write_raw("tiny.safetensors", "abc"), {"tiny.safetensors", "3 bytes"});
  expect_error(write_raw("empty.safetensors", ""), {"empty.safetensors"});
}

TEST_F(SafetensorsHostile, HeaderLengthBeyondFile) {
  expect_error(write("long.safetensors", kOneTensor, 16, 1000), {"long.safetensors", "1000"});
}

TEST_F(SafetensorsHostile, HeaderLengthTwoToTheForty) {
  expect_error(write("huge.safetensors", kOneTensor, 16, uint64_t{1} << 40),
               {"huge.safetensors", "1099511627776"});
  expect_error(write("max.safetensors", kOneTensor, 16, UINT64_MAX), {"max.safetensors"});
}

TEST_F(SafetensorsHostile, HeaderTooShort) {
  expect_error(write("short.safetensors", "{}", 0, 1), {"short.safetensors"});
}

TEST_F(SafetensorsHostile, InvalidJsonOrNotAnObject) {
  expect_error(write("bad.safetensors", R"({"w":{"dtype":"F32",)", 16), {"bad.safetensors",
                                                                          "JSON"});
  expect_error(write("array.safetensors", "[1, 2, 3]", 0), {"array.safetensors", "object"});
  expect_error(write("entry.safetensors", R"({"w": 5})", 0), {"entry.safetensors", "'w'"});
}

TEST_F(SafetensorsHostile, OffsetsPastEnd) {
  expect_error(write("past.safetensors",
                     R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[16,32]}})", 16),
               {"past.safetensors", "'w'", "[16, 32]"});
  expect_error(write("reversed.safetensors",
                     R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}})", 16),
               {"reversed.safetensors", "'w'"});
  expect_error(write("negative.safetensors",
                     R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", 16),
               {"negative.safetensors", "'w'"});
}

TEST_F(SafetensorsHostile, OverlappingTensors) {
  expect_error(write("overlap.safetensors",
                     R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                     R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                     16),
               {"overlap.safetensors", "'a'", "'b'", "overlap"});
}

TEST_F(SafetensorsHostile, ShapeSizeMismatch) {
  expect_error(write("mismatch.safetensors",
                     R"({"w":{"dtype":"F32","shape":[3,2],"data_offsets":[0,16]}})", 16),
               {"mismatch.safetensors", "'w'", "24"});
  expect_error(write("negdim.safetensors",
                     R"({"w":{"dtype":"F32","shape":[-1,4],"data_offsets":[0,16]}})", 16),
               {"negdim.safetensors", "'w'"});
  expect_error(write("overflow.safetensors",
                     R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],)"
                     R"("data_offsets":[0,16]}})",
                     16),
               {"overflow.safetensors", "'w'"});
  expect_error(write("noshape.safetensors", R"({"w":{"dtype":"F32","data_offsets":[0,16]}})",
                     16),
               {"noshape.safetensors", "'w'", "shape"});
}

TEST_F(SafetensorsHostile, UnknownDtype) {
  StatusOr<SafetensorsCheckpoint> ckpt = SafetensorsCheckpoint::open(
      write("f8.safetensors", R"({"w":{"dtype":"F8_E9","shape":[16],"data_offsets":[0,16]}})",
            16));
  ASSERT_FALSE(ckpt.ok());
  EXPECT_EQ(ckpt.status().code(), StatusCode::kUnimplemented);
  for (const char* needle : {"f8.safetensors", "'w'", "F8_E9", "BF16"}) {
    EXPECT_NE(ckpt.status().message().find(needle), std::string::npos)
        << ckpt.status().message();
  }
}

TEST_F(SafetensorsHostile, MissingPathOrEmptyDirectory) {
  expect_error((dir_ / "nothing.safetensors").string(), {"nothing.safetensors"});
  fs::create_directories(dir_ / "emptydir");
  expect_error((dir_ / "emptydir").string(), {"emptydir", "model.safetensors"});
}

TEST_F(SafetensorsHostile, MissingShard) {
  write("model-00001-of-00002.safetensors", kOneTensor, 16);
  write_raw("model.safetensors.index.json",
            R"({"weight_map": {"w": "model-00001-of-00002.safetensors",)"
            R"( "v": "model-00002-of-00002.safetensors"}})");
  expect_error(dir_.string(), {"model.safetensors.index.json", "model-00002-of-00002.safetensors",
                               "'v'"});
}

TEST_F(SafetensorsHostile, TensorListedInIndexButAbsentFromShard) {
  write("shard.safetensors", kOneTensor, 16);
  const std::string index = write_raw(
      "index.json", R"({"weight_map": {"w": "shard.safetensors", "x": "shard.safetensors"}})");
  StatusOr<SafetensorsCheckpoint> ckpt = SafetensorsCheckpoint::open(index);
  ASSERT_FALSE(ckpt.ok());
  EXPECT_EQ(ckpt.status().code(), StatusCode::kDataLoss);
  for (const char* needle : {"index.json", "shard.safetensors", "'x'"}) {
    EXPECT_NE(ckpt.status().message().find(needle), std::string::npos)
        << ckpt.status().message();
  }
}

TEST_F(SafetensorsHostile, CorruptShardNamesTheShard) {
  write("bad-shard.safetensors", kOneTensor, 4);
  const std::string index =
      write_raw("index.json", R"({"weight_map": {"w": "bad-shard.safetensors"}})");
  expect_error(index, {"bad-shard.safetensors", "'w'"});
}

TEST_F(SafetensorsHostile, BadIndex) {
  expect_error(write_raw("a.json", "{not json"), {"a.json"});
  expect_error(write_raw("b.json", R"({"metadata": {}})"), {"b.json", "weight_map"});
  expect_error(write_raw("c.json", R"({"weight_map": {"w": "../../etc/passwd"}})"),
               {"c.json", "'w'"});
  expect_error(write_raw("d.json", R"({"weight_map": {"w": 3}})"), {"d.json", "'w'"});
}

}  // namespace
}  // namespace strata
