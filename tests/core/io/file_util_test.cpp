// read_text_file on what is not a plain file: a FIFO (which must not block), a device, a folder, a
// file over the limit, a missing file. Each is one wp::Error naming the path.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <sys/stat.h>

#include "test_support.h"
#include "wp/error.h"
#include "wp/io/file_util.h"

namespace wp::test {
namespace {

using testing::HasSubstr;

TEST(ReadTextFile, ReadsARegularFile) {
    TempDir d;
    write_text(d.path() / "a.txt", "hello\n");
    EXPECT_EQ(read_text_file(d.path() / "a.txt"), "hello\n");
    write_text(d.path() / "empty.txt", "");
    EXPECT_EQ(read_text_file(d.path() / "empty.txt"), "");
}

TEST(ReadTextFile, FifoIsRefusedWithoutBlocking) {
    TempDir d;
    const fs::path fifo = d.path() / "config.json";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_THAT(error_of([&] { read_text_file(fifo); }), HasSubstr("config.json: not a regular file"));
    EXPECT_LT(std::chrono::steady_clock::now() - t0, time_bound(std::chrono::seconds(1)));
}

TEST(ReadTextFile, DeviceAndFolderAreRefused) {
    EXPECT_THAT(error_of([] { read_text_file("/dev/zero"); }), HasSubstr("/dev/zero: not a regular file"));
    TempDir d;
    EXPECT_THAT(error_of([&] { read_text_file(d.path()); }), HasSubstr(": a folder, not a file"));
}

TEST(ReadTextFile, OverTheLimitIsRefused) {
    TempDir d;
    write_text(d.path() / "big.json", std::string(100, ' '));
    EXPECT_EQ(read_text_file(d.path() / "big.json", 100).size(), 100u);
    EXPECT_THAT(error_of([&] { read_text_file(d.path() / "big.json", 99); }),
                HasSubstr("big.json: larger than the limit of 99 bytes"));
    EXPECT_THAT(error_of([&] { read_text_file(d.path() / "big.json", std::size_t{1} << 20); }), "no error");
}

TEST(ReadTextFile, MissingFileIsNamed) {
    TempDir d;
    EXPECT_THAT(error_of([&] { read_text_file(d.path() / "nope.json"); }), HasSubstr("nope.json: cannot read"));
}

TEST(WriteFileAtomically, WritesReplacesAndSetsPermissions) {
    TempDir dir;
    const fs::path file = dir.path() / "a" / "b" / "x.txt";
    write_file_atomically(file, "one");
    EXPECT_EQ("one", read_text(file));
    write_file_atomically(file, "two", fs::perms::owner_read | fs::perms::owner_write);
    EXPECT_EQ("two", read_text(file));
    EXPECT_EQ(fs::perms::owner_read | fs::perms::owner_write, fs::status(file).permissions() & fs::perms::all);
    std::size_t entries = 0;
    for (const auto& e : fs::directory_iterator(file.parent_path())) entries += 1, (void)e;
    EXPECT_EQ(1u, entries);  // no temporary file left
    fs::create_directories(dir.path() / "dir");
    EXPECT_THAT(error_of([&] { write_file_atomically(dir.path() / "dir", "x"); }), testing::HasSubstr("cannot write"));
}

}  // namespace
}  // namespace wp::test
