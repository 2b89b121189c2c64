//go:build ignore
// SPDX-License-Identifier: GPL-2.0

/*
 * The floor for rstwatch-bench: the least any tracer attached to the two
 * reset tracepoints can cost. "empty" measures the attachment itself;
 * "count" adds the cheapest useful work, one per-CPU increment, which is
 * what in-kernel aggregation must be compared with.
 */
#include "headers/vmlinux.h"
#include "headers/bpf_helpers.h"

char __license[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} floor_counts SEC(".maps");

SEC("tracepoint/tcp/tcp_send_reset")
int empty_send(void *ctx)
{
	return 0;
}

SEC("tracepoint/tcp/tcp_receive_reset")
int empty_receive(void *ctx)
{
	return 0;
}

static __always_inline int count_one(void)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&floor_counts, &key);

	/* Per-CPU: no atomic needed, nothing shared between CPUs. */
	if (v)
		(*v)++;
	return 0;
}

SEC("tracepoint/tcp/tcp_send_reset")
int count_send(void *ctx)
{
	return count_one();
}

SEC("tracepoint/tcp/tcp_receive_reset")
int count_receive(void *ctx)
{
	return count_one();
}

/*
 * Empty programs on every hook rstwatch attaches to, once as classic
 * tracepoints and once BTF-typed (tp_btf): the cost of being attached where
 * ordinary connections pass (socket state changes, destruction, accept),
 * which a connection-churn workload pays without any reset. accept has no
 * typed hook; both sets use its syscall tracepoints.
 */
#define EMPTY_CLASSIC(name, sec)       \
	SEC("tracepoint/" sec)         \
	int hook_classic_##name(void *ctx) \
	{                              \
		return 0;              \
	}
#define EMPTY_TYPED(name, sec)         \
	SEC("tp_btf/" sec)             \
	int hook_typed_##name(void *ctx)   \
	{                              \
		return 0;              \
	}

EMPTY_CLASSIC(send_reset, "tcp/tcp_send_reset")
EMPTY_CLASSIC(receive_reset, "tcp/tcp_receive_reset")
EMPTY_CLASSIC(set_state, "sock/inet_sock_set_state")
EMPTY_CLASSIC(destroy_sock, "tcp/tcp_destroy_sock")
EMPTY_CLASSIC(exit, "sched/sched_process_exit")
EMPTY_CLASSIC(accept4, "syscalls/sys_exit_accept4")
EMPTY_CLASSIC(accept, "syscalls/sys_exit_accept")

EMPTY_TYPED(send_reset, "tcp_send_reset")
EMPTY_TYPED(receive_reset, "tcp_receive_reset")
EMPTY_TYPED(set_state, "inet_sock_set_state")
EMPTY_TYPED(destroy_sock, "tcp_destroy_sock")
EMPTY_TYPED(exit, "sched_process_exit")
