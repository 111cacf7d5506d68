#!/usr/bin/env bash
# bench-rust.sh BIN: the Rust section of `make bench` (issue 13), runnable
# alone (`scripts/bench-rust.sh bin/kache`) or from scripts/bench.sh
# (`BENCH_ONLY=rust ./scripts/bench.sh bin/kache`).
#
# One generated workspace (8 members, 41 crates from Debian's
# /usr/share/cargo/registry, built offline with Debian's cargo and rustc,
# -j2), built in one run:
#   no wrapper   `cargo build` after `cargo clean`, RUSTC_WRAPPER unset
#   sccache cold Debian's sccache, empty cache dir, fresh server
#   kache cold   empty cache dir, empty S3 prefix (versitygw), daemon running
#   sccache warm `cargo clean`, sccache's cache full
#   kache warm same tree       `cargo clean`, cache full
#   kache warm other checkout  the same sources copied to another directory
#   kache warm from the remote empty cache dir, a fresh daemon, the prefix
#                filled by the cold run (sccache from Debian has no S3)
# Each build is timed by /usr/bin/time (wall; user+sys of cargo's process
# tree) plus the CPU the tool's server spent meanwhile (sccache's server,
# which runs rustc itself, or kache's daemon: /proc/PID/stat, with waited-for
# children). The per-invocation cost of a hit is builds.jsonl's `ms` of the
# warm builds' hit records.
#
# Knobs: BENCH_RUST_COLD (rounds of the three cold builds, default 1),
# BENCH_RUST_WARM (rounds of the four warm builds, default 3),
# BENCH_RUST_KEEP (set: the work dir is kept), BENCH_RUST_OUT (a directory: the results table rows go to table.md and
# every run to runs.md there, for bench.sh; else they are printed).
# With the defaults the section took 11.5 minutes on 2 cores under load 9-13.
set -Eeuo pipefail
bin=$(realpath "${1:-bin/kache}")
repo=$(cd "$(dirname "$0")/.." && pwd)
cold_runs=${BENCH_RUST_COLD:-1}
warm_runs=${BENCH_RUST_WARM:-3}
out=${BENCH_RUST_OUT:-}

die() { echo "bench-rust.sh: $*" >&2; exit 1; }
say() { printf '%s\n' "$*"; }
[ -x "$bin" ] || die "$bin is not an executable kache binary; run: make build"
[ -x "$(dirname "$bin")/kache-daemon" ] || die "kache-daemon is missing beside $bin; run: make build"
for p in /usr/bin/cargo /usr/bin/rustc /usr/share/cargo/registry /usr/bin/sccache /usr/bin/time; do
	[ -e "$p" ] || die "$p missing: install Debian's cargo, rustc, sccache, time and the librust-*-dev of .ci/run"
done
command -v jq >/dev/null || die "jq missing"

W=$(mktemp -d /tmp/kbrust.XXXXXX) # short: Unix socket paths are limited
# Every process started here carries KACHE_BENCH_RUST=$W (and bench.sh's
# marker, if any): the exit trap ends those, and only those.
marker=(KACHE_BENCH_RUST="$W")
[ -n "${KACHE_BENCH_WORK:-}" ] && marker+=(KACHE_BENCH_WORK="$KACHE_BENCH_WORK")
export KACHE_BENCH_RUST=$W
[ -n "$out" ] && mkdir -p "$out"
table=${out:-$W}/table.md
runsf=${out:-$W}/runs.md
: >"$table"
: >"$runsf"

