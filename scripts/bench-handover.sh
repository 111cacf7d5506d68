#!/usr/bin/env bash
# bench-handover.sh: what an upgrade costs clients, with the hand-over and
# with the old path (drain, exit, restart). 20 clients run remote checks and
# uploads in a loop against versitygw (behind a proxy delaying S3 by 150 ms
# per write, so the old daemon has uploads in flight) while the
# installation is replaced. Prints one row per mode:
#   misses            remote checks not answered found between the replace
#                     and the end of the window (target 0)
#   longest_wait_ms   the longest a check took in that window
#   baseline_*        the same before the upgrade (the load's own cost)
#   replace_to_serving_ms  the replace (first rename) to a daemon of the new
#                     build answering (target 150 ms on an idle machine)
#   old_gone_ms       the replace to the old daemon's exit
# The lead integrates these rows into scripts/bench.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
KACHE_BENCH_HANDOVER=1 go test -count=1 -run '^TestHandoverFigures$' -v ./cli 2>&1 |
	awk '/^BENCH handover/ { $1=$2=""; sub(/^  /, ""); print; next } /^(--- FAIL|FAIL|panic)/ { print; bad=1 } END { exit bad }'
