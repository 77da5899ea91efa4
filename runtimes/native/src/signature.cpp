#include "pace/signature.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "pace/errors.hpp"
#include "pace/hash.hpp"
#include "pace/json.hpp"

namespace pace {

namespace {

namespace fs = std::filesystem;

constexpr const char* kFormat = "pace-edge-signature";
constexpr int kFormatVersion = 1;

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) throw Error(path + ": cannot be read");
    return text.str();
}

std::string base_name(const std::string& path) { return fs::path(path).filename().string(); }

std::string parent(const std::string& path) {
    const std::string p = fs::path(path).parent_path().string();
    return p.empty() ? "." : p;
}

bool hex_decode(const std::string& hex, std::vector<unsigned char>& out) {
    if (hex.size() % 2) return false;
    out.clear();
    for (size_t i = 0; i < hex.size(); i += 2) {
        int v = 0;
        for (size_t k = i; k < i + 2; ++k) {
            const char c = hex[k];
            const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                        : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
            if (d < 0) return false;
            v = v * 16 + d;
        }
        out.push_back(static_cast<unsigned char>(v));
    }
    return true;
}

TrustedKey load_public_key(const std::string& path) {
    const std::string pem = read_file(path);
    if (pem.find("PRIVATE KEY") != std::string::npos)
        throw Error(path + " holds a private key; a trusted-keys folder holds public keys only "
                           "(NAME.pub.pem from pace-edge keygen)");
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), int(pem.size())),
                                                  &BIO_free);
    EVP_PKEY* key = bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr;
    if (key == nullptr) throw Error(path + ": not a PEM public key");
    std::shared_ptr<evp_pkey_st> owned(key, &EVP_PKEY_free);
    if (EVP_PKEY_id(key) != EVP_PKEY_ED25519) throw Error(path + ": not an Ed25519 public key");
    return TrustedKey{path, ed25519_key_id(key), owned};
}

}  // namespace

std::string ed25519_key_id(evp_pkey_st* key) {
    unsigned char raw[32];
    size_t len = sizeof raw;
    if (EVP_PKEY_get_raw_public_key(key, raw, &len) != 1 || len != sizeof raw)
        throw Error("cannot read an Ed25519 public key's bytes");
    return sha256_hex(std::string_view(reinterpret_cast<const char*>(raw), len));
}

const TrustedKey* TrustedKeys::find(const std::string& key_sha256) const {
    for (const TrustedKey& k : keys)
        if (k.key_sha256 == key_sha256) return &k;
    return nullptr;
}

TrustedKeys load_trusted_keys(const std::string& directory) {
    std::error_code ec;
    if (!fs::is_directory(directory, ec))
        throw Error("trusted keys: " + directory + " is not a directory");
    std::vector<std::string> files;
    for (const auto& entry : fs::directory_iterator(directory, ec))
        if (entry.is_regular_file() && entry.path().extension() == ".pem")
            files.push_back(entry.path().string());
    if (ec) throw Error("trusted keys: cannot list " + directory + " (" + ec.message() + ")");
    std::sort(files.begin(), files.end());
    TrustedKeys trusted{directory, {}};
    for (const std::string& f : files) trusted.keys.push_back(load_public_key(f));
    if (trusted.keys.empty())
        throw Error("trusted keys: " + directory + " holds no public key (*.pem); copy the "
                    "NAME.pub.pem that pace-edge keygen wrote there");
    return trusted;
}

const TrustedKey& verify_signature(const std::string& path, std::string_view data,
                                   const TrustedKeys& trusted) {
    const std::string sig_path = path + ".sig";
    const std::string name = base_name(path);
    const size_t n = trusted.keys.size();
    const std::string keys = std::to_string(n) + " trusted key" + (n != 1 ? "s" : "") + " in " +
                             trusted.directory;
    if (!fs::is_regular_file(sig_path))
        throw BundleError(parent(path) + " is not signed (" + name + ".sig is missing) and only "
                          "exports signed by one of the " + keys + " may run; sign it with "
                          "pace-edge export --sign KEY");
    json::Value doc;
    try {
        doc = json::parse(read_file(sig_path));
    } catch (const Error& e) {
        throw BundleError(sig_path + ": unreadable signature (" + e.what() + ")");
    }
    const json::Value* format = doc.find("format");
    const json::Value* key_id = doc.find("key_sha256");
    const json::Value* signature = doc.find("signature");
    if (format == nullptr || !format->is_string() || format->as_string() != kFormat ||
        key_id == nullptr || !key_id->is_string() || signature == nullptr || !signature->is_string())
        throw BundleError(sig_path + ": not a pace-edge signature");
    const json::Value* version = doc.find("format_version");
    const json::Value* algorithm = doc.find("algorithm");
    if (version == nullptr || !version->is_integer() || version->as_integer() != kFormatVersion ||
        algorithm == nullptr || !algorithm->is_string() || algorithm->as_string() != "ed25519")
        throw BundleError(sig_path + ": unsupported signature (format " +
                          (version ? version->dump() : std::string("None")) + ", " +
                          (algorithm ? algorithm->dump() : std::string("None")) +
                          "); expected ed25519");
    const json::Value* file = doc.find("file");
    if (file == nullptr || !file->is_string() || file->as_string() != name)
        throw BundleError(sig_path + ": signs " + (file ? file->dump() : std::string("None")) +
                          ", not " + name);
    const TrustedKey* signer = trusted.find(key_id->as_string());
    if (signer == nullptr)
        throw BundleError(parent(path) + " is signed by key " + key_id->as_string().substr(0, 16) +
                          "…, which is not one of the " + keys);
    std::vector<unsigned char> sig;
    bool ok = hex_decode(signature->as_string(), sig);
    if (ok) {
        std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                                   &EVP_MD_CTX_free);
        ok = ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, signer->key.get()) == 1 &&
             EVP_DigestVerify(ctx.get(), sig.data(), sig.size(),
                              reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1;
    }
    if (!ok) {
        ERR_clear_error();
        throw BundleError(path + ": the signature by trusted key " + base_name(signer->path) +
                          " does not match: " + name + " was altered after signing");
    }
    return *signer;
}

}  // namespace pace
