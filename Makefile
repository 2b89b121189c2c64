# rstwatch. `make run` builds ./rstwatch and runs it; `make test` runs every
# test. Both work as root and, through sudo, as a user: Go builds as you,
# only the programs that load BPF run as root. `make generate` rebuilds the
# BPF object.

# Pinned: Debian bookworm's clang 14 (apt-get install clang-14 llvm-14).
# The committed tracer/rstwatch_bpfel.o is byte-for-byte what it produces.
# -nostdinc: the vendored headers (bpf/headers, libbpf v1.1.2, refreshed by
# bpf/headers/update.sh) are all the BPF C may include, never the system's.
BPF_CLANG  ?= clang-14
BPF_CFLAGS ?= -O2 -g -Wall -Werror -nostdinc
# sudo's secure_path often lacks Go: fall back to the standard install.
GO         ?= $(or $(shell command -v go 2>/dev/null),/usr/local/go/bin/go)
export BPF_CLANG BPF_CFLAGS

# Root runs the kernel side itself; anyone else through sudo, which keeps
# only the variables named here (the tests' RSTWATCH_REQUIRE_*, and the
# binary built as the user, so that root never builds into the user's tree).
SUDO_ENV   := RSTWATCH_REQUIRE_BPF,RSTWATCH_REQUIRE_ZK,RSTWATCH_REQUIRE_PROMETHEUS,RSTWATCH_TEST_BIN
SUDO       := $(if $(filter 0,$(shell id -u)),,sudo --preserve-env=$(SUDO_ENV))

# The version and commit `rstwatch version` prints.
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null)
COMMIT     ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS    := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: all build run generate test race lint bench test-kernels check-generated clean fuzz

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o rstwatch ./cmd/rstwatch

# make run ARGS='--port 2181 --duration 1m'
ARGS ?=
run: build
	$(SUDO) ./rstwatch $(ARGS)

generate:
	$(GO) generate ./tracer/ $(if $(wildcard bench/*.go bench/*/*.go),./bench/...)

# -p 1: kernel tests of different packages must not overlap (scenarios
# assert which task was on the CPU). Kernel tests need root: they run under
# sudo when you are not root (go test -exec). CI sets RSTWATCH_REQUIRE_BPF=1
# so that they fail instead of skipping when they cannot load. Then the
# packages that load no BPF again, with the race detector.
test: build
	RSTWATCH_TEST_BIN=$(CURDIR)/rstwatch $(GO) test -p 1 -count=1 -timeout 20m $(if $(SUDO),-exec '$(SUDO)') ./...
	$(MAKE) --no-print-directory race

# The packages whose tests load BPF (directly or through the binary) are
# left out: the race detector runs in the test process, as the user.
RACE_PKGS = $(shell $(GO) list ./... | grep -v -e '/tracer$$' -e '/cmd/rstwatch$$' -e '/internal/metrics/e2e$$' -e '/internal/doctor$$')
race:
	$(GO) test -race -count=1 -timeout 10m $(RACE_PKGS)

# staticcheck is a tool dependency pinned in go.mod (go tool staticcheck).
lint:
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

check-generated: generate
	@git diff --exit-code -- tracer bench || { echo "generated BPF files are stale: run make generate and commit"; exit 1; }

# Needs root (and nginx-light, wrk, tcpdump, bpftrace for every configuration).
# BENCH_FLAGS=-quick for a one-round smoke run of a few minutes.
BENCH_FLAGS ?=
bench: build
	$(GO) run ./bench/cmd/rstwatch-bench -rstwatch ./rstwatch $(BENCH_FLAGS)

# Needs root (apt-get, BPF).
test-kernels:
	bash kernels/run.sh

clean:
	rm -f rstwatch

# Every Fuzz target, each for FUZZTIME (committed corpora under testdata/fuzz
# run as part of `make test` too). A count of executions, not a duration: with
# a duration, Go 1.26's fuzzing coordinator can fail a target at the deadline
# with "context deadline exceeded" and no crasher on a loaded machine (Go
# issue 75804, fixed in 1.27; seen in CI here on FuzzParseKubelet).
FUZZTIME ?= 300000x
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
			echo "fuzz $$pkg $$f"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done