ours() {
	local p kv
	for p in /proc/[0-9]*; do
		case ${p#/proc/} in "$$" | "$BASHPID") continue ;; esac
		while IFS= read -r -d '' kv; do
			if [ "$kv" = "KACHE_BENCH_RUST=$W" ]; then echo "${p#/proc/}"; break; fi
		done 2>/dev/null <"$p/environ" || true
	done
}

cleanup() {
	set +e
	trap - ERR
	local d pids i
	for d in "$W"/kc* "$W"/kr*; do [ -d "$d" ] && kache_in "$d" daemon stop >/dev/null 2>&1; done
	sccache_env /usr/bin/sccache --stop-server >/dev/null 2>&1
	[ -f "$W/gw/pid" ] && "$repo/scripts/versitygw.sh" stop "$W/gw" >/dev/null 2>&1
	pids=$(ours)
	if [ -n "$pids" ]; then
		kill -TERM $pids 2>/dev/null
		for i in $(seq 50); do
			pids=$(ours)
			[ -z "$pids" ] && break
			sleep 0.1
		done
		[ -n "$pids" ] && kill -KILL $pids 2>/dev/null
	fi
	if [ -n "${BENCH_RUST_KEEP:-}" ]; then echo "bench-rust.sh: kept $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'echo "bench-rust.sh: line $LINENO failed: $BASH_COMMAND" >&2' ERR

free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 40000))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
}

# --- the environment of every tool ---------------------------------------------

mkdir -p "$W/cargo-home" "$W/home" "$W/xdg"
cat >"$W/cargo-home/config.toml" <<'EOF'
[source.crates-io]
replace-with = "debian"
[source.debian]
directory = "/usr/share/cargo/registry"
[net]
offline = true
EOF
# Debian's cargo and rustc, chosen explicitly (a rustup toolchain may come
# first on PATH); nothing else from the caller's environment.
base_env=(PATH=/usr/bin:/bin HOME="$W/home" XDG_CONFIG_HOME="$W/xdg" CARGO_HOME="$W/cargo-home"
	RUSTC=/usr/bin/rustc CARGO_TERM_COLOR=never CARGO_BUILD_JOBS=2 LANG=C.UTF-8 "${marker[@]}")
sccache_port=$(free_port)
sccache_vars=(SCCACHE_DIR="$W/sccache" SCCACHE_SERVER_PORT="$sccache_port" SCCACHE_IDLE_TIMEOUT=0)
sccache_env() { env -i "${base_env[@]}" "${sccache_vars[@]}" "$@"; }
printf '' >"$W/kache.toml"
s3_vars=() # filled once versitygw runs
# kache_vars DIR PREFIX: the wrapper's and daemon's variables for cache dir DIR.
kache_vars() {
	echo KACHE_CACHE_DIR="$1"
	echo KACHE_CONFIG="$W/kache.toml"
	echo KACHE_DAEMON_IDLE_TIMEOUT=0
	echo KACHE_S3_PREFIX="$2"
}
# kache_in DIR ARGS: run kache with cache dir DIR (on the current prefix).
kache_in() {
	local d=$1
	shift
	local v
	mapfile -t v < <(kache_vars "$d" "$prefix")
	env -i "${base_env[@]}" "${s3_vars[@]}" "${v[@]}" "$bin" "$@"
}
prefix=none/

