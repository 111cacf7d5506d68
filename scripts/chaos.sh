#!/bin/sh
# chaos.sh: the long chaos rounds (KACHE_CHAOS=long) of every scenario in
# cli/chaos_*_test.go, then docs/reliability.md from their figures. The
# short rounds run in `make test`. Without -race: the long rounds are about
# faults under load, and the race detector would multiply their run time.
# The doc is written even when a scenario fails (its figures say how), and
# the script then exits non-zero.
set -u
cd "$(dirname "$0")/.."
GO=${GO:-go}
report=$(mktemp)
log=${CHAOS_LOG:-/tmp/kache-chaos.log}
start=$(date +%s)
KACHE_CHAOS=long KACHE_CHAOS_REPORT=$report $GO test -count=1 -timeout 120m -run '^TestChaos' -v ./cli >"$log" 2>&1
status=$?
took=$(( $(date +%s) - start ))
table=$($GO run ./scripts/chaostable "$report") || exit 1
rm -f "$report"
{
	sed -n '1,/^<!-- table -->$/p' docs/reliability.md
	echo
	echo "$table"
	echo
	echo "Measured by \`make chaos\` on $(date -u +%Y-%m-%d) ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)) in ${took}s; exit status $status."
	echo
	sed -n '/^<!-- end table -->$/,$p' docs/reliability.md
} >docs/reliability.md.new && mv docs/reliability.md.new docs/reliability.md
grep -E '^(--- |ok|FAIL)' "$log"
echo "full log: $log"
exit $status
