#include "hub/file_hashes.h"

#include <cstdio>
#include <memory>
#include <openssl/evp.h>
#include <vector>

#include "wp/error.h"

namespace wp {

namespace {

std::string digest_file(const std::filesystem::path& file, const EVP_MD* md, const std::string& prefix) {
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> in(std::fopen(file.c_str(), "rb"), &std::fclose);
    if (!in) throw Error(file.string() + ": cannot read");
    std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    if (!ctx || EVP_DigestInit_ex(ctx.get(), md, nullptr) != 1) throw Error("cannot start a hash (OpenSSL)");
    EVP_DigestUpdate(ctx.get(), prefix.data(), prefix.size());
    std::vector<unsigned char> buf(std::size_t{1} << 20);
    for (std::size_t n; (n = std::fread(buf.data(), 1, buf.size(), in.get())) > 0;) EVP_DigestUpdate(ctx.get(), buf.data(), n);
    if (std::ferror(in.get())) throw Error(file.string() + ": cannot read");
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_DigestFinal_ex(ctx.get(), out, &len);
    static const char* hex = "0123456789abcdef";
    std::string s;
    for (unsigned i = 0; i < len; ++i) s += {hex[out[i] >> 4], hex[out[i] & 15]};
    return s;
}

}  // namespace

std::string sha256_file(const std::filesystem::path& file) { return digest_file(file, EVP_sha256(), ""); }

std::string git_blob_sha1_file(const std::filesystem::path& file) {
    std::string prefix = "blob " + std::to_string(std::filesystem::file_size(file));
    prefix.push_back('\0');
    return digest_file(file, EVP_sha1(), prefix);
}

}  // namespace wp
