// Ed25519 signatures of an export's manifest.json (pace_edge.integrity.signing), checked with
// OpenSSL (EVP_DigestVerify) against a folder of trusted public keys (PEM).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct evp_pkey_st;  // OpenSSL's EVP_PKEY

namespace pace {

struct TrustedKey {
    std::string path;        // the PEM file
    std::string key_sha256;  // sha256 (hex) of the raw 32-byte public key: the key's id
    std::shared_ptr<evp_pkey_st> key;
};

struct TrustedKeys {
    std::string directory;
    std::vector<TrustedKey> keys;
    const TrustedKey* find(const std::string& key_sha256) const;
};

// Every *.pem Ed25519 public key in `directory`; Error when it is not a folder, holds none,
// or holds a file that is not an Ed25519 public key (a private key is refused by name).
TrustedKeys load_trusted_keys(const std::string& directory);

// Check that `data` (the bytes read from `path`, e.g. DIR/manifest.json) carries a valid
// signature (`path`.sig) by one of `trusted`; return that key. BundleError with one line when
// it is unsigned, signed by another key, malformed, or `data` was altered after signing.
const TrustedKey& verify_signature(const std::string& path, std::string_view data,
                                   const TrustedKeys& trusted);

// Hex sha256 of an Ed25519 public key's raw bytes.
std::string ed25519_key_id(evp_pkey_st* key);

}  // namespace pace
