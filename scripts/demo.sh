#!/usr/bin/env bash
# demo.sh BIN: run the kache daemon doing its main job on the embedded
# default, a directory remote under .demo/ (no S3 needed): start it, hand it
# a build artifact and a directory entry, show status and stats, fetch the
# entry back into a second, empty cache through a remote check, and stop.
set -euo pipefail
bin=$(realpath "${1:-bin/kache}")
root=$(pwd)/.demo
rm -rf "$root" && mkdir -p "$root/artifacts/libfoo"
export KACHE_CACHE_DIR=$root/cache KACHE_REMOTE_DIR=$root/remote KACHE_CONFIG=$root/none.toml
export KACHE_SOCKET_PATH=/tmp/kache-demo-$UID.sock
head -c 100000 /dev/urandom > "$root/artifacts/libfoo.rlib"
echo 'fn main() {}' > "$root/artifacts/libfoo/main.rs"
head -c 50000 /dev/urandom > "$root/artifacts/libfoo/libfoo.so"

step() { printf '\n$ %s\n' "$*"; "$@"; }
step "$bin" --version
step "$bin" daemon start
step "$bin" upload --key libfoo-1a2b3c.rlib "$root/artifacts/libfoo.rlib"
step "$bin" upload libfoo-dir-1a2b3c="$root/artifacts/libfoo"
step "$bin" daemon status
step "$bin" daemon stop
echo; echo "remote now holds (one object per entry, remote format v2):"; ls -l "$root/remote/.v2"

# A second machine: an empty cache sharing the same remote.
export KACHE_CACHE_DIR=$root/cache2
step "$bin" daemon start
step "$bin" check libfoo-dir-1a2b3c
diff -r "$root/artifacts/libfoo" "$root/cache2/store/libfoo-dir-1a2b3c" && echo "fetched entry is byte-identical"
step "$bin" stats
step "$bin" daemon stop
