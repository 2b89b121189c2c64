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
