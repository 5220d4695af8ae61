// SPDX-License-Identifier: Apache-2.0
// Paths under the install root, content-addressed uploads, atomic installs, reads.
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <dirent.h>
#include <time.h>

#include "agent.h"
#include "inflate.h"
#include "sha256.h"

namespace epagent {
namespace {

bool inside(const std::string& root, const std::string& p) {
  return p == root ||
         (p.size() > root.size() && p.compare(0, root.size(), root) == 0 && p[root.size()] == '/');
}

std::string parent_of(const std::string& p) {
  size_t s = p.rfind('/');
  return s == 0 ? "/" : p.substr(0, s);
}

bool mkdirs(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) return S_ISDIR(st.st_mode);
  if (!mkdirs(parent_of(dir))) return false;
  return ::mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST;
}

std::string errno_text(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

}  // namespace

bool make_private_dir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) == 0) return true;
  struct stat st {};
  return errno == EEXIST && ::lstat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode) &&
         ::chmod(dir.c_str(), 0700) == 0;
}

std::string Agent::cas_dir() const {
  return cfg_.root + "/.edgepack/cas";
}

bool Agent::resolve(uint32_t seq, const std::string& rel, std::string* abs_out) {
  if (has_nul(rel) || int64_t(rel.size()) > kMaxPath) {
    send_error(seq, "bad_request",
               "a path must be at most " + std::to_string(kMaxPath) + " bytes without NUL bytes");
    return false;
  }
  if (rel.empty() || rel[0] == '/') {
    send_error(seq, "path_outside_root", "path '" + rel + "' must be relative to the root");
    return false;
  }
  size_t start = 0;
  bool first = true;
  while (start <= rel.size()) {
    size_t end = rel.find('/', start);
    if (end == std::string::npos) end = rel.size();
    std::string comp = rel.substr(start, end - start);
    if (comp.empty() || comp == "." || comp == "..") {
      send_error(seq, "path_outside_root", "path '" + rel + "' has a '" + comp + "' component");
      return false;
    }
    if (first && comp == ".edgepack") {
      send_error(seq, "path_reserved", "path '" + rel + "' is the agent's own state");
      return false;
    }
    first = false;
    start = end + 1;
  }
  std::string abs = cfg_.root + "/" + rel;
  // The deepest existing ancestor (or the path itself) must resolve inside the root, so a
  // symlink cannot lead out of it.
  std::string probe = abs;
  char real[PATH_MAX];
  while (::realpath(probe.c_str(), real) == nullptr) {
    if (probe == cfg_.root || probe == "/") break;
    probe = parent_of(probe);
  }
  if (!inside(cfg_.root, real)) {
    send_error(seq, "path_outside_root", "path '" + rel + "' resolves outside the root");
    return false;
  }
  // Nothing under the root may lead into the agent's own state (a symlink to the content
  // store or to the keys).
  if (inside(cfg_.root + "/.edgepack", real)) {
    send_error(seq, "path_reserved", "path '" + rel + "' resolves into the agent's own state");
    return false;
  }
  *abs_out = abs;
  return true;
}

void Agent::close_upload() {
  if (up_.fd >= 0) ::close(up_.fd);
  if (up_.journal >= 0) ::close(up_.journal);
  up_ = Upload();
}

void Agent::on_put_begin(uint32_t seq, const Fields& in) {
  if (open_upload(seq, in, "PUT_BEGIN")) send_have(seq);
}

