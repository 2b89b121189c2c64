// Package floor is rstwatch-bench's own minimal BPF programs: on the two reset
// tracepoints, or on every hook rstwatch uses; the physical limit every
// tracer is compared against.
package floor

// Built with the same pinned clang and flags as the tracer (the Makefile
// exports BPF_CLANG and BPF_CFLAGS), so `make generate` reproduces the
// committed object byte for byte.
//go:generate go tool bpf2go -cc ${BPF_CLANG} -cflags ${BPF_CFLAGS} -target bpfel floor ../bpf/floor.c -- -I../../bpf
