/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What every concern shares: kernel types, constants, the loader's
 * configuration and the per-CPU counters.
 *
 * Most logic is written once for two kinds of program: BTF-typed ones
 * (tp_btf, iterators), which read kernel memory with plain loads that the
 * verifier relocates and guards, and classic tracepoints, which must go
 * through bpf_probe_read_kernel. Functions take a compile-time `typed` flag
 * and read with KREAD, so each program keeps only its own kind of read.
 */
#ifndef __RSTWATCH_COMMON_H__
#define __RSTWATCH_COMMON_H__

#include "../headers/vmlinux.h"
#include "../headers/bpf_helpers.h"
#include "../headers/bpf_core_read.h"
#include "../headers/bpf_endian.h"
#include "../headers/bpf_tracing.h"
#include "../rstwatch.h"

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define SOCK_STREAM 1

#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_SYN_RECV 3
#define TCP_FIN_WAIT1 4
#define TCP_FIN_WAIT2 5
#define TCP_TIME_WAIT 6
#define TCP_CLOSE 7
#define TCP_CLOSE_WAIT 8
#define TCP_LAST_ACK 9
#define TCP_LISTEN 10
#define TCP_CLOSING 11
#define TCP_NEW_SYN_RECV 12

/*
 * KREAD(typed, p, a, b, ...) reads p->a->b...: a plain load in a typed
 * program, BPF_CORE_READ (helper calls) in a classic one. `typed` must be a
 * constant once inlined, so the other branch is compiled away.
 */
#define KREAD(typed, src, a, ...) \
	((typed) ? ___arrow(src, a, ##__VA_ARGS__) : BPF_CORE_READ(src, a, ##__VA_ARGS__))

/* Set by the loader before load. */
const volatile __u32 filter_pid = 0;      /* 0: any; else owner or task tgid */
const volatile __u32 filter_netns = 0;    /* 0: any */
const volatile bool filter_ports = false;  /* match local or remote port in ports */
const volatile bool filter_cgroups = false; /* match owner or task cgroup in cgroups */
const volatile bool emit_events = true;   /* false: aggregate only (serve) */
const volatile bool aggregate = false;
const volatile bool zk_connects = false;  /* report connections to/from ZooKeeper ports */
const volatile __u64 wakeup_bytes = 0;    /* 0: wake the reader per record */

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);
	if (v)
		(*v)++;
}

/*
 * Ports to report (--port) and ZooKeeper ports, as two bitmaps of 1024
 * words (8 KiB each): every reset looks up its two ports, and an array of
 * a value per port (512 KiB) made that a cache miss for every new
 * ephemeral port.
 */
#define PORT_REPORT 0
#define PORT_ZK 1
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * 1024);
	__type(key, __u32);
	__type(value, __u64);
} ports SEC(".maps");

static __always_inline bool port_has(__u16 port, __u32 set)
{
	__u32 key = (set << 10) | (port >> 6);
	__u64 *w = bpf_map_lookup_elem(&ports, &key);
	return w && ((*w >> (port & 63)) & 1);
}

/* Timewait and request sockets end at sock_common: no sock fields beyond. */
static __always_inline bool full_sock(__u8 state)
{
	return state != TCP_TIME_WAIT && state != TCP_NEW_SYN_RECV;
}

/*
 * The low 32 bits of a pointer, as a number. A typed program's kernel
 * pointer allows no arithmetic, but a privileged program may copy its lower
 * half (a 32-bit move); spelled in assembly because the compiler would
 * shift instead.
 */
static __always_inline __u32 ptr_low32(__u64 p)
{
	__u64 v;

	asm volatile("r0 = %1; w0 = w0; %0 = r0" : "=r"(v) : "r"(p) : "r0");
	return (__u32)v;
}

/*
 * A kernel object's pointer mixed into 32 bits (Fibonacci hashing) for
 * indexing a table by its top bits: slab objects are aligned, so the low
 * bits are dropped first.
 */
static __always_inline __u32 ptr_hash(__u64 p)
{
	return (ptr_low32(p) >> 6) * 0x9E3779B1U;
}

/*
 * Namespace inode numbers by struct net, per CPU. The inode number shares a
 * cache line with the namespace's reference count, which every socket made
 * or freed anywhere changes: reading it on every reset was a cache miss
 * that cost more than the rest of the send program. The namespace's cookie
 * is written once, on a line that stays shared: a slot is used only for
 * the same struct net with the same cookie (a namespace freed and another
 * made at its address has another cookie). A CPU's slots are not written
 * by other CPUs; a program nested on the same CPU (a softirq in the middle)
 * can only make the checks fail, and then the inode number is read from
 * the namespace.
 */
#define NETNS_SLOTS 64

struct netns_slot {
	__u64 net; /* 0 while being written */
	__u64 cookie;
	__u32 inum;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NETNS_SLOTS);
	__type(key, __u32);
	__type(value, struct netns_slot);
} netns_cache SEC(".maps");

#define compiler_barrier() asm volatile("" ::: "memory")

static __always_inline __u32 net_inum(const struct net *net, bool typed)
{
	struct netns_slot *s = NULL;
	__u64 cookie = 0;
	__u32 inum;

	if (net && bpf_core_field_exists(net->net_cookie)) {
		__u32 idx = ptr_hash((__u64)net) >> 26; /* 0..63 */

		cookie = KREAD(typed, net, net_cookie);
		s = bpf_map_lookup_elem(&netns_cache, &idx);
	}
	if (s && s->net == (__u64)net) {
		compiler_barrier();
		inum = s->inum;
		bool same = s->cookie == cookie;
		compiler_barrier();
		if (same && s->net == (__u64)net)
			return inum;
	}
	inum = KREAD(typed, net, ns.inum);
	if (s) {
		s->net = 0;
		compiler_barrier();
		s->inum = inum;
		s->cookie = cookie;
		compiler_barrier();
		s->net = (__u64)net;
	}
	return inum;
}

static __always_inline __u32 sock_netns(const struct sock *sk, bool typed)
{
	return net_inum(KREAD(typed, sk, __sk_common.skc_net.net), typed);
}

/*
 * A task's name is its thread group leader's (what ps shows); copy it as
 * two words in a typed program, with a string read otherwise.
 */
static __always_inline void leader_comm(char *dst, const struct task_struct *task, bool typed)
{
	if (typed) {
		const struct task_struct *leader = task->group_leader;
		__u64 *d = (__u64 *)dst;

		d[0] = *(__u64 *)&leader->comm[0];
		d[1] = *(__u64 *)&leader->comm[8];
	} else {
		const struct task_struct *leader = BPF_CORE_READ(task, group_leader);

		bpf_core_read_str(dst, TASK_COMM_LEN, &leader->comm);
	}
}

static __always_inline struct task_struct *current_task(bool typed)
{
	if (typed)
		return bpf_get_current_task_btf();
	return (struct task_struct *)bpf_get_current_task();
}

#endif /* __RSTWATCH_COMMON_H__ */
