#!/usr/bin/env bash
# bench.sh BIN: `make bench`. Measures kache beside its peers in one run,
# alternating them, and prints medians and ratios (kache/peer):
#   1. cold `kache daemon start` vs `sccache --start-server`
#   2. `kache daemon status --json` vs `sccache --show-stats`; process
#      start-up of `kache --version` and its top package inits
#   3. upload throughput to one versitygw: `kache upload --from` until
#      `kache daemon stop` returns vs `rclone copy --transfers 16`
#   4. client-side enqueue latency (Go benchmark over the real socket) and
#      the whole `kache upload --key K F` process
#   5. epoch detection: binary renamed over, until the old daemon is gone
#   6. `kache daemon restart` of a SIGSTOPped daemon
#   7. scaling: 100 to 100 000 entries queued at once (enqueue rate, start-up
#      with them in the spool, time to drain, the daemon's peak RSS)
#   8. idle footprint: RSS and context switches over 10 s, vs an idle sccache
#   9. an upgrade under load (scripts/bench-handover.sh): remote-check misses,
#      longest client wait and replace-to-serving, hand-over vs the old path
#  10. Rust builds (scripts/bench-rust.sh): a workspace of Debian-packaged
#      crates, no wrapper, cold, warm same tree, warm other checkout and warm
#      from the remote, beside Debian's sccache; the cost of a hit
#  11. the go command's cache through kache (GOCACHEPROG="kache cacheprog"):
#      `go build ./...` of this repository cold, warm from the local store and
#      warm from a versitygw bucket, beside the go command's own cache and a
#      peer cache program (go-cacher of bradfitz/go-tool-cache, installed
#      from the module proxy); and of one larger module from the module
#      proxy (golang.org/x/tools), cold and warm local, beside go's own cache
# then rewrites the generated block of docs/benchmarks.md (the reading
# below the block is kept). Installs missing peers with apt-get. Every
# process it starts carries KACHE_BENCH_WORK in its environment, which is
# how the exit trap finds and ends them. Paths must not contain spaces
# (hyperfine -N splits commands on whitespace).
# Knobs: BENCH_ROUNDS (hyperfine rounds, default 5), BENCH_TP_RUNS (runs per
# throughput case, default 5), BENCH_SCALE (entry counts of section 7),
# BENCH_GO_RUNS (runs of each case of section 11, default 3), BENCH_ONLY
# (space-separated sections to run, by function or short name, e.g.
# "bench_scale", "rust" or "cacheprog"; the doc is then not rewritten); the
# Rust section's knobs are bench-rust.sh's (BENCH_RUST_COLD, BENCH_RUST_WARM).
set -Eeuo pipefail
bin=$(realpath "${1:-bin/kache}")
daemon_bin=$(dirname "$bin")/kache-daemon
repo=$(cd "$(dirname "$0")/.." && pwd)
doc=$repo/docs/benchmarks.md
rounds=${BENCH_ROUNDS:-5}
tp_runs=${BENCH_TP_RUNS:-5}

die() { echo "bench.sh: $*" >&2; exit 1; }
say() { printf '%s\n' "$*"; }
section() { printf '\n== %s\n' "$*"; }
[ -x "$bin" ] || die "$bin is not an executable kache binary; run: make build"
[ -x "$daemon_bin" ] || die "$daemon_bin is missing: kache runs kache-daemon beside it; run: make build"
scale_sizes=${BENCH_SCALE:-100 1000 10000 100000}

# --- setup and cleanup -------------------------------------------------------

