// SPDX-License-Identifier: Apache-2.0
// KEYGEN: create the device's X25519 key on the device (PROTOCOL.md section 8b).
//
// The private key is written as PKCS#8 PEM (what the runner's OpenSSL reads) to
// <root>/.edgepack/keys/<name>.key, mode 0600 in a 0700 folder, outside the content store
// and outside every path INSTALL, GET and RUN accept. Only the public key goes back.
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "agent.h"
#include "x25519.h"

namespace epagent {
namespace {

// DER of PKCS#8 PrivateKeyInfo for X25519 (RFC 8410) up to the 32 key bytes.
const uint8_t kPkcs8Prefix[16] = {0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06,
                                  0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20};
const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64(const uint8_t* d, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = uint32_t(d[i]) << 16;
    if (i + 1 < n) v |= uint32_t(d[i + 1]) << 8;
    if (i + 2 < n) v |= d[i + 2];
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    out += i + 1 < n ? kB64[(v >> 6) & 63] : '=';
    out += i + 2 < n ? kB64[v & 63] : '=';
  }
  return out;
}

bool unbase64(const std::string& s, std::string* out) {
  uint32_t v = 0;
  int bits = 0;
  for (char ch : s) {
    if (ch == '=' || ch == '\n' || ch == '\r') continue;
    const char* p = std::strchr(kB64, ch);
    if (p == nullptr || ch == '\0') return false;
    v = (v << 6) | uint32_t(p - kB64);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      *out += char((v >> bits) & 0xff);
    }
  }
  return true;
}

bool valid_key_name(const std::string& n) {
  if (n.empty() || n.size() > 32) return false;
  for (char c : n)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) return false;
  return true;
}

// The 32 private bytes of a key file this agent wrote; false if it is not one.
bool read_private(const std::string& path, uint8_t key[32]) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[512];
  ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  if (n <= 0) return false;
  std::string text(buf, size_t(n)), der;
  const std::string begin = "-----BEGIN PRIVATE KEY-----", end = "-----END PRIVATE KEY-----";
  size_t b = text.find(begin), e = text.find(end);
  if (b == std::string::npos || e == std::string::npos || e < b) return false;
  b += begin.size();
  if (!unbase64(text.substr(b, e - b), &der) || der.size() != 48 ||
      std::memcmp(der.data(), kPkcs8Prefix, 16) != 0)
    return false;
  std::memcpy(key, der.data() + 16, 32);
  std::memset(&der[0], 0, der.size());
  std::memset(buf, 0, sizeof buf);
  return true;
}

// Writes the PEM to a 0600 temp file, fsyncs it and renames it over `path`.
bool write_private(const std::string& dir, const std::string& path, const uint8_t key[32]) {
  uint8_t der[48];
  std::memcpy(der, kPkcs8Prefix, 16);
  std::memcpy(der + 16, key, 32);
  std::string pem =
      "-----BEGIN PRIVATE KEY-----\n" + base64(der, sizeof der) + "\n-----END PRIVATE KEY-----\n";
  std::memset(der, 0, sizeof der);
  const std::string tmp = path + ".tmp";
  ::unlink(tmp.c_str());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  bool ok = fd >= 0 && ::fchmod(fd, 0600) == 0 &&
            write_all(fd, reinterpret_cast<const uint8_t*>(pem.data()), pem.size()) &&
            ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  std::memset(&pem[0], 0, pem.size());
  ok = ok && ::rename(tmp.c_str(), path.c_str()) == 0 && fsync_dir(dir);
  if (!ok) ::unlink(tmp.c_str());
  return ok;
}

}  // namespace

bool random_bytes(uint8_t* out, size_t n) {
  int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::read(fd, out + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += size_t(r);
  }
  ::close(fd);
  return got == n;
}

std::string Agent::keys_dir() const {
  return cfg_.root + "/.edgepack/keys";
}

void Agent::on_keygen(uint32_t seq, const Fields& in) {
  std::string name = "device";
  int64_t replace = 0, create = 1;
  in.get_str("name", &name);
  in.get_int("replace", &replace);
  in.get_int("create", &create);
  if (!valid_key_name(name)) {
    send_error(seq, "bad_request", "key name must be 1-32 of a-z 0-9 - _");
    return;
  }
  const std::string dir = keys_dir(), rel = ".edgepack/keys/" + name + ".key";
  const std::string path = dir + "/" + name + ".key";
  if (!make_private_dir(cfg_.root + "/.edgepack") || !make_private_dir(dir)) {
    send_error(seq, "io", "cannot create " + dir + ": " + std::strerror(errno));
    return;
  }
  uint8_t priv[32], pub[32];
  bool created = false;
  struct stat st {};
  const bool exists = ::lstat(path.c_str(), &st) == 0;
  if (!exists && !create) {
    send_error(seq, "not_found", "no key " + rel + " on the device");
    return;
  }
  if (replace || !exists) {
    if (!random_bytes(priv, sizeof priv)) {
      send_error(seq, "io", "cannot read /dev/urandom");
      return;
    }
    if (!write_private(dir, path, priv)) {
      std::memset(priv, 0, sizeof priv);
      send_error(seq, "io", "cannot write " + rel + ": " + std::strerror(errno));
      return;
    }
    created = true;
  } else if (!S_ISREG(st.st_mode) || !read_private(path, priv)) {
    send_error(seq, "io",
               rel +
                   " exists but is not an X25519 key this agent wrote; "
                   "replace it with replace=1");
    return;
  } else {
    ::chmod(path.c_str(), 0600);  // an older agent may have left it wider
  }
  x25519_base(pub, priv);
  std::memset(priv, 0, sizeof priv);
  send_cached(kOk, seq,
              FieldWriter()
                  .add_str("name", name)
                  .add_str("path", rel)
                  .add_bytes("public_key", pub, sizeof pub)
                  .add_int("created", created ? 1 : 0)
                  .take());
}

}  // namespace epagent
