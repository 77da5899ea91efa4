#include "pace/hash.hpp"

#include <openssl/evp.h>

#include <fstream>
#include <vector>

#include "pace/errors.hpp"

namespace pace {

template <size_t N>
void EvpDigest<N>::Free::operator()(evp_md_ctx_st* ctx) const {
    EVP_MD_CTX_free(ctx);
}

template <size_t N>
EvpDigest<N>::EvpDigest(const char* algorithm) : ctx_(EVP_MD_CTX_new()) {
    const EVP_MD* md = EVP_get_digestbyname(algorithm);
    if (!ctx_ || md == nullptr || EVP_MD_size(md) != int(N) ||
        EVP_DigestInit_ex(ctx_.get(), md, nullptr) != 1)
        throw Error(std::string("OpenSSL cannot compute ") + algorithm);
}

template <size_t N>
void EvpDigest<N>::update(const void* data, size_t n) {
    if (n > 0 && EVP_DigestUpdate(ctx_.get(), data, n) != 1) throw Error("OpenSSL digest update failed");
}

template <size_t N>
std::array<std::uint8_t, N> EvpDigest<N>::digest() {
    std::array<std::uint8_t, N> out{};
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(ctx_.get(), out.data(), &len) != 1 || len != N)
        throw Error("OpenSSL digest failed");
    return out;
}

template class EvpDigest<32>;
template class EvpDigest<16>;

std::string to_hex(const std::uint8_t* data, size_t n) {
    static const char* digits = "0123456789abcdef";
    std::string out(2 * n, '0');
    for (size_t i = 0; i < n; ++i) {
        out[2 * i] = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 15];
    }
    return out;
}

std::string sha256_hex(std::string_view data) {
    Sha256 h;
    h.update(data.data(), data.size());
    auto d = h.digest();
    return to_hex(d.data(), d.size());
}

std::string md5_hex(std::string_view data) {
    auto d = md5(data.data(), data.size());
    return to_hex(d.data(), d.size());
}

std::array<std::uint8_t, 16> md5(const void* data, size_t n) {
    Md5 h;
    h.update(data, n);
    return h.digest();
}

std::string sha256_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw BundleError(path + ": cannot be read");
    Sha256 h;
    std::vector<char> buf(1 << 16);
    while (in) {
        in.read(buf.data(), std::streamsize(buf.size()));
        h.update(buf.data(), size_t(in.gcount()));
    }
    if (in.bad()) throw BundleError(path + ": read error");
    auto d = h.digest();
    return to_hex(d.data(), d.size());
}

}  // namespace pace