install_peers() {
	local t missing=() sudo= want="sccache rclone hyperfine jq"
	case ${BENCH_ONLY:-} in bench_cacheprog | cacheprog) want=jq ;; esac # section 11 alone needs no Debian peer
	for t in $want; do
		command -v "$t" >/dev/null 2>&1 || missing+=("$t")
	done
	[ ${#missing[@]} -eq 0 ] && return
	say "installing ${missing[*]} with apt-get"
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get install -y -qq "${missing[@]}" >/dev/null ||
		{ $sudo apt-get update -qq && $sudo apt-get install -y -qq "${missing[@]}" >/dev/null; } ||
		die "could not install ${missing[*]}; install them and run make bench again"
}

# ours lists the pids whose environment carries our marker, but not this
# shell's nor its own (a command substitution is a subshell).
ours() {
	local p kv
	for p in /proc/[0-9]*; do
		case ${p#/proc/} in "$$" | "$BASHPID") continue ;; esac
		while IFS= read -r -d '' kv; do
			if [ "$kv" = "KACHE_BENCH_WORK=$W" ]; then echo "${p#/proc/}"; break; fi
		done 2>/dev/null <"$p/environ" || true
	done
}

# cleanup ends every process the run started (SIGCONT first: one may be
# stopped), waits up to 5 s, SIGKILLs the rest, and removes the work dir.
cleanup() {
	set +e
	trap - ERR
	local pids i
	pids=$(ours)
	if [ -n "$pids" ]; then
		kill -CONT $pids 2>/dev/null
		kill -TERM $pids 2>/dev/null
		for i in $(seq 50); do
			pids=$(ours)
			[ -z "$pids" ] && break
			sleep 0.1
		done
		[ -n "$pids" ] && kill -KILL $pids 2>/dev/null
	fi
	rm -rf "$W"
}

install_peers
W=$(mktemp -d /tmp/kbench.XXXXXX) # short: Unix socket paths are limited
export KACHE_BENCH_WORK=$W
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'echo "bench.sh: line $LINENO failed: $BASH_COMMAND" >&2' ERR
table=$W/table.md
: >"$table"
: >"$W/runs.md"

# --- measuring helpers -------------------------------------------------------

# hf OUT RUNS PREPARE CMD: time CMD with hyperfine (no shell; PREPARE, if
# set, runs before each run, else 2 warm-up runs), appending each run's ms
# to OUT.
hf() {
	local out=$1 runs=$2 prep=$3 args
	shift 3
	args=(-N --style none --runs "$runs" --export-json "$W/hf.json")
	if [ -n "$prep" ]; then args+=(--prepare "$prep"); else args+=(--warmup 2); fi
	if ! hyperfine "${args[@]}" "$*" >/dev/null 2>"$W/hf.err"; then
		cat "$W/hf.err" >&2
		return 1
	fi
	jq -r '.results[0].times[] * 1000' "$W/hf.json" >>"$out"
}

median() { sort -g "$1" | awk '{a[NR]=$1} END {if (!NR) print "nan"; else print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
maxof() { sort -g "$1" | tail -n 1; }
f2() { awk -v x="$1" 'BEGIN {printf "%.2f", x}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
# within X LIMIT: "met" if X <= LIMIT, else "NOT met".
within() { awk -v x="$1" -v l="$2" 'BEGIN {print (x <= l) ? "met" : "NOT met"}'; }
list() { awk '{printf "%.2f ", $1}' "$1"; }
# runs LINE: every run's figure, printed and kept for the report.
runs() {
	say "  runs: $*"
	say "- $*" >>"$W/runs.md"
}
us_now() { echo "${EPOCHREALTIME/./}"; }
ms_between() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f\n", (b-a)/1000}'; }

# row MEASUREMENT KACHE PEER RATIO TARGET VERDICT: one line of the results.
row() {
	printf '| %s | %s | %s | %s | %s | %s |\n' "$@" >>"$table"
	printf '  %-52s kache %-10s peer %-10s ratio %-6s target %-14s %s\n' "$@"
}

# compare NAME KFILE PFILE UNIT: a row for medians of two samples, target ratio <= 1.
compare() {
	local km pm r
	km=$(median "$2")
	pm=$(median "$3")
	r=$(ratio "$km" "$pm")
	row "$1" "$(f2 "$km") $4" "$(f2 "$pm") $4" "$r" "ratio ≤ 1" "$(within "$r" 1)"
	runs "$1 ($4, $(wc -l <"$2") runs each): kache $(spread "$2"); peer $(spread "$3")"
}

# spread FILE: min–max of a sample.
spread() { sort -g "$1" | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%.2f–%.2f", lo, hi}'; }

# local_daemon NAME: the environment of a daemon on a directory remote.
local_daemon() {
	export KACHE_CACHE_DIR=$W/$1 KACHE_SOCKET_PATH=$W/$1.sock KACHE_REMOTE_DIR=$W/$1/remote
	export KACHE_CONFIG=$W/none.toml KACHE_DAEMON_IDLE_TIMEOUT=0
	unset KACHE_S3_BUCKET KACHE_S3_ENDPOINT KACHE_S3_PREFIX KACHE_LOG
}

# daemon_pid [EXE]: the pid of the daemon on KACHE_SOCKET_PATH, asked with EXE.
daemon_pid() { "${1:-$bin}" daemon status --json | jq -r '.daemon.pid // empty'; }

# alive PID: the process exists and is not a zombie.
alive() {
	local s
	[ -r "/proc/$1/stat" ] || return 1
	read -r _ _ s _ <"/proc/$1/stat" 2>/dev/null || return 1
	[ "$s" != Z ]
}

# wait_gone PID SECS: tight poll until PID has exited; fails after SECS.
wait_gone() {
	local limit=$(($(us_now) + $2 * 1000000))
	while alive "$1"; do
		(($(us_now) < limit)) || return 1
	done
}

free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 40000))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
}

# --- 1 and 2: daemon start and status against sccache ---------------------------

setup_sccache() {
	export SCCACHE_DIR=$W/sccache SCCACHE_SERVER_PORT
	SCCACHE_SERVER_PORT=$(free_port)
	export SCCACHE_IDLE_TIMEOUT=0
	mkdir -p "$SCCACHE_DIR"
	printf '#!/bin/sh\n"%s" daemon stop >/dev/null 2>&1\nexit 0\n' "$bin" >"$W/kstop"
	# sstop waits until the port is free, so the next start cannot race it.
	printf '#!/usr/bin/env bash\nsccache --stop-server >/dev/null 2>&1\nfor i in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/%s) 2>/dev/null || exit 0; sleep 0.01; done\n' \
		"$SCCACHE_SERVER_PORT" >"$W/sstop"
	chmod +x "$W/kstop" "$W/sstop"
}

bench_start() {
	section "1. cold start: kache daemon start vs sccache --start-server ($rounds rounds x 6 runs, alternating)"
	local r
	for r in $(seq "$rounds"); do
		hf "$W/start.k" 6 "$W/kstop" "$bin daemon start"
		hf "$W/start.s" 6 "$W/sstop" "sccache --start-server"
	done
	"$W/kstop"
	"$W/sstop"
	compare "cold start (to ready)" "$W/start.k" "$W/start.s" ms
}

bench_status() {
	section "2. status: kache daemon status --json vs sccache --show-stats; process start-up"
	local r
	"$bin" daemon start >/dev/null
	sccache --start-server >/dev/null 2>&1
	for r in $(seq "$rounds"); do
		hf "$W/status.k" 20 "" "$bin daemon status --json"
		hf "$W/status.s" 20 "" "sccache --show-stats"
		hf "$W/version.k" 20 "" "$bin --version"
		hf "$W/version.s" 20 "" "sccache --version"
	done
	compare "status of a running daemon" "$W/status.k" "$W/status.s" ms
	compare "process start-up: --version" "$W/version.k" "$W/version.s" ms
	bare_go
	inittrace
}

# bare_go times a hello-world Go binary: the floor of any Go client.
bare_go() {
	mkdir -p "$W/hello"
	printf 'package main\n\nfunc main() { println("hello") }\n' >"$W/hello/main.go"
	if (cd "$W/hello" && GOFLAGS= go build -o hello main.go) 2>/dev/null; then
		hf "$W/version.bare" 30 "" "$W/hello/hello"
		row "… floor: a bare Go hello world (not kache)" "$(f2 "$(median "$W/version.bare")") ms" "" "" "" ""
	fi
}

# inittrace averages GODEBUG=inittrace=1 over 20 runs of `kache --version`:
# the total package-init clock and the 10 costliest packages.
inittrace() {
	local i
	for i in $(seq 20); do GODEBUG=inittrace=1 "$bin" --version 2>&1 >/dev/null; done |
		awk '$1 == "init" {t[$2] += $5; tot += $5}
			END {printf "TOTAL %.3f\n", tot/20; for (p in t) printf "%s %.3f\n", p, t[p]/20}' |
		sort -k2,2gr | sed -n 1,11p >"$W/inittrace"
	say "  package init (ms, mean of 20 runs of kache --version):"
	sed 's/^/    /' "$W/inittrace"
}

# --- 3: upload throughput against rclone ---------------------------------------

make_data() {
	mkdir -p "$W/small" "$W/big"
	head -c $((2000 * 32768)) /dev/urandom | split -a 4 -d -b 32768 - "$W/small/s"
	local i f
	for i in $(seq 8); do head -c 64M /dev/urandom >"$W/big/b$i"; done
	for f in small big; do
		(cd "$W/$f" && for i in *; do echo "$i=$W/$f/$i"; done) >"$W/$f.list"
	done
}

# objects PREFIX: how many objects the server holds under PREFIX; then
# removes them from its disk, so later runs start from an equal state.
objects() {
	local d=$W/gw/root/$KACHE_S3_BUCKET/$1 n
	n=$( (find "$d" -type f 2>/dev/null || true) | wc -l)
	rm -rf "$d"
	echo "$n"
}

# kache_run SET RUN: upload SET with one `kache upload --from`, timed until
# `kache daemon stop` returns; appends seconds to tp.SET.k.
kache_run() {
	local set=$1 prefix=k-$1-$2 t0 t1 t2 n want
	export KACHE_CACHE_DIR=$W/s3cache/$prefix KACHE_S3_PREFIX=$prefix/
	"$bin" daemon start >/dev/null
	t0=$(us_now)
	"$bin" upload --quiet --from "$W/$set.list"
	t1=$(us_now)
	"$bin" daemon stop >"$W/stop.out" 2>&1
	t2=$(us_now)
	n=$(objects "$prefix")
	want=$(wc -l <"$W/$set.list") # one object per entry (remote format v2)
	[ "$n" -ge "$want" ] || say "  WARNING: kache run $2 of $set left $n objects, want $want: $(tail -n 1 "$W/stop.out")"
	awk -v a="$t0" -v b="$t2" 'BEGIN {print (b-a)/1e6}' >>"$W/tp.$set.k"
	awk -v a="$t0" -v b="$t1" 'BEGIN {print (b-a)/1e6}' >>"$W/tp.$set.kcall"
}

rclone_run() {
	local set=$1 prefix=r-$1-$2 t0 t1 n want
	t0=$(us_now)
	env -u AWS_CA_BUNDLE rclone copy -q --transfers 16 "$W/$set" "s3:$KACHE_S3_BUCKET/$prefix"
	t1=$(us_now)
	n=$(objects "$prefix")
	want=$(wc -l <"$W/$set.list")
	[ "$n" -eq "$want" ] || say "  WARNING: rclone run $2 of $set left $n objects, want $want"
	awk -v a="$t0" -v b="$t1" 'BEGIN {print (b-a)/1e6}' >>"$W/tp.$set.r"
}

bench_throughput() {
	section "3. upload throughput to versitygw: kache upload --from + daemon stop vs rclone copy ($tp_runs runs each, alternating)"
	make_data
	"$repo/scripts/versitygw.sh" start "$W/gw"
	(
		# shellcheck disable=SC1091
		. "$W/gw/env"
		export KACHE_SOCKET_PATH=$W/s3.sock KACHE_CONFIG=$W/s3.toml KACHE_S3_CONCURRENCY=16 KACHE_DAEMON_IDLE_TIMEOUT=0
		unset KACHE_REMOTE_DIR KACHE_LOG
		printf 'drain_timeout_secs = 300\n' >"$KACHE_CONFIG"
		export RCLONE_CONFIG_S3_TYPE=s3 RCLONE_CONFIG_S3_PROVIDER=Other RCLONE_CONFIG_S3_ENDPOINT=$KACHE_S3_ENDPOINT \
			RCLONE_CONFIG_S3_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID RCLONE_CONFIG_S3_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY \
			RCLONE_CONFIG_S3_FORCE_PATH_STYLE=true RCLONE_CONFIG=$W/rclone.conf
		local set i
		for set in small big; do
			for i in $(seq "$tp_runs"); do
				kache_run "$set" "$i"
				rclone_run "$set" "$i"
			done
		done
	)
	"$repo/scripts/versitygw.sh" stop "$W/gw" 2>/dev/null
	throughput_rows small "2000 × 32 KiB (64 MiB)" 64 1.0
	throughput_rows big "8 × 64 MiB (512 MiB)" 512 0.5
}

# throughput_rows SET TITLE MIB TARGET: the row of one data set; TARGET is
# the ratio the issue asks for (1.0 for small files, 0.5 for large ones).
throughput_rows() {
	local km rm r
	km=$(median "$W/tp.$1.k")
	rm=$(median "$W/tp.$1.r")
	r=$(ratio "$km" "$rm")
	row "upload $2, until drained" "$(f2 "$km") s ($(awk -v m="$3" -v s="$km" 'BEGIN {printf "%.0f", m/s}') MiB/s)" \
		"$(f2 "$rm") s ($(awk -v m="$3" -v s="$rm" 'BEGIN {printf "%.0f", m/s}') MiB/s)" "$r" "ratio ≤ $4" "$(within "$r" "$4")"
	row "… of which the \`kache upload --from\` call" "$(f2 "$(median "$W/tp.$1.kcall")") s" "" "" "" ""
	runs "upload $2 (s): kache $(list "$W/tp.$1.k")(of which the upload call $(list "$W/tp.$1.kcall")); rclone $(list "$W/tp.$1.r")"
}

# --- 4: enqueue latency ----------------------------------------------------------

bench_enqueue() {
	section "4. upload enqueue latency (Go benchmark over the real socket; whole process with hyperfine)"
	local out v
	if out=$(cd "$repo" && KACHE_BENCH_BIN=$bin go test -run '^$' -bench '^BenchmarkUploadEnqueue$' \
		-benchtime 2000x -count 1 ./cli 2>&1); then
		echo "$out" | grep '^Benchmark' | tee "$W/enqueue.txt" | sed 's/^/  /'
		for v in busy idle; do enqueue_rows "$v"; done
	else
		echo "$out" | tail -n 20 | sed 's/^/  /'
		row "enqueue one entry (Go benchmark)" "FAILED to run" "" "" "p50 < 100 µs, p99 < 1 ms" "unknown"
	fi
	local_daemon up
	"$bin" daemon start >/dev/null
	head -c 100000 /dev/urandom >"$W/artifact.rlib"
	local r um vm d
	for r in $(seq "$rounds"); do
		hf "$W/upload.k" 30 "" "$bin upload --quiet --key bench-artifact $W/artifact.rlib"
		hf "$W/upload.v" 30 "" "$bin --version"
	done
	um=$(median "$W/upload.k") vm=$(median "$W/upload.v")
	d=$(awk -v a="$um" -v b="$vm" 'BEGIN {printf "%.2f", a-b}')
	row "\`kache upload --key K F\` whole process, over \`kache --version\`" "$(f2 "$um") ms (+$d ms)" "$(f2 "$vm") ms" "" "≤ +1 ms" "$(within "$d" 1)"
	"$bin" daemon stop >/dev/null 2>&1
}

# metric VARIANT NAME: a metric of BenchmarkUploadEnqueue/VARIANT.
metric() {
	awk -v v="/$1-" -v m="$2" 'index($1, v) {for (i = 2; i < NF; i++) if ($(i+1) == m) print $i}' "$W/enqueue.txt"
}

enqueue_rows() {
	local p50 p99 what="daemon uploading meanwhile"
	p50=$(metric "$1" p50-µs) p99=$(metric "$1" p99-µs)
	[ "$1" = idle ] && what="daemon only queueing"
	row "enqueue one entry ($what): p50 / p99" "$p50 / $p99 µs" "" "" "p50 < 100 µs, p99 < 1 ms" \
		"$(within "$p50" 99.999) / $(within "$p99" 999.999)"
	row "… of which WriteIntent p50 / the Upload RPC p50" "$(metric "$1" intent-p50-µs) / $(metric "$1" rpc-p50-µs) µs" "" "" "" ""
}

# --- 5 and 6: epoch detection, restart of a stopped daemon ------------------------

# watching PID: the daemon has its inotify watch on the binary's directory.
# It installs it just after it becomes ready, so a swap before that would
# go unseen; wait for it (up to 5 s).
watching() {
	local i
	for i in $(seq 500); do
		ls -l "/proc/$1/fd" 2>/dev/null | grep -q inotify && return
		sleep 0.01
	done
	return 1
}

bench_epoch() {
	section "5. epoch detection: rename a new binary over the daemon's, until the old daemon has exited (10 runs)"
	local e=$W/ep i pid t0 t1 exe
	local_daemon ep
	mkdir -p "$e/b"
	exe=$e/b/kache
	for i in $(seq 10); do
		# install as installers do (copy beside, rename over): a running
		# kache-daemon cannot be written in place
		cp "$bin" "$e/b/.k" && cp "$daemon_bin" "$e/b/.kd"
		touch -d '1 hour ago' "$e/b/.k" "$e/b/.kd"
		mv -f "$e/b/.k" "$exe" && mv -f "$e/b/.kd" "$e/b/kache-daemon"
		"$exe" daemon start >/dev/null
		pid=$(daemon_pid "$exe")
		watching "$pid" || say "  WARNING: run $i: no inotify watch seen on the daemon"
		cp "$bin" "$e/b/.kache.new"
		t0=$(us_now)
		mv -f "$e/b/.kache.new" "$exe"
		if wait_gone "$pid" 10; then
			t1=$(us_now)
			ms_between "$t0" "$t1" >>"$W/epoch"
			case "$(jq -r .reason "$W/ep.exit.json" 2>/dev/null)" in
			epoch_stale | handed_over) ;; # drained and exited, or handed over to a successor
			*) say "  WARNING: run $i: exit reason $(jq -r .reason "$W/ep.exit.json" 2>/dev/null), want handed_over or epoch_stale" ;;
			esac
		else
			echo 10000 >>"$W/epoch"
			say "  WARNING: run $i: daemon $pid still running 10 s after the swap"
			kill -KILL "$pid" 2>/dev/null || true
		fi
		"$exe" daemon stop >/dev/null 2>&1 || true # the successor, if one took over
	done
	runs "epoch detection (ms): $(list "$W/epoch")"
	local m x
	m=$(median "$W/epoch") x=$(maxof "$W/epoch")
	row "epoch detection: swap to old daemon gone (median / max of 10)" "$(f2 "$m") / $(f2 "$x") ms" "" "" "< 200 ms" "$(within "$m" 199.999) (max $(within "$x" 199.999))"
}

