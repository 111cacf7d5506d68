# kache: see README.md. Every target works on a fresh machine with Go, git
# and Debian's package manager; `make test` is what CI runs.

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# Every kache start is on a build's critical path (the wrapper is this
# binary), so the build trims start-up: urfave_cli_no_docs drops urfave/cli's
# man/markdown generator and its package initialisation; a static binary
# (CGO_ENABLED=0 with the pure-Go resolver and user lookup) skips the
# dynamic loader, about 1 ms a start; -s -w leaves the symbol tables out.
TAGS    ?= urfave_cli_no_docs netgo osusergo
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN     := bin/kache

.PHONY: all build demo test test-short s3 bench vet clean fuzz chaos

all: build

# Three binaries, installed side by side: kache (the client every compile
# starts), kache-daemon (what `kache daemon run` execs) and kache-monitor
# (what `kache monitor` execs, so the client links no terminal UI).
build:
	CGO_ENABLED=0 $(GO) build -tags '$(TAGS)' -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./cmd/kache ./cmd/kache-daemon ./cmd/kache-monitor

# The daemon doing its main job with no S3: a directory remote under
# .demo/, one upload, a remote check from a second cache, status and stop.
demo: build
	./scripts/demo.sh $(BIN)

# The whole suite, against the real binary, real sockets and a real S3
# server (versitygw, installed on first use).
test: s3
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

test-short:
	$(GO) test -count=1 -short ./...

s3:
	./scripts/versitygw.sh install >/dev/null

# The long chaos rounds (docs/reliability.md, rewritten with their
# figures); `make test` runs the short ones.
chaos: s3
	GO=$(GO) ./scripts/chaos.sh

# Every native fuzz target in the module (found by scripts/fuzz.sh), each
# for FUZZTIME. `make test` already runs each target's seed corpus.
FUZZTIME ?= 30s
fuzz:
	FUZZTIME=$(FUZZTIME) GO=$(GO) ./scripts/fuzz.sh

bench: build s3
	./scripts/bench.sh $(BIN)

vet:
	$(GO) vet ./...
	gofmt -l . | (! grep .)

clean:
	rm -rf bin .demo
