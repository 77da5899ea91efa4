// Compact SHA-256 (FIPS 180-4) and MD5 (RFC 1321): artefact verification and OBP checksums.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace pace {

class Sha256 {
public:
    Sha256();
    void update(const void* data, size_t n);
    std::array<std::uint8_t, 32> digest();  // finalises; the object must not be reused

private:
    void block(const std::uint8_t* p);
    std::uint32_t h_[8];
    std::uint8_t buf_[64];
    size_t used_ = 0;
    std::uint64_t total_ = 0;
};

class Md5 {
public:
    Md5();
    void update(const void* data, size_t n);
    std::array<std::uint8_t, 16> digest();  // finalises; the object must not be reused

private:
    void block(const std::uint8_t* p);
    std::uint32_t h_[4];
    std::uint8_t buf_[64];
    size_t used_ = 0;
    std::uint64_t total_ = 0;
};

std::string to_hex(const std::uint8_t* data, size_t n);
std::string sha256_hex(std::string_view data);
std::string md5_hex(std::string_view data);
std::array<std::uint8_t, 16> md5(const void* data, size_t n);

// Hex SHA-256 of a file's contents, streamed; BundleError when it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace pace
