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

/* Adds one to a one-slot per-CPU array. */
static __always_inline void percpu_inc(void *map)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(map, &key);

	/* Per-CPU: no atomic needed, nothing shared between CPUs. */
	if (v)
		(*v)++;
}

static __always_inline int count_one(void)
{
	percpu_inc(&floor_counts);
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

/*
 * "ring": the least streaming every event can cost before any decoding. A
 * record of rstwatch's size (struct event, 152 bytes) is reserved in a ring
 * buffer of rstwatch's default size, written whole and submitted on both
 * reset tracepoints, typed as rstwatch attaches them, without a wake-up
 * until a quarter of the ring is full (as rstwatch); the bench's reader
 * drains it every 5 ms and only counts.
 */
#define RING_RECORD_WORDS (152 / 8)
#define RING_SIZE (8 << 20)

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, RING_SIZE);
} floor_ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} floor_lost SEC(".maps");

struct ring_record {
	__u64 w[RING_RECORD_WORDS];
};

static __always_inline int ring_one(void)
{
	struct ring_record *r = bpf_ringbuf_reserve(&floor_ring, sizeof(*r), 0);

	if (!r) {
		percpu_inc(&floor_lost);
		return 0;
	}
#pragma unroll
	for (int i = 0; i < RING_RECORD_WORDS; i++)
		r->w[i] = i;
	bpf_ringbuf_submit(r, bpf_ringbuf_query(&floor_ring, BPF_RB_AVAIL_DATA) >= RING_SIZE / 4 ? BPF_RB_FORCE_WAKEUP
												  : BPF_RB_NO_WAKEUP);
	return 0;
}

SEC("tp_btf/tcp_send_reset")
int ring_send(void *ctx)
{
	return ring_one();
}

SEC("tp_btf/tcp_receive_reset")
int ring_receive(void *ctx)
{
	return ring_one();
}
