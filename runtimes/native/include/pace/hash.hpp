// SHA-256 and MD5 through OpenSSL's EVP interface: artefact and manifest verification, OBP
// checksums.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

struct evp_md_ctx_st;  // OpenSSL's EVP_MD_CTX

namespace pace {

// An incremental message digest (EVP_DigestInit_ex / Update / Final_ex). N: digest bytes.
template <size_t N>
class EvpDigest {
public:
    void update(const void* data, size_t n);
    std::array<std::uint8_t, N> digest();  // finalises; the object must not be reused

protected:
    explicit EvpDigest(const char* algorithm);

private:
    struct Free {
        void operator()(evp_md_ctx_st* ctx) const;
    };
    std::unique_ptr<evp_md_ctx_st, Free> ctx_;
};

class Sha256 : public EvpDigest<32> {
public:
    Sha256() : EvpDigest("SHA256") {}
};

class Md5 : public EvpDigest<16> {
public:
    Md5() : EvpDigest("MD5") {}
};

extern template class EvpDigest<32>;
extern template class EvpDigest<16>;

std::string to_hex(const std::uint8_t* data, size_t n);
std::string sha256_hex(std::string_view data);
std::string md5_hex(std::string_view data);
std::array<std::uint8_t, 16> md5(const void* data, size_t n);

// Hex SHA-256 of a file's contents, streamed; BundleError when it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace pace