bool Agent::open_upload(uint32_t seq, const Fields& in, const char* what) {
  std::string sha;
  int64_t size = 0, chunk = 0;
  if (!in.get_str("sha256", &sha) || !valid_sha256(sha) || !in.get_int("size", &size) ||
      !in.get_int("chunk", &chunk) || size < 0 || chunk <= 0 || chunk > int64_t(kMaxChunk)) {
    send_error(seq, "bad_request",
               std::string(what) + " needs sha256 (64 hex), size >= 0, chunk 1.." +
                   std::to_string(kMaxChunk));
    return false;
  }
  if (size > cfg_.max_upload) {
    send_error(seq, "too_large",
               "upload of " + std::to_string(size) + " bytes exceeds the agent limit of " +
                   std::to_string(cfg_.max_upload));
    return false;
  }
  // The have-list is one bit per chunk: the chunk count, not the announced size, bounds it.
  if ((size + chunk - 1) / chunk > kMaxChunks) {
    send_error(seq, "bad_request",
               "upload of " + std::to_string(size) + " bytes in chunks of " +
                   std::to_string(chunk) + " is more than " + std::to_string(kMaxChunks) +
                   " chunks: use chunks of at least " +
                   std::to_string((size + kMaxChunks - 1) / kMaxChunks) + " bytes");
    return false;
  }
  close_upload();
  // The content store is the agent's alone: 0700 folders, 0600 files (docs/keys.md).
  std::string dir = cas_dir();
  if (!mkdirs(cfg_.root) || !make_private_dir(cfg_.root + "/.edgepack") || !make_private_dir(dir)) {
    send_error(seq, "io", errno_text("cannot create " + dir));
    return false;
  }
  std::string final_path = dir + "/" + sha;
  struct stat st {};
  if (::stat(final_path.c_str(), &st) == 0 && int64_t(st.st_size) == size) {
    ::chmod(final_path.c_str(), 0600);  // stored by an older agent with a wider mode
    send(kHave, seq,
         FieldWriter()
             .add_str("sha256", sha)
             .add_int("size", size)
             .add_int("chunk", chunk)
             .add_bytes("have", nullptr, 0)
             .add_int("complete", 1)
             .take());
    return false;
  }
  expire_partials(sha, size);
  std::string partial = dir + "/" + sha + ".partial", journal = dir + "/" + sha + ".chunks";
  struct stat pst {};
  const int64_t have_bytes = ::stat(partial.c_str(), &pst) == 0 ? int64_t(pst.st_size) : 0;
  struct statvfs sv {};
  if (::statvfs(dir.c_str(), &sv) == 0 &&
      int64_t(sv.f_bavail * sv.f_frsize) < size - std::min(size, have_bytes)) {
    send_error(seq, "no_space",
               "upload of " + std::to_string(size) + " bytes does not fit in " +
                   std::to_string(sv.f_bavail * sv.f_frsize) + " free bytes");
    return false;
  }
  // Journal layout: size i64 | chunk i64 | index u32 ...
  bool resume = false;
  int jfd = ::open(journal.c_str(), O_RDONLY | O_CLOEXEC);
  if (jfd >= 0) {
    int64_t head[2] = {0, 0};
    if (::read(jfd, head, sizeof head) == ssize_t(sizeof head) && head[0] == size && head[1] > 0 &&
        head[1] <= kMaxChunk && (size + head[1] - 1) / head[1] <= kMaxChunks) {
      chunk = head[1];  // keep the chunk size of the interrupted upload
      up_.have.assign(size_t((size + chunk - 1) / chunk), false);
      uint32_t idx[1024];
      ssize_t n;
      while ((n = ::read(jfd, idx, sizeof idx)) >= ssize_t(sizeof idx[0])) {
        for (size_t k = 0; k < size_t(n) / sizeof idx[0]; ++k) {
          if (idx[k] < up_.have.size()) {
            up_.have[idx[k]] = true;
            resume = true;
          }
        }
      }
    }
    ::close(jfd);
  }
  up_.sha256 = sha;
  up_.size = size;
  up_.chunk = chunk;
  up_.nchunks = (size + chunk - 1) / chunk;
  if (!resume) up_.have.assign(size_t(up_.nchunks), false);
  up_.fd = ::open(partial.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | (resume ? 0 : O_TRUNC), 0600);
  up_.journal =
      ::open(journal.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | (resume ? O_APPEND : O_TRUNC), 0600);
  if (up_.fd < 0 || up_.journal < 0) {
    send_error(seq, "io", errno_text("cannot open " + partial));
    close_upload();
    return false;
  }
  ::fchmod(up_.fd, 0600);  // a resumed partial upload of an older agent
  if (!resume) {
    int64_t head[2] = {size, chunk};
    if (!write_all(up_.journal, reinterpret_cast<uint8_t*>(head), sizeof head)) {
      send_error(seq, "io", errno_text("cannot write " + journal));
      close_upload();
      return false;
    }
  }
  return true;
}

void Agent::send_have(uint32_t seq) {
  std::vector<uint8_t> bitmap(size_t((up_.nchunks + 7) / 8), 0);
  for (int64_t i = 0; i < up_.nchunks; ++i)
    if (up_.have[size_t(i)]) bitmap[size_t(i / 8)] |= uint8_t(1u << (i % 8));
  send(kHave, seq,
       FieldWriter()
           .add_str("sha256", up_.sha256)
           .add_int("size", up_.size)
           .add_int("chunk", up_.chunk)
           .add_bytes("have", bitmap.data(), bitmap.size())
           .add_int("complete", 0)
           .take());
}

