// safetensors headers written to hurt: a tensor named twice, and shapes whose element count
// overflows on the way (also when a later dimension is 0), nesting, and a header of many entries. Each is a one-line error naming the tensor.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>

#include "io/safetensors.h"
#include "test_support.h"
#include "wp/error.h"

namespace wp::test {
namespace {

using testing::HasSubstr;

std::string open_error(const std::string& header, std::size_t data_bytes) {
    TempDir d;
    write_bytes(d.path() / "model.safetensors", make_raw_safetensors(header, data_bytes));
    return error_of([&] { SafeTensorsFile f(d.path() / "model.safetensors"); });
}

TEST(SafeTensorsHostile, DuplicateTensorNamesAreRefused) {
    EXPECT_EQ(open_error(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                         R"("w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                         8),
              "model.safetensors: header names tensor w twice");
    // The same key inside two different entries is not a duplicate tensor.
    EXPECT_EQ(open_error(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                         R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                         8),
              "no error");
}

TEST(SafeTensorsHostile, ShapeProductsCannotOverflow) {
    EXPECT_THAT(open_error(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", 4),
                HasSubstr("tensor w: shape overflows"));
    // A zero dimension after the overflow does not hide it.
    EXPECT_THAT(open_error(R"({"w":{"dtype":"F32","shape":[9223372036854775807,2,0],"data_offsets":[0,0]}})", 4),
                HasSubstr("tensor w: shape overflows"));
    EXPECT_THAT(open_error(R"({"w":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,4]}})", 4),
                HasSubstr("tensor w: shape has an invalid dimension"));
    // Bytes = elements x 4 overflowing 64 bits is a size mismatch, not a wrap-around.
    EXPECT_THAT(open_error(R"({"w":{"dtype":"F32","shape":[4611686018427387905],"data_offsets":[0,4]}})", 4),
                HasSubstr("does not match"));
}

TEST(SafeTensorsHostile, NestingIsBounded) {
    std::string deep = R"({"__metadata__":)";
    for (int i = 0; i < 100000; ++i) deep += "[";
    EXPECT_EQ(open_error(deep, 0), "model.safetensors: header nested more than 64 levels deep");
}

TEST(SafeTensorsHostile, ManyTensorsOpenInLinearTime) {
    // 200,000 entries, each an object: a parser that rescans the header per entry would take minutes.
    std::string header = "{";
    for (int i = 0; i < 200000; ++i)
        header += (i ? "," : "") + std::string("\"t") + std::to_string(i) + R"(":{"dtype":"F32","shape":[0],"data_offsets":[0,0]})";
    header += "}";
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(open_error(header, 0), "no error");
    EXPECT_LT(std::chrono::steady_clock::now() - t0, time_bound(std::chrono::seconds(10)));
}

}  // namespace
}  // namespace wp::test
