#!/bin/sh
# fuzz.sh: run every native fuzz target in the module for FUZZTIME each
# (default 30s). Targets are discovered, not listed, so a target added on
# any branch is fuzzed without touching this script. Go fuzzes one target
# per `go test` call, hence the loop. A crash leaves its input under the
# package's testdata/fuzz/, where it becomes a regression test.
set -eu
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-30s}
GO=${GO:-go}
status=0
for file in $(grep -rl --include='*_test.go' '^func Fuzz' . | sort); do
	dir=$(dirname "$file")
	for name in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$file"); do
		echo "== $dir $name ($FUZZTIME)"
		if ! $GO test -run '^$' -fuzz "^$name\$" -fuzztime "$FUZZTIME" "$dir"; then
			echo "FAIL: $dir $name" >&2
			status=1
		fi
	done
done
exit $status