void Agent::on_put_chunk(uint32_t seq, const Fields& in) {
  std::string sha, data;
  int64_t index = -1;
  if (!in.get_str("sha256", &sha) || !in.get_int("index", &index) || !in.get_str("data", &data)) {
    send_error(seq, "bad_request", "PUT_CHUNK needs sha256, index and data");
    return;
  }
  if (up_.fd < 0 || sha != up_.sha256) {
    send_error(seq, "unknown_upload", "no PUT_BEGIN for " + sha + " in this session");
    return;
  }
  std::string encoding;
  if (in.get_str("encoding", &encoding) && !encoding.empty()) {
    // A compressed chunk (PROTOCOL.md section 7): raw DEFLATE of the chunk's bytes.
    std::vector<uint8_t> plain;
    if (encoding != "deflate" || !inflate_raw(reinterpret_cast<const uint8_t*>(data.data()),
                                              data.size(), size_t(up_.chunk), &plain)) {
      send_error(seq, "bad_chunk",
                 "chunk " + std::to_string(index) + ": cannot decode '" + encoding + "' data");
      return;
    }
    data.assign(plain.begin(), plain.end());
  }
  if (index < 0 || index >= up_.nchunks) {
    send_error(
        seq, "bad_chunk",
        "chunk " + std::to_string(index) + " is not in 0.." + std::to_string(up_.nchunks - 1));
    return;
  }
  int64_t want = index == up_.nchunks - 1 ? up_.size - index * up_.chunk : up_.chunk;
  if (int64_t(data.size()) != want) {
    send_error(seq, "bad_chunk",
               "chunk " + std::to_string(index) + " of " + std::to_string(data.size()) +
                   " bytes does not fit");
    return;
  }
  const uint8_t* p = reinterpret_cast<const uint8_t*>(data.data());
  size_t left = data.size();
  off_t off = off_t(index * up_.chunk);
  while (left > 0) {
    ssize_t n = ::pwrite(up_.fd, p, left, off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      send_error(seq, errno == ENOSPC ? "no_space" : "io", errno_text("write failed"));
      return;
    }
    p += n;
    left -= size_t(n);
    off += n;
  }
  mark_chunk(index);  // only after the bytes are written: the list never claims a chunk it lacks
  send(kOk, seq, FieldWriter().add_int("index", index).take());
}

void Agent::mark_chunk(int64_t index) {
  if (up_.have[size_t(index)]) return;
  uint32_t idx = uint32_t(index);
  write_all(up_.journal, reinterpret_cast<uint8_t*>(&idx), sizeof idx);
  up_.have[size_t(index)] = true;
}

void Agent::on_put_end(uint32_t seq, const Fields& in) {
  std::string sha;
  if (!in.get_str("sha256", &sha) || up_.fd < 0 || sha != up_.sha256) {
    send_error(seq, "unknown_upload", "no PUT_BEGIN for " + sha + " in this session");
    return;
  }
  for (int64_t i = 0; i < up_.nchunks; ++i) {
    if (!up_.have[size_t(i)]) {
      send_error(seq, "bad_chunk", "chunk " + std::to_string(i) + " is missing");
      return;
    }
  }
  std::string dir = cas_dir(), partial = dir + "/" + sha + ".partial";
  std::string journal = dir + "/" + sha + ".chunks";
  if (::ftruncate(up_.fd, off_t(up_.size)) != 0 || ::fsync(up_.fd) != 0) {
    send_error(seq, "io", errno_text("cannot sync " + partial));
    return;
  }
  std::string got;
  if (!sha256_file(partial, &got) || got != sha) {
    close_upload();
    ::unlink(partial.c_str());
    ::unlink(journal.c_str());
    send_error(seq, "hash_mismatch", "upload hashed to " + got + ", expected " + sha);
    return;
  }
  close_upload();
  if (::rename(partial.c_str(), (dir + "/" + sha).c_str()) != 0) {
    send_error(seq, "io", errno_text("cannot rename " + partial));
    return;
  }
  fsync_dir(dir);
  ::unlink(journal.c_str());
  // Kept by seq: the upload is closed now, so a retransmitted PUT_END (its OK lost, or the host
  // timed out while the file was hashed) gets this answer again, not unknown_upload.
  send_cached(kOk, seq, FieldWriter().add_str("sha256", sha).take());
}

