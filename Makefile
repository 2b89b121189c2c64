# rstwatch. `make` builds ./rstwatch; `make test` runs every test (as root
# for the kernel tests); `make generate` rebuilds the BPF object.

# Pinned: Debian bookworm's clang 14 (apt-get install clang-14 llvm-14).
# The committed tracer/rstwatch_bpfel.o is byte-for-byte what it produces.
# -nostdinc: the vendored headers (bpf/headers, libbpf v1.1.2, refreshed by
# bpf/headers/update.sh) are all the BPF C may include, never the system's.
BPF_CLANG  ?= clang-14
BPF_CFLAGS ?= -O2 -g -Wall -Werror -nostdinc
# sudo's secure_path often lacks Go: fall back to the standard install.
GO         ?= $(or $(shell command -v go 2>/dev/null),/usr/local/go/bin/go)
export BPF_CLANG BPF_CFLAGS

.PHONY: all build generate test lint bench test-kernels check-generated clean fuzz

all: build

build:
	$(GO) build -o rstwatch ./cmd/rstwatch

generate:
	$(GO) generate ./tracer/ $(if $(wildcard bench/*.go bench/*/*.go),./bench/...)

# -p 1: kernel tests of different packages must not overlap (scenarios
# assert which task was on the CPU). Kernel tests need root; CI sets RSTWATCH_REQUIRE_BPF=1 so that they fail
# instead of skipping when they cannot load.
test:
	$(GO) test -p 1 -count=1 -timeout 20m ./...

lint:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

check-generated: generate
	@git diff --exit-code -- tracer bench || { echo "generated BPF files are stale: run make generate and commit"; exit 1; }

# Needs root (and nginx-light, wrk, tcpdump, bpftrace for every configuration).
# BENCH_FLAGS=-quick for a one-round smoke run of a few minutes.
BENCH_FLAGS ?=
bench: build
	$(GO) run ./bench/cmd/rstwatch-bench -rstwatch ./rstwatch $(BENCH_FLAGS)

test-kernels:
	bash kernels/run.sh

clean:
	rm -f rstwatch

# Every Fuzz target, each for FUZZTIME (committed corpora under testdata/fuzz
# run as part of `make test` too).
FUZZTIME ?= 10s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
			echo "fuzz $$pkg $$f"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done
