// Ed25519 signatures of manifest.json against a folder of trusted public keys: a signed export
// loads; an unsigned one, one signed by another key, and one altered after signing are refused
// with one line; a trusted-keys folder with no key, a private key or a foreign key type is
// refused by name. Keys are made and used with OpenSSL here, as `pace-edge keygen` and
// `pace-edge export --sign` do with Python's cryptography (test_native.py crosses the two).
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include "check.hpp"
#include "pace/errors.hpp"
#include "pace/hash.hpp"
#include "pace/manifest.hpp"
#include "pace/signature.hpp"

using pace::BundleError;

namespace {

using Key = std::shared_ptr<EVP_PKEY>;

std::string temp_dir() {
    char templ[] = "/tmp/pace-signature-XXXXXX";
    const char* dir = ::mkdtemp(templ);
    if (dir == nullptr) throw std::runtime_error("mkdtemp failed");
    return dir;
}

void write(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::binary) << text;
}

Key new_key(int type) {
    std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(EVP_PKEY_CTX_new_id(type, nullptr),
                                                                   &EVP_PKEY_CTX_free);
    EVP_PKEY* key = nullptr;
    if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 ||
        (type == EVP_PKEY_RSA && EVP_PKEY_CTX_set_rsa_keygen_bits(ctx.get(), 1024) != 1) ||
        EVP_PKEY_keygen(ctx.get(), &key) != 1)
        throw std::runtime_error("key generation failed");
    return Key(key, &EVP_PKEY_free);
}

std::string pem(const Key& key, bool private_key) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
    const int ok = private_key
                       ? PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr)
                       : PEM_write_bio_PUBKEY(bio.get(), key.get());
    if (ok != 1) throw std::runtime_error("PEM write failed");
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, size_t(n));
}

// manifest.json.sig as pace_edge.integrity.signing.sign_file writes it.
std::string signature_json(const Key& key, const std::string& data) {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    unsigned char sig[64];
    size_t len = sizeof sig;
    if (EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1 ||
        EVP_DigestSign(ctx.get(), sig, &len, reinterpret_cast<const unsigned char*>(data.data()),
                       data.size()) != 1)
        throw std::runtime_error("signing failed");
    return R"({"format": "pace-edge-signature", "format_version": 1, "algorithm": "ed25519",
              "file": "manifest.json", "key_sha256": ")" +
           pace::ed25519_key_id(key.get()) + R"(", "signature": ")" + pace::to_hex(sig, len) + "\"}\n";
}

std::string manifest_text(const std::string& classes) {
    return R"({"format": "pace-edge-export", "format_version": 1, "target": "openvino",
      "precision": "fp32",
      "artefacts": [{"path": "model.bin", "kind": "openvino-bin", "precision": "fp32",
                     "sha256": ")" + pace::sha256_hex("hello") + R"(", "bytes": 5}],
      "input": {"name": "spectrum", "length": 3, "batch": "dynamic", "axis": [1.0, 2.0, 3.0],
                "preprocessing": [], "dtype": "float32"},
      "output": {"name": "logits", "classes": 2, "dtype": "float32", "kind": "logits"},
      "classes": )" + classes + R"(, "source": {}, "runtime": {}})";
}

// An export signed by `signer`, and a trusted-keys folder holding `trusted`'s public key.
struct Fixture {
    std::string root = temp_dir();
    std::string dir = root + "/export";
    std::string keys = root + "/trusted";
    Key owner = new_key(EVP_PKEY_ED25519);
    Key stranger = new_key(EVP_PKEY_ED25519);

    Fixture() {
        ::mkdir(dir.c_str(), 0755);
        ::mkdir(keys.c_str(), 0755);
        write(dir + "/model.bin", "hello");
        write(keys + "/owner.pub.pem", pem(owner, false));
        publish(manifest_text(R"(["a", "b"])"));
    }
    ~Fixture() { std::system(("rm -rf '" + root + "'").c_str()); }

    void publish(const std::string& text) {  // manifest.json + digest, as write_manifest does
        write(dir + "/manifest.json", text);
        write(dir + "/manifest.json.sha256", pace::sha256_hex(text) + "  manifest.json\n");
    }
    void sign(const Key& key) {
        std::ifstream in(dir + "/manifest.json", std::ios::binary);
        const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        write(dir + "/manifest.json.sig", signature_json(key, text));
    }
};

}  // namespace