bench_restart() {
	section "6. kache daemon restart of a SIGSTOPped daemon (5 runs)"
	local i pid new t0 t1
	local_daemon rs
	"$bin" daemon start >/dev/null
	for i in $(seq 5); do
		pid=$(daemon_pid)
		kill -STOP "$pid"
		t0=$(us_now)
		"$bin" daemon restart >"$W/restart.out" 2>&1 || say "  WARNING: run $i: restart failed: $(tail -n 3 "$W/restart.out")"
		t1=$(us_now)
		ms_between "$t0" "$t1" >>"$W/restart"
		new=$(daemon_pid)
		if [ -z "$new" ] || [ "$new" = "$pid" ] || alive "$pid"; then
			say "  WARNING: run $i: old pid $pid, new pid '${new}', old alive: $(alive "$pid" && echo yes || echo no)"
		fi
	done
	runs "restart of a SIGSTOPped daemon (ms): $(list "$W/restart")"
	say "  last restart said: $(tr '\n' ' ' <"$W/restart.out")"
	"$bin" daemon stop >/dev/null 2>&1
	local m x
	m=$(median "$W/restart") x=$(maxof "$W/restart")
	row "restart of a SIGSTOPped daemon (median / max of 5)" "$(f2 "$m") / $(f2 "$x") ms" "" "" "< 3000 ms" "$(within "$m" 2999.999) (max $(within "$x" 2999.999))"
}

