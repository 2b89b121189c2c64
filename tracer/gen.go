package tracer

// The BPF object is built with Debian's clang 14 (pinned in the Makefile as
// $(CLANG)) so that `make generate` produces byte-identical output on every
// machine that has it.
//go:generate go tool bpf2go -cc ${BPF_CLANG} -cflags ${BPF_CFLAGS} -target bpfel -type event -type connect_event -type agg_key -type owner -type stat_index -type owner_source -type rst_direction -type record_kind -type ts_option -type event_flag rstwatch ../bpf/rstwatch.c -- -I../bpf
