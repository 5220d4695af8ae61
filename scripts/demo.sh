#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The main job on the default target (`make demo`):
#   1. generate the example's models and keys (once),
#   2. `edgepack build --board hi3559a`: the signed, encrypted artifact + the cross-built SDK,
#   3. start a virtual hi3559a (OpenSSH sshd on 127.0.0.1, ARM code under qemu-user) unless
#      EDGEPACK_TARGET names a real board (ssh://... or serial:///dev/ttyX?baud=...) or a
#      running virtual one (virtual:BOARD, virtual:BOARD/serial),
#   4. `edgepack bench` there: upload, run, and print the latency + accuracy table.
# Override with EDGEPACK_BOARD, EDGEPACK_TARGET, EDGEPACK_KNOWN_HOSTS, ITERATIONS.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"

BOARD=${EDGEPACK_BOARD:-hi3559a}
PROJECT=examples/vision-demo
OUT=build/demo
ITERATIONS=${ITERATIONS:-20}
mkdir -p "$OUT"

python "$PROJECT/generate_models.py" >/dev/null
[ -f "$PROJECT/keys/publisher.key" ] || edgepack keys new publisher --out "$PROJECT/keys/publisher.key"
for dev in dev1 dev2; do
  [ -f "$PROJECT/keys/$dev.key" ] || edgepack keys new device --out "$PROJECT/keys/$dev.key"
done

edgepack build "$PROJECT" --board "$BOARD" --out "$OUT"
ARTIFACT=$(ls "$OUT"/*-"$BOARD".epk)

TARGET=${EDGEPACK_TARGET:-}
KNOWN_HOSTS=${EDGEPACK_KNOWN_HOSTS:-}
if [ -z "$TARGET" ]; then
  export EDGEPACK_STATE="$PWD/$OUT/state"
  edgepack device up "virtual:$BOARD" > "$OUT/device.txt"
  trap 'edgepack device down >/dev/null' EXIT
  TARGET="virtual:$BOARD"  # resolves to the running board: its root, user key and host key
  echo "virtual $BOARD is up"
fi

bench_args=(--board "$BOARD" --target "$TARGET" --key "$PROJECT/keys/dev1.key"
            --publisher "$PROJECT/keys/publisher.pub" --iterations "$ITERATIONS" --warmup 3
            --sdk "$OUT/$BOARD" --out-json "$OUT/report.json" --html "$OUT/report.html")
[ -n "$KNOWN_HOSTS" ] && bench_args+=(--known-hosts "$KNOWN_HOSTS")
edgepack bench "$ARTIFACT" "${bench_args[@]}"
echo "report: $OUT/report.json, $OUT/report.html"
