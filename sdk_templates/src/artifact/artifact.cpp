// SPDX-License-Identifier: Apache-2.0
#include "artifact/artifact.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <new>
#include <system_error>
#include <thread>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "artifact/crypto.h"
#include "artifact/hpke.h"

namespace edgepack {
namespace {

constexpr char kContentKeyInfo[] = "edgepack/v1 content key";
constexpr char kSectionKeyInfo[] = "edgepack/v1 section";
constexpr char kWrapKeyInfo[] = "edgepack/v1 section wrap";
constexpr char kStableChunkLabel[] = "edgepack/v1 stable chunk";
constexpr size_t kAlignment = 64;

double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

// Sections of 8 MiB and more (model weights) go on 2 MiB boundaries and ask for transparent
// huge pages: decryption then faults in 512x fewer pages (on Linux with THP in "madvise" mode;
// elsewhere the advice is ignored).
constexpr size_t kHugePage = size_t{2} << 20;

size_t alignment_for(size_t size) {
  return size >= 4 * kHugePage ? kHugePage : kAlignment;
}

uint8_t* alloc_aligned(size_t size) {
  // Rounded up to the alignment so that every size (0 included) gets a distinct buffer.
  const size_t align = alignment_for(size);
  const size_t rounded = (size / align + 1) * align;
  auto* p = static_cast<uint8_t*>(::operator new[](rounded, std::align_val_t(align)));
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (align == kHugePage) madvise(p, rounded, MADV_HUGEPAGE);
#endif
  return p;
}

void free_aligned(uint8_t* p, size_t size) {
  ::operator delete[](p, std::align_val_t(alignment_for(size)));
}

// Appends the low `bytes` bytes of v, least significant first.
void append_le(std::vector<uint8_t>& out, uint64_t v, int bytes) {
  for (int b = 0; b < bytes; ++b) out.push_back(static_cast<uint8_t>(v >> (8 * b)));
}

// section_key[i] = HKDF-SHA256(salt = "", ikm = CK, info = "edgepack/v1 section" || u32le(i) ||
// name_i, L = 32)
bool derive_section_key(const uint8_t content_key[32], uint32_t index, const std::string& name,
                        uint8_t out[32]) {
  std::vector<uint8_t> info(kSectionKeyInfo, kSectionKeyInfo + sizeof(kSectionKeyInfo) - 1);
  append_le(info, index, 4);
  info.insert(info.end(), name.begin(), name.end());
  crypto::Secret<32> prk;
  return crypto::hkdf_extract(nullptr, 0, content_key, 32, prk.data()) &&
         crypto::hkdf_expand(prk.data(), prk.size(), info.data(), info.size(), out, 32);
}

// wrap_key = HKDF-SHA256(salt = "", ikm = CK, info = "edgepack/v1 section wrap", L = 32)
bool derive_wrap_key(const uint8_t content_key[32], uint8_t out[32]) {
  crypto::Secret<32> prk;
  return crypto::hkdf_extract(nullptr, 0, content_key, 32, prk.data()) &&
         crypto::hkdf_expand(prk.data(), prk.size(), reinterpret_cast<const uint8_t*>(kWrapKeyInfo),
                             sizeof(kWrapKeyInfo) - 1, out, 32);
}

void append_str16(std::vector<uint8_t>& out, const std::string& s) {
  append_le(out, s.size(), 2);
  out.insert(out.end(), s.begin(), s.end());
}

// Stable sections (artifact-format.md): every section key, unwrapped in table order.
//   wrapped_key_i = AES-256-GCM(wrap_key, nonce = 0x00 * 8 || u32_be(i),
//                               aad = SHA-256(header[0, table_offset)) || name_i)
// Any failure is "unseal"; `keys` (32 bytes per section) is wiped by its owner.
void unwrap_section_keys(const epk::Header& h, const uint8_t* file, const uint8_t content_key[32],
                         std::vector<uint8_t>& keys) {
  crypto::Secret<32> wrap_key;
  uint8_t prefix_digest[crypto::kSha256Size];
  if (!derive_wrap_key(content_key, wrap_key.data()) ||
      !crypto::sha256(file, h.table_offset, prefix_digest)) {
    throw ArtifactInvalid("unseal");
  }
  keys.assign(32 * h.sections.size(), 0);
  std::vector<uint8_t> aad(prefix_digest, prefix_digest + sizeof(prefix_digest));
  for (size_t i = 0; i < h.sections.size(); ++i) {
    const epk::SectionEntry& s = h.sections[i];
    aad.resize(sizeof(prefix_digest));
    aad.insert(aad.end(), s.name.begin(), s.name.end());
    uint8_t nonce[crypto::kGcmNonceSize] = {};
    for (int b = 0; b < 4; ++b) nonce[11 - b] = static_cast<uint8_t>(i >> (8 * b));
    if (!crypto::aes_gcm_open(wrap_key.data(), 32, nonce, aad.data(), aad.size(),
                              s.wrapped_key.data(), s.wrapped_key.size(), &keys[32 * i])) {
      throw ArtifactInvalid("unseal");
    }
  }
}

// nonce_j = 0x00 * 7 || u32_be(j) || last_flag
void chunk_nonce(uint32_t j, bool last, uint8_t nonce[12]) {
  std::memset(nonce, 0, 12);
  nonce[7] = static_cast<uint8_t>(j >> 24);
  nonce[8] = static_cast<uint8_t>(j >> 16);
  nonce[9] = static_cast<uint8_t>(j >> 8);
  nonce[10] = static_cast<uint8_t>(j);
  nonce[11] = last ? 0x01 : 0x00;
}

struct Signature {
  bool ok = false;
  double done_ms = 0.0;  // since the open started
};

// Step 2 of the verification order (artifact-format.md, "Signature"). Whole-file mode: Ed25519
// over [0, file_len - 64), one SHA-512 pass, on one other thread. Block-hash mode: the SHA-256
// of every 1 MiB block is one unit of work, taken by hardware_concurrency - 1 other threads and,
// once it has decrypted, by the opening thread too, then Ed25519 over the short block message.
// One pool of work beat hashing beside the decryption: on 2 cores a 100 MB artifact opened in
// 94 ms this way, 120 ms with 2 threads hashing beside it, 191 ms whole-file (best of 8).
// start() returns false when nothing runs elsewhere (one core, no thread to be had): finish()
// then does it all, before anything is decrypted. finish() may be called more than once.
class SignatureCheck {
 public:
  SignatureCheck(const epk::Header& h, const uint8_t* data, size_t signed_len,
                 const PublisherKey& publisher, std::chrono::steady_clock::time_point t_start)
      : data_(data),
        signed_len_(signed_len),
        publisher_(publisher),
        t_start_(t_start),
        blocks_(h.block_signature()) {
    if (!blocks_) return;
    block_count_ = (signed_len + epk::kSignatureBlockSize - 1) / epk::kSignatureBlockSize;
    // prefix (its NUL included) || u64le(signed_len) || u32le(block_size) || SHA-256 of each
    message_.assign(epk::kBlockSignaturePrefix,
                    epk::kBlockSignaturePrefix + sizeof(epk::kBlockSignaturePrefix));
    append_le(message_, signed_len, 8);
    append_le(message_, epk::kSignatureBlockSize, 4);
    digests_at_ = message_.size();
    message_.resize(digests_at_ + crypto::kSha256Size * block_count_);
  }
  SignatureCheck(const SignatureCheck&) = delete;
  SignatureCheck& operator=(const SignatureCheck&) = delete;
  ~SignatureCheck() { wait(); }

