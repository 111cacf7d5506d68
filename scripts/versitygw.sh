#!/usr/bin/env bash
# versitygw.sh: a real S3 server (versitygw, POSIX backend) for tests, CI and
# benchmarks, on 127.0.0.1 with fixed test keys.
#
#   scripts/versitygw.sh install     install versitygw if missing; print its path
#   scripts/versitygw.sh start DIR   start it with root DIR/root and bucket kache-test;
#                                    writes DIR/pid, DIR/env (source it), DIR/versitygw.log.
#                                    PORT=NNNN picks the port (default: a free one).
#   scripts/versitygw.sh stop DIR    stop the server started with DIR
#
# The Go tests start their own server (package uploader/s3test) with the
# same keys; they only need the binary this script installs.
set -euo pipefail

VERSION=v1.8.0
ACCESS=kacheaccess
SECRET=kachesecret123
BUCKET=kache-test

die() { echo "versitygw.sh: $*" >&2; exit 1; }

# find_bin prints the installed binary, or fails.
find_bin() {
	local d
	if command -v versitygw >/dev/null 2>&1; then command -v versitygw; return; fi
	for d in "${GOBIN:-}" "$(go env GOPATH 2>/dev/null)/bin" /root/go/bin; do
		if [ -n "$d" ] && [ -x "$d/versitygw" ]; then echo "$d/versitygw"; return; fi
	done
	return 1
}

install() {
	if find_bin; then return; fi
	command -v go >/dev/null 2>&1 || die "go is not installed; install Go first"
	local gobin="${GOBIN:-$(go env GOPATH)/bin}"
	echo "versitygw.sh: installing versitygw $VERSION into $gobin (about a minute)" >&2
	GOBIN="$gobin" go install "github.com/versity/versitygw/cmd/versitygw@$VERSION"
	echo "$gobin/versitygw"
}

# port_busy succeeds if something listens on 127.0.0.1:$1.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port prints a port in 20000-59999 that nothing listens on.
free_port() {
	local p i
	for i in $(seq 1 100); do
		p=$((20000 + RANDOM % 40000))
		if ! port_busy "$p"; then echo "$p"; return; fi
	done
	die "no free port found"
}

start() {
	local dir="${1:?usage: versitygw.sh start DIR}" bin port pid i
	bin="$(find_bin)" || die "versitygw not installed: run scripts/versitygw.sh install"
	mkdir -p "$dir/root/$BUCKET"
	dir="$(cd "$dir" && pwd)"
	if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
		die "already running in $dir (pid $(cat "$dir/pid")); run: scripts/versitygw.sh stop $dir"
	fi
	port="${PORT:-$(free_port)}"
	port_busy "$port" && die "port $port is already in use; set PORT to another one"
	# --keep-alive: like AWS, keep connections open between requests (the
	# default closes each one, which would skew benchmarks).
	nohup "$bin" --access "$ACCESS" --secret "$SECRET" --port "127.0.0.1:$port" --quiet --keep-alive \
		posix "$dir/root" >"$dir/versitygw.log" 2>&1 &
	pid=$!
	echo "$pid" >"$dir/pid"
	cat >"$dir/env" <<EOF
export AWS_ACCESS_KEY_ID=$ACCESS
export AWS_SECRET_ACCESS_KEY=$SECRET
export AWS_REGION=us-east-1
export KACHE_S3_ENDPOINT=http://127.0.0.1:$port
export KACHE_S3_BUCKET=$BUCKET
EOF
	for i in $(seq 1 200); do # up to 20 s
		if ! kill -0 "$pid" 2>/dev/null; then
			rm -f "$dir/pid"
			cat "$dir/versitygw.log" >&2
			die "versitygw exited at start (log above)"
		fi
		if port_busy "$port"; then
			echo "versitygw.sh: serving http://127.0.0.1:$port (pid $pid); source $dir/env" >&2
			return
		fi
		sleep 0.1
	done
	stop "$dir"
	die "versitygw did not answer on 127.0.0.1:$port within 20 s"
}

stop() {
	local dir="${1:?usage: versitygw.sh stop DIR}" pid i
	[ -f "$dir/pid" ] || { echo "versitygw.sh: not running in $dir" >&2; return; }
	pid="$(cat "$dir/pid")"
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 1 100); do # up to 10 s, then SIGKILL
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	rm -f "$dir/pid"
}

case "${1:-}" in
install) install ;;
start) start "${2:-}" ;;
stop) stop "${2:-}" ;;
*) die "usage: versitygw.sh install | start DIR | stop DIR" ;;
esac
