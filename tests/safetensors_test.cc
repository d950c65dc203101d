// Every rule of the safetensors parser, each with the input that breaks it
// and the words the error must contain.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "runtime/safetensors/header.h"
#include "runtime/safetensors/writer.h"

namespace residency::safetensors {
namespace {

// prefix (length of `json`) + json + `data` zero bytes.
std::string Image(const std::string& json, std::size_t data) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((json.size() >> (8 * i)) & 0xff);
  return s + json + std::string(data, '\0');
}

std::string ErrorOf(const std::string& image) {
  auto r = ParseFileImage(image, "model.safetensors");
  return r.ok() ? "" : r.status().message();
}

void ExpectError(const std::string& image, const std::string& words) {
  const std::string e = ErrorOf(image);
  EXPECT_NE(e.find("model.safetensors"), std::string::npos) << "error must name the file: " << e;
  EXPECT_NE(e.find(words), std::string::npos) << "wanted '" << words << "' in: " << e;
}

TEST(Safetensors, ParsesAValidHeaderSortedByOffset) {
  const std::string json =
      R"({"b":{"dtype":"F32","shape":[2,2],"data_offsets":[4,20]},)"
      R"("a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]},"__metadata__":{"format":"pt"}})";
  auto r = ParseFileImage(Image(json, 20), "model.safetensors");
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->tensors.size(), 2u);
  EXPECT_EQ(r->tensors[0].name, "a");
  EXPECT_EQ(r->tensors[1].name, "b");
  EXPECT_EQ(r->tensors[1].bytes(), 16u);
  EXPECT_EQ(r->data_offset, 8 + json.size());
  EXPECT_EQ(r->metadata.at("format"), "pt");
}

TEST(Safetensors, AcceptsZeroSizedTensorsAndScalars) {
  const std::string json =
      R"({"empty":{"dtype":"F16","shape":[0,3],"data_offsets":[0,0]},)"
      R"("scalar":{"dtype":"I64","shape":[],"data_offsets":[0,8]}})";
  auto r = ParseFileImage(Image(json, 8), "model.safetensors");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->tensors.size(), 2u);
}

TEST(Safetensors, DtypeTableHasEveryTypeAndSize) {
  const std::pair<const char*, std::uint64_t> table[] = {
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2}, {"I8", 1},
      {"U8", 1}, {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"U16", 2}, {"U32", 4}, {"U64", 8}, {"C64", 8}};
  for (auto [name, size] : table) {
    auto d = ParseDType(name);
    ASSERT_TRUE(d.has_value()) << name;
    EXPECT_EQ(ItemSize(*d), size) << name;
    EXPECT_EQ(ToString(*d), name);
  }
  EXPECT_FALSE(ParseDType("F128").has_value());
  EXPECT_FALSE(ParseDType("f32").has_value());
}

TEST(Safetensors, HeaderLengthRules) {
  ExpectError(std::string("\x01\x02\x03", 3), "shorter than the 8-byte header length");
  std::string huge(8, '\0');
  huge[4] = 1;  // 2^32 bytes
  ExpectError(huge + "{}", "exceeds the 104857600-byte cap");
  std::string tiny(8, '\0');
  tiny[0] = 1;
  ExpectError(tiny + "{", "too small for a JSON object");
  std::string longer(8, '\0');
  longer[0] = 100;
  ExpectError(longer + "{}", "truncated: header length 100");
}

TEST(Safetensors, JsonRules) {
  ExpectError(Image("{\"a\":", 0), "invalid JSON at byte");
  ExpectError(Image("[1,2]", 0), "must be a JSON object");
  ExpectError(Image("{} {}", 0), "invalid JSON");
  ExpectError(Image("\"str\"", 0), "a string is not allowed here");
  ExpectError(Image(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})", 2),
              "duplicate tensor name 'a'");
  ExpectError(Image(R"({"a":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}})", 1),
              "duplicate field 'dtype'");
  ExpectError(Image(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"extra":1}})", 1),
              "unknown field 'extra'");
  ExpectError(Image(R"({"a":{"shape":[1],"data_offsets":[0,1]}})", 1), "missing field 'dtype'");
  ExpectError(Image(R"({"a":{"dtype":"U8","data_offsets":[0,1]}})", 1), "missing field 'shape'");
  ExpectError(Image(R"({"a":{"dtype":"U8","shape":[1]}})", 1), "missing field 'data_offsets'");
  ExpectError(Image(R"({"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}})", 1), "unknown dtype \"Q4\"");
  ExpectError(Image(R"({"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}})", 1), "negative number -1");
  ExpectError(Image(R"({"a":{"dtype":"U8","shape":[1.5],"data_offsets":[0,1]}})", 1), "non-integer number");
  ExpectError(Image(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}})", 1), "exactly 2 entries");
  ExpectError(Image(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0]}})", 1), "exactly 2 entries");
  ExpectError(Image(R"({"a":{"dtype":"U8","shape":[[1]],"data_offsets":[0,1]}})", 1), "an array is not allowed here");
  ExpectError(Image(R"({"a":null})", 0), "null is not allowed");
  ExpectError(Image(R"({"a":{"dtype":true,"shape":[1],"data_offsets":[0,1]}})", 1), "boolean");
}