  bool start() {
    const unsigned cores = std::thread::hardware_concurrency();
    if (cores <= 1) return false;
    const unsigned helpers =
        blocks_ ? static_cast<unsigned>(std::min<size_t>(cores - 1, block_count_)) : 1;
    for (unsigned t = 0; t < helpers; ++t) {
      try {
        if (blocks_)
          pending_.push_back(std::async(std::launch::async, [this] { hash_blocks(); }));
        else
          whole_ = std::async(std::launch::async, [this] { return verify_whole(); });
      } catch (const std::system_error&) {  // no thread to be had: the rest is done here
        break;
      }
    }
    return !pending_.empty() || whole_.valid();
  }

  Signature finish() {
    if (done_) return result_;
    if (!blocks_) {
      result_ = whole_.valid() ? whole_.get() : verify_whole();
    } else {
      hash_blocks();
      wait();
      result_.ok =
          !hash_failed_.load() && crypto::ed25519_verify(publisher_.pkey(), message_.data(),
                                                         message_.size(), data_ + signed_len_);
      result_.done_ms = ms_since(t_start_);
    }
    done_ = true;
    return result_;
  }

 private:
  Signature verify_whole() const {
    Signature sig;
    sig.ok = crypto::ed25519_verify(publisher_.pkey(), data_, signed_len_, data_ + signed_len_);
    sig.done_ms = ms_since(t_start_);
    return sig;
  }