# --- 7: scaling ------------------------------------------------------------------

# spool_count DIR: intent files in a spool.
spool_count() { find "$1" -maxdepth 1 -name '*.json' 2>/dev/null | wc -l; }

# hwm PID: the process's peak RSS in MB.
hwm() { awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }

# scale_one N: N entries handed over to a daemon whose S3 is down (they
# stay), then a daemon with S3 up started on that spool: its start-up time,
# the time until the spool is empty, its peak RSS.
scale_one() {
	local n=$1 d=$W/scale$1 t0 t1 t2 t3 pid left
	mkdir -p "$d/src"
	(cd "$d/src" && seq "$n" | split -l 1 -a 6 -d - f) # N tiny files
	(cd "$d/src" && for f in *; do echo "k$f=$d/src/$f"; done) >"$d/list"
	export KACHE_CACHE_DIR=$d/cache KACHE_SOCKET_PATH=$d.sock KACHE_S3_PREFIX=scale$n/
	# Queued by a daemon that cannot reach the remote, so they stay in the
	# spool for the start measured below; the client has the same settings
	# (else it rightly warns that the daemon's configuration differs).
	KACHE_S3_ENDPOINT=http://127.0.0.1:9 "$bin" daemon start >/dev/null
	t0=$(us_now)
	KACHE_S3_ENDPOINT=http://127.0.0.1:9 "$bin" upload --quiet --from "$d/list"
	t1=$(us_now)
	"$bin" daemon stop >/dev/null 2>&1
	left=$(spool_count "$d/cache/upload-queue")
	t2=$(us_now)
	"$bin" daemon start >/dev/null
	t3=$(us_now)
	pid=$(daemon_pid)
	while [ "$(spool_count "$d/cache/upload-queue")" -gt 0 ]; do sleep 0.05; done
	local t4
	t4=$(us_now)
	local rss
	rss=$(hwm "$pid")
	"$bin" daemon stop >/dev/null 2>&1
	local rate drain per
	rate=$(awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", n/((b-a)/1e6)}')
	drain=$(awk -v a="$t3" -v b="$t4" 'BEGIN {printf "%.2f", (b-a)/1e6}')
	per=$(awk -v a="$t3" -v b="$t4" -v n="$n" 'BEGIN {printf "%.0f", (b-a)/n}')
	row "scale: $n entries ($left kept in the spool)" "enqueue $rate/s; start $(ms_between "$t2" "$t3") ms; drain $drain s ($per µs/entry); peak RSS $rss MB" "" "" "flat per entry, bounded RSS, start not delayed" ""
	rm -rf "$d"
}

bench_scale() {
	section "7. scaling: entries queued at once, a daemon starting on them, draining to versitygw"
	"$repo/scripts/versitygw.sh" start "$W/gw2"
	(
		# shellcheck disable=SC1091
		. "$W/gw2/env"
		export KACHE_CONFIG=$W/scale.toml KACHE_S3_CONCURRENCY=16 KACHE_DAEMON_IDLE_TIMEOUT=0
		unset KACHE_REMOTE_DIR KACHE_LOG
		printf 'drain_timeout_secs = 1\n' >"$KACHE_CONFIG"
		local n
		for n in $scale_sizes; do scale_one "$n"; done
	)
	"$repo/scripts/versitygw.sh" stop "$W/gw2" 2>/dev/null
}

# --- 8: idle footprint -------------------------------------------------------------

# ctxsw PID: voluntary + involuntary context switches so far.
ctxsw() { awk '/ctxt_switches/ {s += $2} END {print s}' "/proc/$1/status"; }

bench_idle() {
	section "8. idle footprint: RSS and wake-ups of an idle daemon over 10 s, vs an idle sccache server"
	local_daemon idle
	"$bin" daemon start >/dev/null
	sccache --start-server >/dev/null 2>&1
	local kp sp k0 s0
	kp=$(daemon_pid) sp=$(pgrep -n -f 'sccache' || true)
	sleep 15 # measured 15 s after start (issue 15): start-up and its trim are over
	k0=$(ctxsw "$kp") s0=$([ -n "$sp" ] && ctxsw "$sp" || echo 0)
	sleep 10
	local krss srss kcs scs
	krss=$(awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$kp/status")
	srss=$([ -n "$sp" ] && awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$sp/status" || echo nan)
	kcs=$(($(ctxsw "$kp") - k0)) scs=$([ -n "$sp" ] && echo $(($(ctxsw "$sp") - s0)) || echo nan)
	awk '/^(Rss|Pss_Anon|Pss_File)/ {printf "%s %s kB; ", $1, $2}' "/proc/$kp/smaps_rollup" >"$W/smaps"
	local ok
	ok=$(within "$(ratio "$krss" "$srss")" 1.2)
	[ "$kcs" = 0 ] || ok="no ($kcs switches)"
	row "idle daemon RSS (context switches in 10 s)" "$krss MB ($kcs)" "$srss MB ($scs)" "$(ratio "$krss" "$srss")" "ratio ≤ 1.2, 0 switches" "$ok"
	runs "idle kache daemon /proc/PID/smaps_rollup: $(cat "$W/smaps")"
	"$bin" daemon stop >/dev/null 2>&1
	sccache --stop-server >/dev/null 2>&1 || true
}

# --- 9: upgrades under load ---------------------------------------------------------

bench_handover() {
	section "9. an upgrade while 20 clients check and upload (scripts/bench-handover.sh): hand-over vs drain-then-restart"
	local out
	if ! out=$("$repo/scripts/bench-handover.sh" 2>&1); then
		echo "$out" | tail -n 20 | sed 's/^/  /'
		row "upgrade under load" "FAILED to run" "" "" "0 misses, < 50 ms, < 150 ms" "unknown"
		return
	fi
	echo "$out" | sed 's/^/  /'
	runs "upgrade under load: $(echo "$out" | tr '\n' ';')"
	local mode
	for mode in handover old-restart; do
		local line
		line=$(echo "$out" | grep "^mode=$mode " || true)
		[ -n "$line" ] || continue
		row "upgrade under load, $mode" "$(echo "$line" | cut -d' ' -f2- | tr ' ' ';')" "" "" "0 misses, wait < 50 ms, serving < 150 ms" ""
	done
}

# --- 10: Rust builds -----------------------------------------------------------------

bench_rust() {
	section "10. Rust builds (scripts/bench-rust.sh): no wrapper, cold, warm, other checkout, from the remote; beside sccache"
	if ! BENCH_RUST_OUT=$W/rust "$repo/scripts/bench-rust.sh" "$bin" 2>&1 | sed 's/^/  /'; then
		row "Rust builds" "FAILED to run" "" "" "" "unknown"
		return
	fi
	cat "$W/rust/table.md" >>"$table"
	sed 's/^/  runs: /' "$W/rust/runs.md"
	cat "$W/rust/runs.md" >>"$W/runs.md"
}

# --- 11: the go command's cache ------------------------------------------------------

# gobuild NAME PROG [DIR]: one timed `go build ./...` in DIR (this
# repository by default) with a fresh GOCACHE, GOCACHEPROG=PROG ("" for the
# go command's own cache), appending its seconds to go.NAME; the kache
# environment (and GOMODCACHE) is the caller's.
gobuild() {
	local t0 t1 gc=$W/go/gocache-$1-$RANDOM TIMEFORMAT='%U %S'
	mkdir -p "$gc"
	t0=$(us_now)
	{ time (cd "${3:-$repo}" && GOCACHE=$gc GOCACHEPROG=$2 GOPROXY=off GOFLAGS= GOWORK=off go build ./... 2>"$W/go.err"); } 2>"$W/go.time" ||
		{ cat "$W/go.err" >&2; return 1; }
	t1=$(us_now)
	go_cpu "$1"
	awk -v a="$t0" -v b="$t1" 'BEGIN {print (b-a)/1e6}' >>"$W/go.$1"
	go_load "$1" "$t0" "$t1"
	[ "$2" != "$kprog" ] || kache_cpu "$1"
}

# kache_cpu NAME: the CPU seconds of the last cache program session.
kache_cpu() { tail -n 1 "$KACHE_CACHE_DIR/builds.jsonl" | jq '.go.cpu_ms / 1000' >>"$W/kcpu.$1"; }

# go_cpu NAME: the CPU seconds (user + system) of the build just timed,
# the go command and the compilers and linker it waited for; not the
# cache program (the go command never waits for it: its own CPU is in
# builds.jsonl, cpu_ms) nor the daemon.
go_cpu() { awk '{print $1 + $2}' "$W/go.time" >>"$W/gocpu.$1"; }

# go_load NAME T0 T1: one build's time and the machine's load after it (a
# shared machine's other work shows here).
go_load() { runs "$1: $(ms_between "$2" "$3") ms, load average after: $(cut -d' ' -f1-3 /proc/loadavg)"; }

# default_go [SUFFIX DIR]: the go command's own cache, cold (`go clean
# -cache`), then warm, in DIR (this repository by default), as
# default_cold$SUFFIX and default_warm$SUFFIX.
default_go() {
	local sfx=${1:-} t0 t1 phase TIMEFORMAT='%U %S'
	local gc=$W/go/gocache-default$sfx
	mkdir -p "$gc"
	GOCACHE=$gc go clean -cache
	for phase in cold warm; do
		t0=$(us_now)
		{ time (cd "${2:-$repo}" && GOCACHE=$gc GOCACHEPROG= GOPROXY=off GOFLAGS= GOWORK=off go build ./...); } 2>"$W/go.time"
		t1=$(us_now)
		go_cpu "default_$phase$sfx"
		awk -v a="$t0" -v b="$t1" 'BEGIN {print (b-a)/1e6}' >>"$W/go.default_$phase$sfx"
		go_load "default_$phase$sfx" "$t0" "$t1"
	done
}

# kache_go RUN: cold without a remote, then warm from that store; cold with
# the bucket (prefix per run; flushed and stopped untimed), then warm from
# the bucket alone: a fresh cache dir whose daemon was started untimed.
kache_go() {
	export KACHE_CACHE_DIR=$W/go/local-$1 KACHE_SOCKET_PATH=$W/go/local-$1.sock
	unset KACHE_S3_BUCKET
	gobuild kache_cold "$kprog"
	gobuild kache_warm "$kprog"
	"$bin" daemon stop >/dev/null 2>&1 || true
	(
		# shellcheck disable=SC1091
		. "$W/gw/env"
		export KACHE_S3_PREFIX=go-$1/ KACHE_CACHE_DIR=$W/go/fill-$1 KACHE_SOCKET_PATH=$W/go/fill-$1.sock
		gobuild kache_cold_remote "$kprog"
		"$bin" flush --timeout 10m >/dev/null || say "  WARNING: flush after run $1 did not confirm every upload"
		"$bin" daemon stop >/dev/null 2>&1
		export KACHE_CACHE_DIR=$W/go/empty-$1 KACHE_SOCKET_PATH=$W/go/empty-$1.sock
		"$bin" daemon start >/dev/null
		gobuild kache_warm_remote "$kprog"
		"$bin" daemon stop >/dev/null 2>&1
	)
}

# go_counts RUN: the sessions' counts of run RUN, from builds.jsonl.
go_counts() {
	local d
	for d in local fill empty big; do
		[ -f "$W/go/$d-$1/builds.jsonl" ] || continue
		runs "go run $1, cache dir $d: $(jq -c -s '[.[] | select(.tool == "go") | .go] | {sessions: length, gets: (map(.gets) | add), hits: (map(.hits) | add), remote_hits: (map(.remote_hits) | add), misses: (map(.misses) | add), puts: (map(.puts) | add), kache_cpu_s: ((map(.cpu_ms) | add) / 1000)}' "$W/go/$d-$1/builds.jsonl")"
	done
}

# The peer cache program and the larger module, both from the module proxy,
# at fixed versions so that runs compare; fetched untimed into a private
# GOPATH (and module cache) under the work dir.
cacher_pkg=github.com/bradfitz/go-tool-cache/cmd/go-cacher
cacher_version=v0.0.0-20260722201841-0bb331e19f64
big_module=golang.org/x/tools
big_version=v0.52.0

# goget CMD...: runs a go command that reaches the module proxy, with the
# bench's private GOPATH and module cache (writable, so the work dir can be
# removed), this machine's Go, and no workspace.
goget() {
	GOPATH=$W/go/gopath GOMODCACHE=$W/go/gopath/pkg/mod GOBIN=$W/go/gobin GOFLAGS=-modcacherw GOTOOLCHAIN=local GOWORK=off "$@"
}

# install_cacher: installs go-cacher into $W/go/gobin; on failure prints
# the command and its error, and cacher_err says why.
install_cacher() {
	local cmd="go install $cacher_pkg@$cacher_version"
	cacher_err=
	if ! goget $cmd >"$W/go/cacher.log" 2>&1; then
		cacher_err="\`$cmd\` failed: $(tail -n 3 "$W/go/cacher.log" | tr '\n' ' ')"
		cacher_err=${cacher_err//[$'\n\t|']/ } # one line of the table
		say "  peer go-cacher not installed: $cacher_err"
		return
	fi
	say "  peer: $cacher_pkg@$cacher_version, installed"
}

# fetch_big: downloads the larger module and everything it builds with into
# the private module cache, and copies it to $W/go/big (a module in the
# module cache is read-only); big_err says why it could not.
fetch_big() {
	local src
	big_err=
	goget go mod download -json "$big_module@$big_version" >"$W/go/big.json" 2>"$W/go/big.log" || true
	src=$(jq -r '.Dir // empty' "$W/go/big.json" 2>/dev/null || true)
	if [ -z "$src" ] || [ ! -d "$src" ] || ! cp -r "$src" "$W/go/big" || ! chmod -R u+w "$W/go/big" ||
		! (cd "$W/go/big" && goget go mod download) >>"$W/go/big.log" 2>&1; then
		big_err="could not fetch $big_module@$big_version: $(jq -r '.Error // empty' "$W/go/big.json" 2>/dev/null || true) $(tail -n 3 "$W/go/big.log" | tr '\n' ' ')"
		big_err=${big_err//[$'\n\t|']/ } # one line of the table
		say "  $big_err"
		return
	fi
	say "  larger module: $big_module@$big_version, $(cd "$W/go/big" && goget go list ./... 2>/dev/null | wc -l) packages"
}

# cacher_go RUN: go-cacher cold (an empty cache dir), then warm from that
# cache dir with a fresh GOCACHE, on this repository.
cacher_go() {
	local p="$W/go/gobin/go-cacher -cache-dir $W/go/cacher-$1"
	gobuild cacher_cold "$p"
	gobuild cacher_warm "$p"
}

# big_go RUN: the larger module with go's own cache, then through kache
# (no remote) cold and warm local.
big_go() {
	(
		export GOMODCACHE=$W/go/gopath/pkg/mod GOPATH=$W/go/gopath
		default_go _big "$W/go/big"
		export KACHE_CACHE_DIR=$W/go/big-$1 KACHE_SOCKET_PATH=$W/go/big-$1.sock
		unset KACHE_S3_BUCKET
		gobuild kache_cold_big "$kprog" "$W/go/big"
		gobuild kache_warm_big "$kprog" "$W/go/big"
		"$bin" daemon stop >/dev/null 2>&1 || true
	)
}

bench_cacheprog() {
	local go_runs=${BENCH_GO_RUNS:-3} i
	kprog="$bin cacheprog"
	section "11. go build ./...: go's own cache vs GOCACHEPROG=\"kache cacheprog\" vs go-cacher; this repository and $big_module ($go_runs runs, alternating)"
	mkdir -p "$W/go"
	install_cacher
	fetch_big
	"$repo/scripts/versitygw.sh" start "$W/gw"
	export KACHE_CONFIG=$W/none.toml KACHE_DAEMON_IDLE_TIMEOUT=0
	unset KACHE_REMOTE_DIR KACHE_LOG KACHE_S3_PREFIX
	for i in $(seq "$go_runs"); do
		default_go
		kache_go "$i"
		[ -n "$cacher_err" ] || cacher_go "$i"
		[ -n "$big_err" ] || big_go "$i"
		go_counts "$i"
	done
	"$repo/scripts/versitygw.sh" stop "$W/gw" 2>/dev/null
	go_row "cold: kache, no remote / \`go clean -cache\`" kache_cold default_cold 1.05
	go_row "cold: kache, uploading to versitygw / \`go clean -cache\`" kache_cold_remote default_cold 1.05
	go_row "warm from the local store (fresh GOCACHE) / go's warm cache" kache_warm default_warm 1.1
	go_row "warm from versitygw (empty store) / kache cold" kache_warm_remote kache_cold_remote 0.5
	cpu_row "cold, CPU: go + kache's own, no remote / \`go clean -cache\`" kache_cold default_cold 1.05
	cpu_row "cold, CPU: go + kache's own, uploading / \`go clean -cache\`" kache_cold_remote default_cold 1.05
	cpu_row "warm local, CPU: go + kache's own / go's warm cache" kache_warm default_warm 1.1
	if [ -n "$cacher_err" ]; then
		row "peer go-cacher" "not installed: $cacher_err" "" "" "" "unknown"
	else
		go_row "cold: kache, no remote / go-cacher, empty cache dir" kache_cold cacher_cold 1
		go_row "warm local: kache / go-cacher (fresh GOCACHE each)" kache_warm cacher_warm 1
	fi
	if [ -n "$big_err" ]; then
		row "$big_module" "$big_err" "" "" "" "unknown"
	else
		go_row "$big_module cold: kache, no remote / \`go clean -cache\`" kache_cold_big default_cold_big 1.05
		go_row "$big_module warm local (fresh GOCACHE) / go's warm cache" kache_warm_big default_warm_big 1.1
		cpu_row "$big_module warm local, CPU: go + kache's own / go's warm cache" kache_warm_big default_warm_big 1.1
	fi
	runs "go build ./... (s): $(for f in default_cold default_warm kache_cold kache_warm kache_cold_remote kache_warm_remote cacher_cold cacher_warm default_cold_big default_warm_big kache_cold_big kache_warm_big; do if [ -s "$W/go.$f" ]; then printf '%s %s; ' "$f" "$(list "$W/go.$f")"; fi; done)"
}

# cpu_row TITLE KACHE PEER TARGET: a row for the median CPU seconds, the
# kache case's being the go command's plus the cache program's. CPU time
# moves far less than wall time with the load of a shared machine.
cpu_row() {
	local km pm r
	paste -d' ' "$W/gocpu.$2" "$W/kcpu.$2" | awk '{print $1 + $2}' >"$W/cpusum.$2"
	km=$(median "$W/cpusum.$2")
	pm=$(median "$W/gocpu.$3")
	r=$(ratio "$km" "$pm")
	row "$1" "$(f2 "$km") s ($(f2 "$(median "$W/kcpu.$2")") s kache)" "$(f2 "$pm") s" "$r" "ratio ≤ $4" "$(within "$r" "$4")"
	runs "$1 (CPU s): kache $(list "$W/cpusum.$2")(of which kache's own $(list "$W/kcpu.$2")); go's cache $(list "$W/gocpu.$3")"
}

# go_row TITLE KACHE PEER TARGET: a row for the medians of two timings.
go_row() {
	local km pm r
	km=$(median "$W/go.$2")
	pm=$(median "$W/go.$3")
	r=$(ratio "$km" "$pm")
	row "$1" "$(f2 "$km") s" "$(f2 "$pm") s" "$r" "ratio ≤ $4" "$(within "$r" "$4")"
}

# --- the report ---------------------------------------------------------------

machine() {
	say "- Date: $(date -u)"
	say "- Machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, Linux $(uname -r)"
	say "- Load (uptime) at start: $load_start"
	say "- Load (uptime) at end: $(uptime | sed 's/^ *//')"
	say "- Versions: $("$bin" --version); sccache $(sccache --version | awk '{print $2}'); $(rclone --version | sed -n 1p);" \
		"versitygw $(sed -n 's/^VERSION=//p' "$repo/scripts/versitygw.sh"); $(hyperfine --version); $(go version | cut -d' ' -f3-)"
}

report() {
	machine
	say ""
	say "Medians; ratio = kache / peer. Process timings by \`hyperfine -N\` in $rounds rounds alternating kache and the peer;"
	say "throughput by wall clock over $tp_runs alternating runs of each tool."
	say ""
	say "| Measurement | kache | peer | ratio | target | verdict |"
	say "|---|---|---|---|---|---|"
	cat "$table"
	say ""
	say "Peers: sccache (1, 2, 10), rclone \`copy --transfers 16\` to the same versitygw (3). Package init of \`kache --version\`"
	say "(\`GODEBUG=inittrace=1\`, ms, mean of 20 runs; built with -tags urfave_cli_no_docs):"
	say ""
	say '```'
	cat "$W/inittrace"
	say '```'
	if [ -s "$W/enqueue.txt" ]; then
		say ""
		say "Go benchmark (\`go test -bench BenchmarkUploadEnqueue -benchtime 2000x ./cli\`):"
		say ""
		say '```'
		cat "$W/enqueue.txt"
		say '```'
	fi
	say ""
	say "Every run:"
	say ""
	cat "$W/runs.md"
}

# write_doc replaces the block between the markers in docs/benchmarks.md,
# creating the file if needed; the hand-written reading stays.
write_doc() {
	local begin='<!-- bench:begin -->' end='<!-- bench:end -->'
	report >"$W/block.md"
	if [ ! -f "$doc" ] || ! grep -qF "$begin" "$doc" || ! grep -qF "$end" "$doc"; then
		{
			say "# Benchmarks"
			say ""
			say "\`make bench\` (scripts/bench.sh) measures kache beside sccache and rclone on one machine in one run."
			say "The block between the markers is rewritten by every run; the reading after it is written by hand."
			say ""
			say "$begin"
			say "$end"
			say ""
			say "## Reading"
			say ""
			say "(not written yet)"
		} >"$doc"
	fi
	awk -v b="$begin" -v e="$end" -v f="$W/block.md" '
		$0 == b {print; while ((getline l < f) > 0) print l; skip = 1; next}
		$0 == e {skip = 0}
		!skip' "$doc" >"$W/doc.md"
	cp "$W/doc.md" "$doc"
}

load_start=$(uptime | sed 's/^ *//')
say "kache bench: $("$bin" --version); work dir $W; load: $load_start"
printf '' >"$W/none.toml"
# step runs a section in the background and waits for it: a signal to
# this shell interrupts `wait` at once, so the traps clean up at once
# instead of after the section (bash runs traps only between commands).
step() {
	case " ${BENCH_ONLY:-$1} " in *" $1 "* | *" ${1#bench_} "*) ;; *) return 0 ;; esac
	"$@" &
	wait $!
}

setup_sccache
local_daemon cold
step bench_start
step bench_status
"$bin" daemon stop >/dev/null 2>&1 || true
sccache --stop-server >/dev/null 2>&1 || true
step bench_throughput
step bench_enqueue
step bench_epoch
step bench_restart
step bench_scale
step bench_idle
step bench_handover
step bench_rust
step bench_cacheprog
section "results"
cat "$table"
[ -n "${BENCH_ONLY:-}" ] && { say "BENCH_ONLY set: docs/benchmarks.md left as it was"; exit 0; }
write_doc
say ""
say "wrote $doc"
