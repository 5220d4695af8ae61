// SPDX-License-Identifier: Apache-2.0
// Deliberately invalid C++: the name below is never declared.
int broken_function() {
  return undeclared_edgepack_symbol + 1;
}
