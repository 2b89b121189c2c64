/* SPDX-License-Identifier: GPL-2.0 */
/*
 * In-kernel aggregation (serve): one counter per (direction, reason, TCP
 * state, owner, owner's cgroup, namespace, ZooKeeper endpoint), read by user space on
 * scrape. No ring buffer, no wake-up, no per-event copy. The counters are
 * per CPU: a storm that keeps hitting one key on every CPU would otherwise
 * bounce its cache line between them; user space sums them.
 */
#ifndef __RSTWATCH_AGGREGATE_H__
#define __RSTWATCH_AGGREGATE_H__

#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct agg_key);
	__type(value, __u64);
} counts SEC(".maps");

static __always_inline void agg_key_of(const struct event *e, struct agg_key *out)
{
	struct agg_key k = {};

	k.owner_cgroup = e->owner_cgroup;
	k.owner_pid = e->owner_pid;
	k.netns = e->netns;
	k.reason = e->reason;
	k.direction = e->direction;
	k.owner_source = e->owner_source;
	k.state = e->state;
	__builtin_memcpy(k.owner_comm, e->owner_comm, sizeof(k.owner_comm));
	if (port_has(e->lport, PORT_ZK)) {
		k.zk_port = e->lport;
		k.zk_family = e->family;
		__builtin_memcpy(k.zk_addr, e->laddr, sizeof(k.zk_addr));
	} else if (port_has(e->rport, PORT_ZK)) {
		k.zk_port = e->rport;
		k.zk_family = e->family;
		__builtin_memcpy(k.zk_addr, e->raddr, sizeof(k.zk_addr));
	}
	__builtin_memcpy(out, &k, sizeof(k));
}

static __always_inline void count_event(const struct event *e)
{
	struct agg_key k;
	__u64 one = 1, *v;

	agg_key_of(e, &k);
	/*
	 * This CPU's counter. Still atomic: a softirq's program may interrupt
	 * another program on this CPU between its load and its store; on a
	 * cache line no other CPU writes, the atomic costs little.
	 */
	v = bpf_map_lookup_elem(&counts, &k);
	if (v) {
		__sync_fetch_and_add(v, 1);
		return;
	}
	/* A new key starts at one here and zero on the other CPUs. */
	if (bpf_map_update_elem(&counts, &k, &one, BPF_NOEXIST) == 0)
		return;
	/* Another CPU inserted it meanwhile: the key exists now. */
	v = bpf_map_lookup_elem(&counts, &k);
	if (v) {
		__sync_fetch_and_add(v, 1);
		return;
	}
	/* Full: fold into the all-zero overflow key, which the loader creates. */
	stat_inc(STAT_AGG_FULL);
	struct agg_key overflow = {};
	v = bpf_map_lookup_elem(&counts, &overflow);
	if (v)
		__sync_fetch_and_add(v, 1);
}

/*
 * Takes back one count of k on this CPU, which counted it (a receive that
 * turned out to be the kernel's own abort). A key gone meanwhile stays gone.
 */
static __always_inline void uncount_key(const struct agg_key *k)
{
	__u64 *v = bpf_map_lookup_elem(&counts, k);

	if (v && *v)
		__sync_fetch_and_add(v, -1);
}

#endif /* __RSTWATCH_AGGREGATE_H__ */
