// SPDX-License-Identifier: Apache-2.0
// Re-deploys that send only what changed (PROTOCOL.md section 7b): HASH tells the host the
// SHA-256 of ranges of a file the device holds; PUT_RECIPE opens an upload like PUT_BEGIN and
// first fills it with ranges copied from such a file, so only the other chunks travel.
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "agent.h"
#include "sha256.h"

namespace epagent {
namespace {

constexpr size_t kBuf = 65536;  // one read buffer, on the stack of the request

uint64_t le64(const std::string& s, size_t at) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | uint8_t(s[at + size_t(i)]);
  return v;
}

// Opens a regular file (never a FIFO or a device: checked before and after opening, as GET).
int open_regular(const std::string& path, int64_t* size) {
  struct stat before {
  }, st{};
  if (::stat(path.c_str(), &before) != 0 || !S_ISREG(before.st_mode)) return -1;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return -1;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_ino != before.st_ino) {
    ::close(fd);
    return -1;
  }
  *size = int64_t(st.st_size);
  return fd;
}

bool read_exact(int fd, uint8_t* buf, size_t len, off_t off) {
  while (len > 0) {
    ssize_t n = ::pread(fd, buf, len, off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    buf += n;
    len -= size_t(n);
    off += n;
  }
  return true;
}

bool write_at(int fd, const uint8_t* buf, size_t len, off_t off) {
  while (len > 0) {
    ssize_t n = ::pwrite(fd, buf, len, off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    buf += n;
    len -= size_t(n);
    off += n;
  }
  return true;
}

// `len` bytes at `off` lie inside a file of `size` bytes (no overflow for any input).
bool in_file(uint64_t off, uint64_t len, int64_t size) {
  return len <= uint64_t(size) && off <= uint64_t(size) - len;
}

}  // namespace

void Agent::on_hash(uint32_t seq, const Fields& in) {
  std::string rel, path, ranges;
  if (!in.get_str("path", &rel) || !in.get_str("ranges", &ranges) || ranges.empty() ||
      ranges.size() % 16 != 0 || ranges.size() / 16 > size_t(kMaxRanges)) {
    send_error(seq, "bad_request",
               "HASH needs path and ranges: 1.." + std::to_string(kMaxRanges) +
                   " pairs of u64 offset, u64 length");
    return;
  }
  if (!resolve(seq, rel, &path)) return;
  int64_t size = 0;
  int fd = open_regular(path, &size);
  if (fd < 0) {
    send_error(seq, "not_found", "no regular file '" + rel + "'");
    return;
  }
  const size_t n = ranges.size() / 16;
  std::vector<uint8_t> digests(n * 32);
  uint8_t buf[kBuf];
  for (size_t i = 0; i < n; ++i) {
    uint64_t off = le64(ranges, 16 * i), len = le64(ranges, 16 * i + 8);
    if (!in_file(off, len, size)) {
      ::close(fd);
      send_error(seq, "bad_request",
                 "HASH range " + std::to_string(i) + " runs past the end of '" + rel + "' (" +
                     std::to_string(size) + " bytes)");
      return;
    }
    Sha256 h;
    while (len > 0) {
      size_t take = len < kBuf ? size_t(len) : kBuf;
      if (!read_exact(fd, buf, take, off_t(off))) {
        ::close(fd);
        send_error(seq, "io", "cannot read '" + rel + "': " + std::strerror(errno));
        return;
      }
      h.update(buf, take);
      off += take;
      len -= take;
    }
    h.finish(&digests[32 * i]);
  }
  ::close(fd);
  send(kOk, seq,
       FieldWriter().add_int("size", size).add_bytes("sha256", digests.data(), n * 32).take());
}

void Agent::on_put_recipe(uint32_t seq, const Fields& in) {
  std::string rel, base, copies;
  int64_t size = -1;
  if (!in.get_str("base", &rel) || !in.get_str("copies", &copies) || !in.get_int("size", &size) ||
      copies.size() % 24 != 0 || copies.size() / 24 > size_t(kMaxCopies)) {
    send_error(seq, "bad_request",
               "PUT_RECIPE needs base, size and copies: 0.." + std::to_string(kMaxCopies) +
                   " triples of u64 destination, u64 source, u64 length");
    return;
  }
  if (!resolve(seq, rel, &base)) return;
  int64_t base_size = 0;
  int bfd = open_regular(base, &base_size);
  if (bfd < 0) {
    send_error(seq, "not_found", "no regular file '" + rel + "' to copy from");
    return;
  }
  // Copies ascend by destination without overlap, inside both files, none empty.
  const size_t n = copies.size() / 24;
  uint64_t next = 0;
  for (size_t i = 0; i < n; ++i) {
    uint64_t dst = le64(copies, 24 * i), src = le64(copies, 24 * i + 8);
    uint64_t len = le64(copies, 24 * i + 16);
    if (len == 0 || dst < next || size < 0 || !in_file(dst, len, size) ||
        !in_file(src, len, base_size)) {
      ::close(bfd);
      send_error(seq, "bad_request",
                 "PUT_RECIPE copy " + std::to_string(i) +
                     " is empty, out of order, overlaps the one before or lies outside the "
                     "new file or '" +
                     rel + "'");
      return;
    }
    next = dst + len;
  }
  if (!open_upload(seq, in, "PUT_RECIPE")) {
    ::close(bfd);
    return;
  }
  // Copy every range (a resumed upload gets the same bytes again), then record the chunks
  // the copies cover whole; the host sends the others. Consecutive copies cover together.
  uint8_t buf[kBuf];
  const uint64_t chunk = uint64_t(up_.chunk), total = uint64_t(up_.size);
  uint64_t run_start = 0, run_end = 0;
  for (size_t i = 0; i <= n; ++i) {
    uint64_t dst = 0, src = 0, len = 0;
    if (i < n) {
      dst = le64(copies, 24 * i);
      src = le64(copies, 24 * i + 8);
      len = le64(copies, 24 * i + 16);
    }
    if (i == n || dst != run_end) {  // the run of adjacent copies ends: mark what it covers
      uint64_t first = (run_start + chunk - 1) / chunk;
      uint64_t end = run_end == total ? uint64_t(up_.nchunks) : run_end / chunk;
      for (uint64_t c = first; run_end > run_start && c < end; ++c) mark_chunk(int64_t(c));
      run_start = dst;
    }
    if (i == n) break;
    for (uint64_t done = 0; done < len;) {
      size_t take = len - done < kBuf ? size_t(len - done) : kBuf;
      if (!read_exact(bfd, buf, take, off_t(src + done)) ||
          !write_at(up_.fd, buf, take, off_t(dst + done))) {
        int err = errno;
        ::close(bfd);
        close_upload();
        send_error(
            seq, err == ENOSPC ? "no_space" : "io",
            "PUT_RECIPE copy " + std::to_string(i) + " from '" + rel + "': " + std::strerror(err));
        return;
      }
      done += take;
    }
    run_end = dst + len;
  }
  ::close(bfd);
  send_have(seq);
}

}  // namespace epagent