TEST(a_signed_export_by_a_trusted_key_loads) {
    Fixture f;
    f.sign(f.owner);
    const pace::TrustedKeys trusted = pace::load_trusted_keys(f.keys);
    CHECK(trusted.keys.size() == 1 && trusted.keys[0].key_sha256 == pace::ed25519_key_id(f.owner.get()));
    const pace::Manifest m = pace::load_manifest(f.dir, &trusted);
    CHECK(m.classes.size() == 2 && m.classes[1] == "b");
}

TEST(an_unsigned_export_is_refused) {
    Fixture f;
    const pace::TrustedKeys trusted = pace::load_trusted_keys(f.keys);
    CHECK(pace::load_manifest(f.dir).classes.size() == 2);  // fine without --trusted-keys
    CHECK_THROWS(pace::load_manifest(f.dir, &trusted), BundleError,
                 f.dir + " is not signed (manifest.json.sig is missing) and only exports signed by one "
                         "of the 1 trusted key in " + f.keys + " may run; sign it with pace-edge export --sign KEY");
}

TEST(an_export_signed_by_another_key_is_refused) {
    Fixture f;
    f.sign(f.stranger);
    const pace::TrustedKeys trusted = pace::load_trusted_keys(f.keys);
    CHECK_THROWS(pace::load_manifest(f.dir, &trusted), BundleError,
                 f.dir + " is signed by key " + pace::ed25519_key_id(f.stranger.get()).substr(0, 16) +
                     "…, which is not one of the 1 trusted key in " + f.keys);
    // ... and accepted once that key is trusted too
    write(f.keys + "/stranger.pem", pem(f.stranger, false));
    const pace::TrustedKeys both = pace::load_trusted_keys(f.keys);
    CHECK(both.keys.size() == 2);
    CHECK(pace::load_manifest(f.dir, &both).classes[0] == "a");
}

TEST(an_export_altered_after_signing_is_refused) {
    Fixture f;
    f.sign(f.owner);
    const pace::TrustedKeys trusted = pace::load_trusted_keys(f.keys);
    f.publish(manifest_text(R"(["a", "renamed"])"));  // digest recomputed: only the signature can tell
    CHECK(pace::load_manifest(f.dir).classes[1] == "renamed");
    CHECK_THROWS(pace::load_manifest(f.dir, &trusted), BundleError,
                 f.dir + "/manifest.json: the signature by trusted key owner.pub.pem does not match: "
                         "manifest.json was altered after signing");
    // a corrupted signature reads the same
    f.publish(manifest_text(R"(["a", "b"])"));
    f.sign(f.owner);
    std::ifstream in(f.dir + "/manifest.json.sig");
    std::string sig((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t at = sig.find("\"signature\": \"") + 14;
    sig[at] = sig[at] == '0' ? '1' : '0';
    write(f.dir + "/manifest.json.sig", sig);
    CHECK_THROWS(pace::load_manifest(f.dir, &trusted), BundleError, "was altered after signing");
    write(f.dir + "/manifest.json.sig", "{\"format\": \"other\"}");
    CHECK_THROWS(pace::load_manifest(f.dir, &trusted), BundleError, "not a pace-edge signature");
}

TEST(bad_trusted_key_folders_are_refused) {
    Fixture f;
    CHECK_THROWS(pace::load_trusted_keys(f.root + "/nowhere"), pace::Error, "is not a directory");
    const std::string empty = f.root + "/empty";
    ::mkdir(empty.c_str(), 0755);
    write(empty + "/README", "public keys go here");
    CHECK_THROWS(pace::load_trusted_keys(empty), pace::Error, "holds no public key (*.pem)");
    write(f.keys + "/owner.key.pem", pem(f.owner, true));
    CHECK_THROWS(pace::load_trusted_keys(f.keys), pace::Error,
                 "owner.key.pem holds a private key; a trusted-keys folder holds public keys only");
    ::unlink((f.keys + "/owner.key.pem").c_str());
    write(f.keys + "/rsa.pem", pem(new_key(EVP_PKEY_RSA), false));
    CHECK_THROWS(pace::load_trusted_keys(f.keys), pace::Error, "rsa.pem: not an Ed25519 public key");
    write(f.keys + "/rsa.pem", "-----BEGIN PUBLIC KEY-----\nnonsense\n-----END PUBLIC KEY-----\n");
    CHECK_THROWS(pace::load_trusted_keys(f.keys), pace::Error, "rsa.pem: not a PEM public key");
}

TEST_MAIN()