  // Takes blocks until none is left; each digest goes to its own place in the message.
  void hash_blocks() {
    for (size_t b = next_.fetch_add(1); b < block_count_; b = next_.fetch_add(1)) {
      const size_t begin = b * epk::kSignatureBlockSize;
      const size_t len = std::min<size_t>(epk::kSignatureBlockSize, signed_len_ - begin);
      if (!crypto::sha256(data_ + begin, len, &message_[digests_at_ + crypto::kSha256Size * b]))
        hash_failed_.store(true);
    }
  }

  void wait() {
    for (auto& f : pending_) f.wait();
    if (whole_.valid()) whole_.wait();
  }

  const uint8_t* data_;
  size_t signed_len_;
  const PublisherKey& publisher_;
  std::chrono::steady_clock::time_point t_start_;
  bool blocks_;
  size_t block_count_ = 0;
  size_t digests_at_ = 0;
  std::vector<uint8_t> message_;
  std::atomic<size_t> next_{0};
  std::atomic<bool> hash_failed_{false};
  std::vector<std::future<void>> pending_;
  std::future<Signature> whole_;
  bool done_ = false;
  Signature result_;
};

}  // namespace

std::unique_ptr<Artifact> Artifact::open_file(const std::string& path, const DeviceKey& device,
                                              const PublisherKey& publisher,
                                              const OpenOptions& options) {
  const std::string bytes = read_whole_file(path, "artifact");
  return open(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), device, publisher,
              options);
}

// Steps 4 and 5 of the verification order: unseal the content key, then decrypt and
// authenticate every section chunk by chunk, in table order (manifest first). Each plaintext is
// owned (wiped and freed by ~Artifact) from the moment it is allocated.
void Artifact::decrypt_sections(const uint8_t* data, const DeviceKey& device) {
  const epk::Header& h = header_;
  const epk::RecipientStanza* stanza = nullptr;
  for (const epk::RecipientStanza& r : h.recipients) {
    if (r.key_id == device.key_id()) {
      stanza = &r;
      break;
    }
  }
  if (stanza == nullptr) throw ArtifactInvalid("not_recipient");
  crypto::Secret<32> content_key;
  if (!hpke::open_base_first(hpke::kEdgepackSuite, device.pkey(), stanza->enc.data(),
                             reinterpret_cast<const uint8_t*>(kContentKeyInfo),
                             sizeof(kContentKeyInfo) - 1, nullptr, 0,
                             stanza->sealed_content_key.data(), stanza->sealed_content_key.size(),
                             content_key.data())) {
    throw ArtifactInvalid("unseal");
  }
  // Stable sections: every key is unwrapped (step 4, reason "unseal") before any section is
  // decrypted, and each chunk's AAD names the package and the section; otherwise the keys are
  // derived from CK and every chunk's AAD is the header digest.
  struct WipedBytes {
    std::vector<uint8_t> v;
    ~WipedBytes() { crypto::wipe(v.data(), v.size()); }
  } stable_keys;
  const bool stable = h.stable_sections();
  if (stable) unwrap_section_keys(h, data, content_key.data(), stable_keys.v);
  uint8_t header_digest[crypto::kSha256Size];
  if (!stable && !crypto::sha256(data, h.header_len, header_digest)) {
    throw ArtifactInvalid("chunk");
  }
  std::vector<uint8_t> aad;
  plaintexts_.reserve(h.sections.size());
  crypto::GcmStreamOpener opener;
  for (size_t i = 0; i < h.sections.size(); ++i) {
    const epk::SectionEntry& s = h.sections[i];
    Plaintext pt;
    pt.size = static_cast<size_t>(s.plaintext_size);
    pt.data = alloc_aligned(pt.size);
    plaintexts_.push_back(pt);
    if (stable) {
      // aad = "edgepack/v1 stable chunk" || str16(package_name) || str16(name_i)
      aad.assign(kStableChunkLabel, kStableChunkLabel + sizeof(kStableChunkLabel) - 1);
      append_str16(aad, h.package_name);
      append_str16(aad, s.name);
      if (!opener.set_key(&stable_keys.v[32 * i])) throw ArtifactInvalid("chunk");
    } else {
      aad.assign(header_digest, header_digest + sizeof(header_digest));
      crypto::Secret<32> key;
      if (!derive_section_key(content_key.data(), static_cast<uint32_t>(i), s.name, key.data()) ||
          !opener.set_key(key.data())) {
        throw ArtifactInvalid("chunk");
      }
    }
    const uint8_t* ct = data + s.offset;
    uint64_t done = 0;
    for (uint64_t j = 0; j < s.chunk_count; ++j) {
      const bool last = j + 1 == s.chunk_count;
      const uint64_t chunk = last ? s.plaintext_size - done : h.chunk_size;
      uint8_t nonce[crypto::kGcmNonceSize];
      chunk_nonce(static_cast<uint32_t>(j), last, nonce);
      if (!opener.open(nonce, aad.data(), aad.size(), ct,
                       static_cast<size_t>(chunk) + epk::kTagSize, pt.data + done)) {
        throw ArtifactInvalid("chunk");
      }
      ct += chunk + epk::kTagSize;
      done += chunk;
    }
    index_.emplace(s.name, i);
  }
  // The last opener key schedule is wiped when `opener` is freed (EVP_CIPHER_CTX_free).
}