# cpu_of PID: seconds of CPU of PID and its waited-for children so far.
cpu_of() {
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
	s=${s##*) }
	awk -v t="$(getconf CLK_TCK)" '{printf "%.2f\n", ($12 + $13 + $14 + $15) / t}' <<<"$s"
}

# comm_pid NAME: our process named NAME (the sccache server).
comm_pid() {
	local p
	for p in $(ours); do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$1" ] && { echo "$p"; return; }
	done
}

# --- the workspace -------------------------------------------------------------

# member NAME KIND DEPS...: a workspace member's Cargo.toml.
member() {
	local n=$1 kind=$2 d
	shift 2
	mkdir -p "$W/ws/$n/src"
	{
		printf '[package]\nname = "%s"\nversion = "0.1.0"\nedition = "2021"\n' "$n"
		[ "$kind" = proc-macro ] && printf '\n[lib]\nproc-macro = true\n'
		printf '\n[dependencies]\n'
		for d in "$@"; do say "$d"; done
	} >"$W/ws/$n/Cargo.toml"
}

gen_workspace() {
	mkdir -p "$W/ws"
	cat >"$W/ws/Cargo.toml" <<'EOF'
[workspace]
members = ["model", "conc", "pack", "rnd", "maps", "derive", "util", "app"]
EOF
	member model lib 'serde = { version = "1", features = ["derive"] }' 'serde_json = "1"' 'once_cell = "1"' \
		'log = "0.4"' 'anyhow = "1"' 'smallvec = "1"' 'bitflags = "1"' 'lazy_static = "1"' 'byteorder = "1"' \
		'memchr = "2"' 'itoa = "1"' 'cfg-if = "1"' 'libc = "0.2"'
	member conc lib 'crossbeam-channel = "0.5"' 'crossbeam-deque = "0.8"' 'num_cpus = "1"' 'either = "1"'
	member pack lib 'flate2 = "1"' 'crc32fast = "1"'
	member rnd lib 'rand = "0.8"'
	member maps lib 'indexmap = "1"' 'hashbrown = "0.12"' 'ahash = "0.7"'
	member derive proc-macro 'quote = "1"' 'proc-macro2 = "1"' 'syn = "1"'
	member util lib
	member app bin 'model = { path = "../model" }' 'conc = { path = "../conc" }' 'pack = { path = "../pack" }' \
		'rnd = { path = "../rnd" }' 'maps = { path = "../maps" }' 'derive = { path = "../derive" }' 'util = { path = "../util" }'
	cat >"$W/ws/model/build.rs" <<'EOF'
use std::{env, fs, path::Path};
fn main() {
    let out = env::var("OUT_DIR").unwrap();
    fs::write(Path::new(&out).join("generated.rs"), "pub const GENERATED: u32 = 41;\n").unwrap();
    println!("cargo:rerun-if-changed=build.rs");
}
EOF
	cat >"$W/ws/model/src/lib.rs" <<'EOF'
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
include!(concat!(env!("OUT_DIR"), "/generated.rs"));
bitflags::bitflags! { pub struct Flags: u32 { const A = 1; const B = 2; } }
lazy_static::lazy_static! { static ref NAME: String = String::from("model"); }
static COUNT: once_cell::sync::Lazy<usize> = once_cell::sync::Lazy::new(|| 3);
#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct Item { pub id: u64, pub name: String, pub tags: Vec<String> }
pub fn roundtrip(id: u64) -> anyhow::Result<Item> {
    let it = Item { id, name: NAME.clone(), tags: vec!["x".into(); *COUNT] };
    let s = serde_json::to_string(&it)?;
    log::debug!("{}", s);
    let mut b = itoa::Buffer::new();
    let _ = memchr::memchr(b'x', b.format(id).as_bytes());
    let mut v: Vec<u8> = Vec::new();
    byteorder::WriteBytesExt::write_u32::<byteorder::LittleEndian>(&mut v, GENERATED)?;
    let _s: SmallVec<[u8; 8]> = v.iter().copied().collect();
    let _ = unsafe { libc::getpid() } + (Flags::A | Flags::B).bits() as i32;
    cfg_if::cfg_if! { if #[cfg(unix)] { let _ = 1; } }
    Ok(serde_json::from_str(&s)?)
}
EOF
	cat >"$W/ws/conc/src/lib.rs" <<'EOF'
pub fn sum(n: u64) -> u64 {
    let (tx, rx) = crossbeam_channel::unbounded();
    let w = crossbeam_deque::Worker::new_fifo();
    for i in 0..n { w.push(i); }
    while let Some(i) = w.pop() { tx.send(i).unwrap(); }
    drop(tx);
    let e: either::Either<u64, u64> = either::Left(rx.iter().sum::<u64>() + num_cpus::get() as u64 * 0);
    e.either(|a| a, |b| b)
}
EOF
	cat >"$W/ws/pack/src/lib.rs" <<'EOF'
use std::io::Write;
pub fn pack(data: &[u8]) -> (usize, u32) {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    (e.finish().unwrap().len(), crc32fast::hash(data))
}
EOF
	cat >"$W/ws/rnd/src/lib.rs" <<'EOF'
use rand::{Rng, SeedableRng};
pub fn roll(seed: u64) -> u32 { rand::rngs::StdRng::seed_from_u64(seed).gen_range(1..7) }
EOF
	cat >"$W/ws/maps/src/lib.rs" <<'EOF'
pub fn count(words: &[&str]) -> usize {
    let mut m: indexmap::IndexMap<&str, usize, ahash::RandomState> = indexmap::IndexMap::default();
    let mut h = hashbrown::HashSet::new();
    for w in words { *m.entry(w).or_default() += 1; h.insert(*w); }
    m.len() + h.len()
}
EOF
	cat >"$W/ws/derive/src/lib.rs" <<'EOF'
use proc_macro::TokenStream;
use quote::quote;
#[proc_macro_derive(Named)]
pub fn named(input: TokenStream) -> TokenStream {
    let ast: syn::DeriveInput = syn::parse(input).unwrap();
    let name = &ast.ident;
    let s = name.to_string();
    quote!(impl #name { pub fn name() -> &'static str { #s } }).into()
}
EOF
	cat >"$W/ws/util/src/lib.rs" <<'EOF'
pub fn join(parts: &[String]) -> String { parts.join("+") }
EOF
	cat >"$W/ws/app/src/main.rs" <<'EOF'
#[derive(derive::Named)]
struct App;
fn main() {
    let it = model::roundtrip(7).unwrap();
    let parts = vec![App::name().to_string(), it.name, conc::sum(10).to_string(), pack::pack(b"aaaa").1.to_string(),
        rnd::roll(1).to_string(), maps::count(&["a", "b", "a"]).to_string()];
    println!("{}", util::join(&parts));
}
EOF
	# the lock file first, so no build resolves; the other checkout is a
	# plain copy of the sources
	(cd "$W/ws" && env -i "${base_env[@]}" /usr/bin/cargo generate-lockfile --offline -q)
	cp -r "$W/ws" "$W/other"
}

# --- one build -------------------------------------------------------------------

want_out=""
# build LABEL DIR SERVERPID VARS...: `cargo clean` (or the target dir removed)
# then `cargo build -j2` in DIR with VARS; appends wall and CPU seconds to
# $W/wall.LABEL and $W/cpu.LABEL (CPU: cargo's tree plus SERVERPID's delta).
build() {
	local label=$1 dir=$2 spid=$3 s0=0 s1=0 wall u s cpu srv
	shift 3
	rm -rf "$dir/target"
	[ -n "$spid" ] && s0=$(cpu_of "$spid")
	if ! (cd "$dir" && env -i "${base_env[@]}" "$@" /usr/bin/time -f '%e %U %S' -o "$W/time.out" \
		/usr/bin/cargo build -j2 --offline) >"$W/log.$label" 2>&1; then
		tail -n 30 "$W/log.$label" >&2
		die "$label: cargo build failed"
	fi
	[ -n "$spid" ] && s1=$(cpu_of "$spid")
	read -r wall u s <"$W/time.out"
	srv=$(awk -v a="$s0" -v b="$s1" 'BEGIN {printf "%.2f", b-a}')
	cpu=$(awk -v u="$u" -v s="$s" -v d="$srv" 'BEGIN {printf "%.2f", u+s+d}')
	echo "$wall" >>"$W/wall.$label"
	echo "$cpu" >>"$W/cpu.$label"
	local got
	got=$("$dir/target/debug/app") || die "$label: the built app failed"
	[ -z "$want_out" ] && want_out=$got
	[ "$got" = "$want_out" ] || die "$label: the built app printed '$got', want '$want_out'"
	say "  $label: wall $wall s, CPU $cpu s (cargo tree $(awk -v u="$u" -v s="$s" 'BEGIN {print u+s}') s, server $srv s); load $(cut -d' ' -f1-3 /proc/loadavg)"
}

# kbuild LABEL DIR CACHEDIR: build with kache as the wrapper; the cache
# dir's builds.jsonl records of this build go to $W/recs.LABEL.
kbuild() {
	local label=$1 dir=$2 c=$3 n0 pid v
	n0=0
	[ -f "$c/builds.jsonl" ] && n0=$(wc -l <"$c/builds.jsonl")
	pid=$(kache_in "$c" daemon status --json 2>/dev/null | jq -r '.daemon.pid // empty')
	[ -n "$pid" ] || die "$label: no daemon on $c"
	mapfile -t v < <(kache_vars "$c" "$prefix")
	build "$label" "$dir" "$pid" RUSTC_WRAPPER="$bin" "${s3_vars[@]}" "${v[@]}"
	tail -n +"$((n0 + 1))" "$c/builds.jsonl" >>"$W/recs.$label"
	say "    outcomes: $(tail -n +"$((n0 + 1))" "$c/builds.jsonl" | jq -r .outcome | sort | uniq -c | awk '{printf "%s %s; ", $2, $1}')"
}

# tbuild LABEL DIR CACHEDIR: kbuild with a shim between cargo and kache
# that logs each kache process's pid and its wall time from before its fork
# to after its exit ($W/shim.log), for the cost of a hit as a whole process
# (builds.jsonl's ms starts once kache's own code runs).
tbuild() {
	cat >"$W/shim" <<EOF
#!/bin/bash
t0=\$EPOCHREALTIME
"$bin" "\$@" <&0 &
p=\$!
wait \$p
rc=\$?
echo "\$p \$t0 \$EPOCHREALTIME" >>"$W/shim.log"
exit \$rc
EOF
	chmod +x "$W/shim"
	local sbin=$bin
	bin=$W/shim
	kbuild "$@"
	bin=$sbin
}

# --- statistics --------------------------------------------------------------------

median() { sort -g "$1" | awk '{a[NR]=$1} END {if (!NR) print "nan"; else print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# pct FILE P: the P-th percentile (nearest rank).
pct() { sort -g "$1" | awk -v p="$2" '{a[NR]=$1} END {if (!NR) {print "nan"; exit} i = int(p/100*NR + 0.9999); if (i < 1) i = 1; print a[i]}'; }
f1() { awk -v x="$1" 'BEGIN {printf "%.1f", x}'; }
f2() { awk -v x="$1" 'BEGIN {printf "%.2f", x}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
within() { awk -v x="$1" -v l="$2" 'BEGIN {print (x <= l) ? "met" : "NOT met"}'; }
list() { awk '{printf "%s ", $1}' "$1"; }
row() {
	printf '| %s | %s | %s | %s | %s | %s |\n' "$@" >>"$table"
	[ -n "$out" ] || return 0
	printf '  %-52s kache %-10s peer %-10s ratio %-6s target %-14s %s\n' "$@"
}
runs() { say "- $*" >>"$runsf"; }

# --- the run ---------------------------------------------------------------------

load_start=$(uptime | sed 's/^ *//')
say "bench-rust: $("$bin" --version); $(/usr/bin/cargo --version); $(/usr/bin/rustc --version); $(/usr/bin/sccache --version)"
say "bench-rust: work dir $W; load: $load_start"
gen_workspace
if [ -n "${BENCH_RUST_GEN:-}" ]; then # only write the workspace to that directory
	cp -r "$W/ws" "$BENCH_RUST_GEN"
	exit 0
fi
say "bench-rust: workspace $W/ws: 8 members, $(grep -c '^name = ' "$W/ws/Cargo.lock") packages in Cargo.lock"

env "${marker[@]}" "$repo/scripts/versitygw.sh" start "$W/gw" >/dev/null
# shellcheck disable=SC1091
mapfile -t s3_vars < <(. "$W/gw/env" && env | grep -E '^(AWS_|KACHE_S3_)')

for r in $(seq "$cold_runs"); do
	say "cold round $r of $cold_runs"
	build plain "$W/ws" ""
	sccache_env /usr/bin/sccache --stop-server >/dev/null 2>&1 || true
	rm -rf "$W/sccache"
	sccache_env /usr/bin/sccache --start-server >/dev/null 2>&1
	spid=$(comm_pid sccache)
	[ -n "$spid" ] || die "no sccache server found"
	build sccache-cold "$W/ws" "$spid" RUSTC_WRAPPER=/usr/bin/sccache "${sccache_vars[@]}"
	prefix=cold$r/
	kc=$W/kc$r
	[ -d "$W/kc$((r - 1))" ] && kache_in "$W/kc$((r - 1))" daemon stop >/dev/null 2>&1
	kache_in "$kc" daemon start >/dev/null
	kpid=$(kache_in "$kc" daemon status --json | jq -r '.daemon.pid')
	kbuild kache-cold "$W/ws" "$kc"
	t0=${EPOCHREALTIME/./}
	c0=$(cpu_of "$kpid")
	kache_in "$kc" flush --timeout 5m >"$W/flush.out" 2>&1 || { cat "$W/flush.out" >&2; die "kache flush failed"; }
	t1=${EPOCHREALTIME/./}
	say "    flush after the build: $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", (b-a)/1e6}') s, daemon CPU $(awk -v a="$c0" -v b="$(cpu_of "$kpid")" 'BEGIN {printf "%.2f", b-a}') s"
	awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f\n", (b-a)/1e6}' >>"$W/flush"
done
say "bucket $prefix: $(find "$W/gw/root" -type f -path "*${prefix}*" | wc -l) objects"

for r in $(seq "$warm_runs"); do
	say "warm round $r of $warm_runs"
	build sccache-warm "$W/ws" "$spid" RUSTC_WRAPPER=/usr/bin/sccache "${sccache_vars[@]}"
	kbuild kache-warm "$W/ws" "$kc"
	[ "$r" = 1 ] && tbuild kache-timed "$W/ws" "$kc"
	kbuild kache-other "$W/other" "$kc"
	kr=$W/kr$r
	kache_in "$kr" daemon start >/dev/null
	kbuild kache-remote "$W/other" "$kr"
	kache_in "$kr" daemon stop >/dev/null 2>&1
done
sccache_env /usr/bin/sccache --show-stats >"$W/sccache.stats" 2>&1 || true
load_end=$(uptime | sed 's/^ *//')

# --- the rows --------------------------------------------------------------------

m() { median "$W/$1.$2"; }
pw=$(m wall plain) pc=$(m cpu plain)
scw=$(m wall sccache-cold) scc=$(m cpu sccache-cold)
kcw=$(m wall kache-cold) kcc=$(m cpu kache-cold)
sww=$(m wall sccache-warm) swc=$(m cpu sccache-warm)
# cell W C: "W s (CPU C s)"
cell() { say "$(f1 "$1") s (CPU $(f1 "$2") s)"; }
pct_over() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%+.1f %%", (a/b-1)*100}'; }

r1=$(ratio "$kcw" "$pw") r2=$(ratio "$kcw" "$scw")
row "Rust: no wrapper (\`cargo clean\`, build -j2)" "$(cell "$pw" "$pc")" "" "" "" ""
row "Rust cold (empty cache): wall over no wrapper" "$(cell "$kcw" "$kcc"): $(pct_over "$kcw" "$pw")" \
	"sccache $(cell "$scw" "$scc"): $(pct_over "$scw" "$pw")" "$r1" "≤ 1.05" "$(within "$r1" 1.05)"
row "… cold, kache against sccache" "CPU $(pct_over "$kcc" "$pc") over no wrapper" "CPU $(pct_over "$scc" "$pc")" "$r2" "≤ 1" "$(within "$r2" 1)"
row "Rust warm: sccache, same tree (\`cargo clean\`)" "" "$(cell "$sww" "$swc")" "" "" ""
for ph in warm:"same tree (\`cargo clean\`)" other:"other checkout (a copy of the sources)"; do
	l=kache-${ph%%:*}
	w=$(m wall "$l") c=$(m cpu "$l")
	ra=$(ratio "$w" "$sww") rb=$(ratio "$w" "$pw")
	row "Rust warm, ${ph#*:}: against sccache warm / no wrapper" "$(cell "$w" "$c")" "$(f1 "$sww") s / $(f1 "$pw") s" \
		"$ra / $rb" "≤ 0.5 / ≤ 0.2" "$(within "$ra" 0.5) / $(within "$rb" 0.2)"
done
w=$(m wall kache-remote) c=$(m cpu kache-remote)
rr=$(ratio "$w" "$pw")
row "Rust warm from the remote (empty cache dir, versitygw): against no wrapper" "$(cell "$w" "$c")" "$(f1 "$pw") s" "$rr" "≤ 0.3" "$(within "$rr" 0.3)"
row "… against kache cold / kache warm same tree" "" "$(f1 "$kcw") s / $(f1 "$(m wall kache-warm)") s" \
	"$(ratio "$w" "$kcw") / $(ratio "$w" "$(m wall kache-warm)")" "" ""
cat "$W"/recs.kache-warm "$W"/recs.kache-other | jq -r 'select(.outcome == "local_hit") | .ms' >"$W/hit.ms"
jq -r 'select(.outcome == "remote_hit") | .ms' "$W/recs.kache-remote" >"$W/rhit.ms"
row "Rust hit, wrapper start to exit (builds.jsonl ms, $(wc -l <"$W/hit.ms") local hits): p50 / p99" \
	"$(f1 "$(pct "$W/hit.ms" 50)") / $(f1 "$(pct "$W/hit.ms" 99)") ms" "" "" "" ""
# the shim's wall time of each local hit of the timed build, in ms
jq -r 'select(.outcome == "local_hit") | "\(.pid)"' "$W/recs.kache-timed" | sort >"$W/timed.pids"
sort -k1,1 "$W/shim.log" | join - "$W/timed.pids" | awk '{printf "%.2f\n", ($3 - $2) * 1000}' >"$W/proc.ms"
row "… the same as whole processes (a shim's fork to exit; one extra build, $(wc -l <"$W/proc.ms") hits): p50 / p99" \
	"$(f1 "$(pct "$W/proc.ms" 50)") / $(f1 "$(pct "$W/proc.ms" 99)") ms" "" "" "" ""
row "… remote hits ($(wc -l <"$W/rhit.ms")): p50 / p99" "$(f1 "$(pct "$W/rhit.ms" 50)") / $(f1 "$(pct "$W/rhit.ms" 99)") ms" "" "" "" ""

runs "Rust builds: workspace of 8 members, $(grep -c '^name = ' "$W/ws/Cargo.lock") packages; cold rounds $cold_runs, warm rounds $warm_runs; load at start: $load_start; at end: $load_end"
for l in plain sccache-cold kache-cold sccache-warm kache-warm kache-other kache-remote; do
	runs "Rust $l (s): wall $(list "$W/wall.$l"); CPU $(list "$W/cpu.$l")"
done
runs "Rust kache flush after the cold build (s): $(list "$W/flush")"
runs "Rust kache-timed (the shim build, not in the medians) (s): wall $(list "$W/wall.kache-timed")"
for l in kache-cold kache-warm kache-other kache-remote; do
	runs "Rust $l outcomes (all rounds): $(jq -r .outcome "$W/recs.$l" | sort | uniq -c | awk '{printf "%s %s; ", $2, $1}')"
done
runs "Rust sccache stats at the end: $(grep -E '^(Compile requests|Cache hits|Cache misses|Non-cacheable calls)' "$W/sccache.stats" | sed 's/  */ /g' | tr '\n' ';')"

say ""
say "load at start: $load_start"
say "load at end:   $load_end"
if [ -z "$out" ]; then
	say ""
	say "| Measurement | kache | peer | ratio | target | verdict |"
	say "|---|---|---|---|---|---|"
	cat "$table"
	say ""
	cat "$runsf"
fi
