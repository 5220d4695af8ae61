# SPDX-License-Identifier: Apache-2.0
# Merges static archives with `ar -M` (an MRI script: create / addlib ... / save), then moves
# the result into place so a failed merge never leaves a half-written archive.
# Usage: cmake -DAR=<ar> -DMRI=<script> -DOUT=<archive> -P bundle_archives.cmake
file(REMOVE ${OUT}.tmp)
execute_process(COMMAND ${AR} -M INPUT_FILE ${MRI} RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "bundling ${OUT} failed (${AR} -M): ${err}")
endif()
file(RENAME ${OUT}.tmp ${OUT})
