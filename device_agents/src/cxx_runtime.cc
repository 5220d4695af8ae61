// SPDX-License-Identifier: Apache-2.0
// The few out-of-line parts of libc++ the agent uses, for builds with libc++'s headers only
// (zig's musl targets: see CMakeLists.txt). Built without exceptions: where libc++ would throw
// (out of memory, a string over max_size) the agent aborts, as an uncaught exception would have.
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>

#if defined(_LIBCPP_VERSION)  // with GCC's libstdc++ (device tests, vendor toolchains): nothing

_LIBCPP_BEGIN_NAMESPACE_STD

// libc++ declares these instantiations extern and keeps their bodies in the library.
template class basic_string<char>;
template string operator+<char, char_traits<char>, allocator<char>>(const char*, const string&);

// Where libc++ reports a broken precondition or a throw in a build without exceptions; libc++
// lets a program provide its own.
[[noreturn]] void __libcpp_verbose_abort(const char*, ...) noexcept {
  std::abort();
}

namespace {
template <typename T>
string format(const char* spec, T value) {
  char buf[24];
  const int n = std::snprintf(buf, sizeof buf, spec, value);
  return string(buf, static_cast<size_t>(n));
}
}  // namespace

string to_string(int v) {
  return format("%d", v);
}
string to_string(unsigned v) {
  return format("%u", v);
}
string to_string(long v) {
  return format("%ld", v);
}
string to_string(unsigned long v) {
  return format("%lu", v);
}
string to_string(long long v) {
  return format("%lld", v);
}
string to_string(unsigned long long v) {
  return format("%llu", v);
}

_LIBCPP_END_NAMESPACE_STD

void* operator new(std::size_t size) {
  void* p = std::malloc(size ? size : 1);
  if (p == nullptr) std::abort();
  return p;
}
void* operator new[](std::size_t size) {
  return operator new(size);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}

#endif  // _LIBCPP_VERSION