TEST(Safetensors, MetadataRules) {
  ExpectError(Image(R"({"__metadata__":{"k":1}})", 0), "__metadata__: a number is not allowed here");
  ExpectError(Image(R"({"__metadata__":{"k":"a","k":"b"}})", 0), "duplicate metadata key 'k'");
  ExpectError(Image(R"({"__metadata__":{"k":{"x":"y"}}})", 0), "an object is not allowed here");
  ExpectError(Image(R"({"__metadata__":{},"__metadata__":{}})", 0), "duplicate key '__metadata__'");
}

TEST(Safetensors, SizeAndLayoutRules) {
  ExpectError(Image(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8),
              "shape [3] x 4 bytes (F32) = 12 bytes but data_offsets span 8");
  ExpectError(Image(R"({"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", 8),
              "overflows 64 bits");
  ExpectError(Image(R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[5,4]}})", 5), "end before begin");
  ExpectError(Image(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})", 4), "hole in the data buffer: bytes [0,2)");
  ExpectError(Image(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})", 4),
              "overlaps tensor 'a'");
  ExpectError(Image(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})", 3), "truncated: tensors need 4 data bytes but the file holds 3");
  ExpectError(Image(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})", 9), "trailing bytes");
}

// One byte off anywhere is refused: three U8 tensors a, b, c of 4 bytes each,
// with a 1-byte hole or overlap at the start, between them, and at the end,
// and spans one byte larger or smaller than their shape.
TEST(Safetensors, OneByteOffIsRefusedEverywhere) {
  auto three = [](int a0, int a1, int b0, int b1, int c0, int c1) {
    auto t = [](const char* n, int b, int e) {
      return std::string("\"") + n + R"(":{"dtype":"U8","shape":[)" + std::to_string(e - b) + R"(],"data_offsets":[)" +
             std::to_string(b) + "," + std::to_string(e) + "]}";
    };
    return "{" + t("a", a0, a1) + "," + t("b", b0, b1) + "," + t("c", c0, c1) + "}";
  };
  EXPECT_EQ(ErrorOf(Image(three(0, 4, 4, 8, 8, 12), 12)), "");
  ExpectError(Image(three(1, 5, 5, 9, 9, 13), 13), "hole in the data buffer: bytes [0,1)");
  ExpectError(Image(three(0, 4, 5, 9, 9, 13), 13), "hole in the data buffer: bytes [4,5)");
  ExpectError(Image(three(0, 4, 4, 8, 9, 13), 13), "hole in the data buffer: bytes [8,9)");
  ExpectError(Image(three(0, 4, 4, 8, 8, 12), 13), "trailing bytes: tensors end at data byte 12");
  ExpectError(Image(three(0, 4, 3, 7, 7, 11), 11), "tensor 'b' at [3,7) overlaps tensor 'a'");
  ExpectError(Image(three(0, 4, 4, 8, 7, 11), 11), "tensor 'c' at [7,11) overlaps tensor 'b'");
  ExpectError(Image(three(0, 4, 4, 8, 8, 12), 11), "truncated: tensors need 12 data bytes but the file holds 11");
  // The span against the shape, by one byte either way.
  ExpectError(Image(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,5]}})", 5),
              "shape [4] x 1 bytes (U8) = 4 bytes but data_offsets span 5");
  ExpectError(Image(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,3]}})", 3),
              "shape [4] x 1 bytes (U8) = 4 bytes but data_offsets span 3");
  ExpectError(Image(R"({"a":{"dtype":"F16","shape":[2,2],"data_offsets":[0,9]}})", 9),
              "shape [2,2] x 2 bytes (F16) = 8 bytes but data_offsets span 9");
}

TEST(Safetensors, WriterOutputParsesAndFitsTheDeclaredSize) {
  const std::string path = (std::filesystem::temp_directory_path() / "residency-st-writer.safetensors").string();
  auto specs = FitToFileSize(path, {1000, 3, 77777, 1}, 100000);
  ASSERT_TRUE(specs.ok()) << specs.status().message();
  ASSERT_TRUE(WriteFile(path, specs.value(), 9).ok());
  EXPECT_EQ(std::filesystem::file_size(path), 100000u);
  auto h = ReadHeader(path);
  ASSERT_TRUE(h.ok()) << h.status().message();
  EXPECT_EQ(h->tensors.size(), 4u);
  EXPECT_EQ(h->metadata.at("generator"), "residency gen-model");
  std::filesystem::remove(path);
  EXPECT_FALSE(FitToFileSize("tiny", {10, 10}, 30).ok());
}

TEST(Safetensors, ReadHeaderNamesMissingAndTruncatedFiles) {
  auto missing = ReadHeader("/nonexistent/x.safetensors");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("/nonexistent/x.safetensors"), std::string::npos);
  const std::string path = (std::filesystem::temp_directory_path() / "residency-st-trunc.safetensors").string();
  ASSERT_TRUE(WriteFile(path, {TensorOfBytes("w", 4096)}, 1).ok());
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 100);
  auto truncated = ReadHeader(path);
  ASSERT_FALSE(truncated.ok());
  EXPECT_EQ(truncated.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(truncated.status().message().find("truncated"), std::string::npos);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace residency::safetensors
