// Malformed safetensors files: every defect is a clear wp::Error naming the file and tensor.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>

#include "test_support.h"
#include "wp/error.h"
#include "io/safetensors.h"
#include "wp/model/model.h"

namespace wp::test {
namespace {

using testing::HasSubstr;

std::vector<std::uint8_t> f32_bytes(std::size_t n) {
    std::vector<float> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = 0.25f * static_cast<float>(i);
    std::vector<std::uint8_t> b(n * 4);
    std::memcpy(b.data(), v.data(), b.size());
    return b;
}

std::string open_error(const std::vector<std::uint8_t>& bytes) {
    TempDir d;
    write_bytes(d.path() / "model.safetensors", bytes);
    return error_of([&] { SafeTensorsFile f(d.path() / "model.safetensors"); });
}

TEST(SafeTensors, ReadsAValidFile) {
    TempDir d;
    write_bytes(d.path() / "model.safetensors",
                make_safetensors({{"a", "F32", {2, 3}, f32_bytes(6)}, {"b", "BF16", {4}, std::vector<std::uint8_t>(8, 1)}}));
    SafeTensorsFile f(d.path() / "model.safetensors");
    ASSERT_NE(f.find("a"), nullptr);
    EXPECT_EQ(f.find("a")->shape, (std::vector<std::int64_t>{2, 3}));
    EXPECT_EQ(f.find("a")->bytes, 24u);
    float x;
    std::memcpy(&x, f.find("a")->data + 8, 4);
    EXPECT_EQ(x, 0.5f);
    EXPECT_EQ(f.find("b")->dtype, DType::BF16);
    EXPECT_EQ(f.metadata().at("format"), "pt");
}

TEST(SafeTensors, TruncatedFile) {
    EXPECT_THAT(open_error({1, 2, 3}), HasSubstr("truncated"));
    auto good = make_safetensors({{"a", "F32", {4, 4}, f32_bytes(16)}});
    good.resize(good.size() - 10);  // data section cut short
    EXPECT_THAT(open_error(good), HasSubstr("outside the file's data section"));
    EXPECT_THAT(open_error(good), HasSubstr("tensor a"));
}

TEST(SafeTensors, HeaderLengthLargerThanFile) {
    auto bytes = make_safetensors({{"a", "F32", {2}, f32_bytes(2)}});
    const std::uint64_t huge = bytes.size() + 100;
    std::memcpy(bytes.data(), &huge, 8);
    EXPECT_THAT(open_error(bytes), HasSubstr("larger than the file"));
    const std::uint64_t absurd = 1ull << 62;
    std::memcpy(bytes.data(), &absurd, 8);
    EXPECT_THAT(open_error(bytes), HasSubstr("exceeds the limit"));
}

TEST(SafeTensors, OffsetsOutOfRange) {
    auto e = open_error(make_raw_safetensors(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4096]}})", 8));
    EXPECT_THAT(e, HasSubstr("model.safetensors: tensor w"));
    EXPECT_THAT(e, HasSubstr("outside the file's data section"));
    EXPECT_THAT(open_error(make_raw_safetensors(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8)),
                HasSubstr("reversed"));
    EXPECT_THAT(open_error(make_raw_safetensors(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", 8)),
                HasSubstr("non-negative"));
}

TEST(SafeTensors, WrongDtypeSize) {
    // 2x2 F32 needs 16 bytes; the entry claims 8 (as if it were F16).
    auto e = open_error(make_raw_safetensors(R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,8]}})", 16));
    EXPECT_THAT(e, HasSubstr("tensor w"));
    EXPECT_THAT(e, HasSubstr("does not match F32 x [2, 2] = 16 bytes"));
}

TEST(SafeTensors, OverlappingTensors) {
    auto e = open_error(make_raw_safetensors(
        R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})", 24));
    EXPECT_THAT(e, HasSubstr("overlap"));
}

TEST(SafeTensors, BadHeaderJsonAndFields) {
    EXPECT_THAT(open_error(make_raw_safetensors("{\"a\": [1, 2", 0)), HasSubstr("header is not valid JSON"));
    EXPECT_THAT(open_error(make_raw_safetensors(R"({"a":{"dtype":"Q9","shape":[1],"data_offsets":[0,1]}})", 1)),
                HasSubstr("unknown dtype Q9"));
    EXPECT_THAT(open_error(make_raw_safetensors(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4)),
                HasSubstr("invalid dimension"));
    EXPECT_THAT(open_error(make_raw_safetensors(R"({"a":{"dtype":"F32","data_offsets":[0,4]}})", 4)),
                HasSubstr("shape"));
    EXPECT_THAT(open_error(make_raw_safetensors(R"([1,2,3])", 0)), HasSubstr("not a JSON object"));
}

}  // namespace
}  // namespace wp::test