void Agent::on_install(uint32_t seq, const Fields& in) {
  std::string sha, rel, dest;
  int64_t mode = 0644;
  if (!in.get_str("sha256", &sha) || !valid_sha256(sha) || !in.get_str("path", &rel)) {
    send_error(seq, "bad_request", "INSTALL needs sha256 and path");
    return;
  }
  if (in.has("mode") && (!in.get_int("mode", &mode) || mode < 0 || mode > 07777)) {
    send_error(seq, "bad_request", "INSTALL mode must be 0..07777");
    return;
  }
  if (!resolve(seq, rel, &dest)) return;
  std::string src = cas_dir() + "/" + sha;
  int in_fd = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
  if (in_fd < 0) {
    send_error(seq, "not_found", "content " + sha + " was not uploaded");
    return;
  }
  std::string dir = parent_of(dest), tmp = dest + ".edgepack-tmp";
  if (!mkdirs(dir)) {
    ::close(in_fd);
    send_error(seq, "io", errno_text("cannot create " + dir));
    return;
  }
  ::unlink(tmp.c_str());  // a stale temp file from an interrupted install
  int out_fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  bool ok = out_fd >= 0;
  std::vector<uint8_t> buf(1 << 20);
  while (ok) {
    ssize_t n = ::read(in_fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ok = n == 0;
      break;
    }
    ok = write_all(out_fd, buf.data(), size_t(n));
  }
  ::close(in_fd);
  ok = ok && ::fchmod(out_fd, mode_t(mode & 07777)) == 0 && ::fsync(out_fd) == 0;
  if (out_fd >= 0) ::close(out_fd);
  if (!ok || ::rename(tmp.c_str(), dest.c_str()) != 0) {
    std::string why = errno_text("cannot install " + rel);
    ::unlink(tmp.c_str());
    send_error(seq, "io", why);
    return;
  }
  fsync_dir(dir);
  send_cached(kOk, seq, FieldWriter().add_str("path", rel).add_str("sha256", sha).take());
}

void Agent::on_get(uint32_t seq, const Fields& in) {
  std::string rel, path;
  int64_t offset = 0, length = int64_t(kMaxChunk);
  if (!in.get_str("path", &rel)) {
    send_error(seq, "bad_request", "GET needs path");
    return;
  }
  if ((in.has("offset") && (!in.get_int("offset", &offset) || offset < 0)) ||
      (in.has("length") && (!in.get_int("length", &length) || length < 1 || length > kMaxChunk))) {
    send_error(seq, "bad_request",
               "GET needs offset >= 0 and length 1.." + std::to_string(kMaxChunk));
    return;
  }
  if (!resolve(seq, rel, &path)) return;
  // Only regular files: a FIFO or a device would block the agent or never end. Checked before
  // opening (opening a FIFO waits for a writer), and again on the open file.
  struct stat st {
  }, before{};
  if (::stat(path.c_str(), &before) != 0 || !S_ISREG(before.st_mode)) {
    send_error(seq, "not_found", "no regular file '" + rel + "'");
    return;
  }
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0 || ::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_ino != before.st_ino) {
    if (fd >= 0) ::close(fd);
    send_error(seq, "not_found", "no regular file '" + rel + "'");
    return;
  }
  std::vector<uint8_t> buf(static_cast<size_t>(length));
  ssize_t n = ::pread(fd, buf.data(), buf.size(), off_t(offset));
  ::close(fd);
  if (n < 0) {
    send_error(seq, "io", errno_text("cannot read " + rel));
    return;
  }
  send(kOk, seq,
       FieldWriter()
           .add_bytes("data", buf.data(), size_t(n))
           .add_int("size", int64_t(st.st_size))
           .take());
}

}  // namespace epagent

namespace epagent {

void Agent::expire_partials(const std::string& keep, int64_t incoming) {
  struct Partial {
    std::string sha;
    int64_t size;
    time_t mtime;
  };
  std::vector<Partial> found;
  std::string dir = cas_dir();
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  const std::string suffix = ".partial";
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.size() != 64 + suffix.size() || name.compare(64, suffix.size(), suffix) != 0) continue;
    std::string sha = name.substr(0, 64);
    struct stat st {};
    if (!valid_sha256(sha) || sha == keep || ::lstat((dir + "/" + name).c_str(), &st) != 0)
      continue;
    found.push_back({sha, int64_t(st.st_size), st.st_mtime});
  }
  ::closedir(d);
  auto drop = [&](const Partial& p) {
    ::unlink((dir + "/" + p.sha + ".partial").c_str());
    ::unlink((dir + "/" + p.sha + ".chunks").c_str());
  };
  // Oldest first: expired by age, then by the quota (all partial uploads <= max_upload).
  std::sort(found.begin(), found.end(),
            [](const Partial& a, const Partial& b) { return a.mtime < b.mtime; });
  const time_t now = ::time(nullptr);
  int64_t total = incoming;
  for (const auto& p : found) total += p.size;
  for (const auto& p : found) {
    if (now - p.mtime > kPartialMaxAgeS || total > cfg_.max_upload) {
      drop(p);
      total -= p.size;
    }
  }
}

}  // namespace epagent
