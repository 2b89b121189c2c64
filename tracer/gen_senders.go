package tracer

// The packet-level view's programs (bpf/senders.c), built like rstwatch's
// (see gen.go) into an object of their own: they load only with
// --all-senders, and a kernel that refuses them still traces.
//go:generate go tool bpf2go -cc ${BPF_CLANG} -cflags ${BPF_CFLAGS} -target bpfel -type sender_event -type sender_sock -type sender_hook -type sender_stat senders ../bpf/senders.c -- -I../bpf