std::unique_ptr<Artifact> Artifact::open(const uint8_t* data, size_t size, const DeviceKey& device,
                                         const PublisherKey& publisher,
                                         const OpenOptions& options) {
  std::unique_ptr<Artifact> a(new Artifact());
  const auto t_start = std::chrono::steady_clock::now();

  // 1. Layout: nothing past the header is read before it passes.
  a->header_ = epk::parse_layout(data, size);
  const epk::Header& h = a->header_;

  // 2. The signature, with the key the app supplies, is the longest step with 4-5. On a machine
  //    with more than one core it is checked on other threads while this one unseals and
  //    decrypts (SignatureCheck). Nothing decrypted leaves this function unless the signature
  //    holds, and the failure reported is the first in the documented order
  //    (artifact-format.md).
  SignatureCheck signature_check(h, data, size - epk::kSignatureSize, publisher, t_start);
  const bool concurrent = signature_check.start();
  Signature signature;
  if (!concurrent) signature = signature_check.finish();
  std::string decrypt_failure;
  if (concurrent || signature.ok) {
    try {
      a->decrypt_sections(data, device);
    } catch (const ArtifactInvalid& e) {
      decrypt_failure = e.reason();
    }  // anything else propagates: ~SignatureCheck waits for its threads, ~Artifact wipes
  }
  const double decrypt_done_ms = ms_since(t_start);
  if (concurrent) signature = signature_check.finish();
  if (!signature.ok) throw ArtifactInvalid("signature");
  // The header's informational publisher key must name the key the app supplied.
  if (h.publisher_key != publisher.raw()) throw ArtifactInvalid("publisher");
  // 3. Rollback counter.
  if (h.version_counter < options.min_counter) throw ArtifactInvalid("counter");
  if (!decrypt_failure.empty()) throw ArtifactInvalid(decrypt_failure);
  // verify_ms: until the signature held; decrypt_ms: what decryption added after that (0 when
  // it finished first), so that the two add up to the wall time of the whole open.
  a->timing_.verify_ms = signature.done_ms;
  a->timing_.decrypt_ms =
      decrypt_done_ms > signature.done_ms ? decrypt_done_ms - signature.done_ms : 0.0;
  return a;
}

Artifact::~Artifact() {
  for (Plaintext& p : plaintexts_) {
    crypto::wipe(p.data, p.size);
    free_aligned(p.data, p.size);
  }
}

std::string Artifact::manifest_json() const {
  const Plaintext& p = plaintexts_.at(0);
  return std::string(reinterpret_cast<const char*>(p.data), p.size);
}

std::vector<std::string> Artifact::section_names() const {
  std::vector<std::string> names;
  names.reserve(header_.sections.size());
  for (const epk::SectionEntry& s : header_.sections) names.push_back(s.name);
  return names;
}

const uint8_t* Artifact::section(const std::string& name, size_t* size) const {
  const auto it = index_.find(name);
  if (it == index_.end())
    throw Error(ErrorCode::kNotFound, "artifact has no section '" + name + "'");
  const Plaintext& p = plaintexts_[it->second];
  if (size != nullptr) *size = p.size;
  return p.data;
}

}  // namespace edgepack
