//go:build ignore
// SPDX-License-Identifier: GPL-2.0

/*
 * rstwatch: every TCP reset this host sends or receives, with the process that
 * owns (or last owned) the socket and the kernel's reason.
 *
 * Resets are often emitted in softirq or timer context, in the peer's context
 * on loopback, or after the owner closed the socket or exited, so the task on
 * the CPU is not the owner. Owners are therefore learned where the current
 * task certainly is the owner (connect, listen, accept: process context) and
 * remembered by socket pointer, then by 4-tuple once the socket closes.
 */
#include "headers/vmlinux.h"
#include "headers/bpf_helpers.h"
#include "headers/bpf_core_read.h"
#include "headers/bpf_endian.h"
#include "headers/bpf_tracing.h"
#include "rstwatch.h"

char __license[] SEC("license") = "GPL";

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define SOCK_STREAM 1

#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_SYN_RECV 3
#define TCP_TIME_WAIT 6
#define TCP_CLOSE 7
#define TCP_LISTEN 10
#define TCP_NEW_SYN_RECV 12

/* Set by the loader before load. */
const volatile __u32 filter_pid = 0;     /* 0: any; else owner or task tgid */
const volatile __u32 filter_netns = 0;   /* 0: any */
const volatile bool filter_ports = false; /* match local or remote port in ports */
const volatile bool emit_events = true;  /* false: aggregate only (serve) */
const volatile bool aggregate = false;
const volatile __u64 wakeup_bytes = 0;   /* 0: wake the reader per record */

/*
 * Before 6.10 tcp:tcp_send_reset does not fire for resets sent from
 * tcp_v4/v6_send_reset (a refused SYN, data for a closed or timewait
 * connection). Where fentry programs there attach, the loader sets this and
 * the tracepoint program leaves every reset with a packet to them.
 */
volatile __u32 passive_by_fentry = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* Ports to report (--port) and ZooKeeper ports (aggregation). */
#define PORT_REPORT 1
#define PORT_ZK 2
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u8);
} ports SEC(".maps");

/*
 * Live sockets only: entries are deleted on tcp_destroy_sock, so a plain
 * preallocated hash is bounded by the sockets made while tracing, and a
 * full table is counted (STAT_OWNER_FULL) instead of silently evicting.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64); /* struct sock * */
	__type(value, struct owner);
} owner_by_sock SEC(".maps");

struct tuple {
	__u32 netns;
	__u16 family;
	__u16 lport;
	__u16 rport;
	__u16 pad;
	__u8 laddr[16];
	__u8 raddr[16];
};

/* Closed connections, a cache: the least recently used are forgotten. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, struct tuple);
	__type(value, struct owner);
} owner_by_tuple SEC(".maps");

struct listener_key {
	__u32 netns;
	__u16 port;
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct listener_key);
	__type(value, struct owner);
} owner_by_listener SEC(".maps");

/*
 * The socket whose reset was just received on this CPU: tcp_reset() closes
 * it right after the tracepoint, on the same CPU (and inet_sock_set_state
 * consumes the mark on the next transition, whichever it is). Its peer has already
 * dropped the connection, so no late segment will need the owner under the
 * 4-tuple, and the costly LRU insert (about a microsecond here) is skipped.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} reset_received SEC(".maps");

/* Thread groups that exited: tgid -> time of exit. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u64);
} exited SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct agg_key);
	__type(value, __u64);
} counts SEC(".maps");

/* Force bpf2go to emit these types. */
const struct event *unused_event __attribute__((unused));
const struct agg_key *unused_agg_key __attribute__((unused));
const enum stat_index *unused_stat_index __attribute__((unused));
const enum owner_source *unused_owner_source __attribute__((unused));
const enum rst_direction *unused_rst_direction __attribute__((unused));

static __always_inline void stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);
	if (v)
		(*v)++;
}

static __always_inline __u32 sock_netns(const struct sock *sk)
{
	return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

static __always_inline void fill_owner_from_current(struct owner *o)
{
	__u64 id = bpf_get_current_pid_tgid();

	o->learned_ns = bpf_ktime_get_ns();
	o->pid = id >> 32;
	o->tid = (__u32)id;
	/* The leader's own thread needs no read through the task struct. */
	if (o->pid == o->tid) {
		bpf_get_current_comm(o->comm, sizeof(o->comm));
		return;
	}
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct task_struct *leader = BPF_CORE_READ(task, group_leader);
	bpf_core_read_str(o->comm, sizeof(o->comm), &leader->comm);
}

static __always_inline bool full_sock(__u8 state)
{
	return state != TCP_TIME_WAIT && state != TCP_NEW_SYN_RECV;
}

/* The current task owns the socket: remember it, counting a full table. */
static __always_inline void remember_owner(__u64 key, struct owner *o)
{
	fill_owner_from_current(o);
	if (bpf_map_update_elem(&owner_by_sock, &key, o, BPF_ANY))
		stat_inc(STAT_OWNER_FULL);
}

/*
 * The connection as seen from the socket: local is this host's end. The
 * namespace is left to the caller, which knows it for every kind of reset.
 */
static __always_inline void tuple_from_sock(const struct sock *sk, struct tuple *t)
{
	__u8 state = BPF_CORE_READ(sk, __sk_common.skc_state);

	t->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	t->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	/*
	 * A full socket going to CLOSE has released its port (skc_num = 0)
	 * before inet_sock_set_state fires and before an active reset is sent;
	 * inet_sport keeps it.
	 */
	if (full_sock(state))
		t->lport = bpf_ntohs(BPF_CORE_READ((struct inet_sock *)sk, inet_sport));
	t->rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (t->family == AF_INET6) {
		BPF_CORE_READ_INTO(&t->laddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&t->raddr, sk, __sk_common.skc_v6_daddr);
	} else {
		bpf_core_read(&t->laddr, 4, &sk->__sk_common.skc_rcv_saddr);
		bpf_core_read(&t->raddr, 4, &sk->__sk_common.skc_daddr);
	}
}

/*
 * The connection as seen from the packet a reset answers, reversed: the
 * reset goes from the packet's destination (this host) to its source.
 */
static __always_inline int tuple_from_skb_reversed(const struct sk_buff *skb, struct tuple *t)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u16 nh = BPF_CORE_READ(skb, network_header);
	__u16 th = BPF_CORE_READ(skb, transport_header);
	__u8 vhl = 0;
	__be16 ports[2];

	if (bpf_probe_read_kernel(&vhl, 1, head + nh))
		return -1;
	if ((vhl >> 4) == 4) {
		t->family = AF_INET;
		bpf_probe_read_kernel(t->raddr, 4, head + nh + 12);
		bpf_probe_read_kernel(t->laddr, 4, head + nh + 16);
	} else if ((vhl >> 4) == 6) {
		t->family = AF_INET6;
		bpf_probe_read_kernel(t->raddr, 16, head + nh + 8);
		bpf_probe_read_kernel(t->laddr, 16, head + nh + 24);
	} else {
		return -1;
	}
	if (bpf_probe_read_kernel(ports, sizeof(ports), head + th))
		return -1;
	t->rport = bpf_ntohs(ports[0]);
	t->lport = bpf_ntohs(ports[1]);
	return 0;
}

/*
 * The tuple as the tracepoint already recorded it (tcp_event_sk and
 * inet_sock_set_state): local end first, ports in host order, IPv4 also
 * mapped into the v6 fields. Two helper calls instead of a dozen reads of
 * the socket.
 */
#define TUPLE_FROM_CTX(args, t)                                                  \
	do {                                                                      \
		(t)->family = (args)->family;                                     \
		(t)->lport = (args)->sport;                                       \
		(t)->rport = (args)->dport;                                       \
		if ((t)->family == AF_INET6) {                                    \
			bpf_probe_read_kernel((t)->laddr, 16, (args)->saddr_v6);  \
			bpf_probe_read_kernel((t)->raddr, 16, (args)->daddr_v6);  \
		} else {                                                          \
			bpf_probe_read_kernel((t)->laddr, 4, (args)->saddr);      \
			bpf_probe_read_kernel((t)->raddr, 4, (args)->daddr);      \
		}                                                                 \
	} while (0)

/* A sockaddr_in or sockaddr_in6 as 6.10+ tcp_send_reset records it. */
struct sockaddr_any {
	__u16 family;
	__be16 port;
	union {
		__u8 v4[4];
		struct {
			__u32 flowinfo;
			__u8 v6[16];
		};
	};
	__u32 scope;
};

static __always_inline int tuple_from_sockaddrs(const void *local, const void *remote, struct tuple *t)
{
	struct sockaddr_any l, r;

	if (bpf_probe_read_kernel(&l, sizeof(l), local) || bpf_probe_read_kernel(&r, sizeof(r), remote))
		return -1;
	/* The kernel leaves the peer empty for a listener's socket: use the packet. */
	if (l.family != r.family || !r.port)
		return -1;
	t->family = l.family;
	t->lport = bpf_ntohs(l.port);
	t->rport = bpf_ntohs(r.port);
	if (l.family == AF_INET6) {
		__builtin_memcpy(t->laddr, l.v6, 16);
		__builtin_memcpy(t->raddr, r.v6, 16);
	} else if (l.family == AF_INET) {
		__builtin_memcpy(t->laddr, l.v4, 4);
		__builtin_memcpy(t->raddr, r.v4, 4);
	} else {
		return -1;
	}
	return 0;
}

/* The tuple of a sent reset from the socket or the packet it answers. */
static __always_inline int tuple_for_send(const struct sock *sk, const struct sk_buff *skb, struct tuple *t)
{
	if (skb)
		return tuple_from_skb_reversed(skb, t);
	if (!sk)
		return -1;
	tuple_from_sock(sk, t);
	return 0;
}

static __always_inline bool port_has(__u16 port, __u8 flag)
{
	__u32 key = port;
	__u8 *v = bpf_map_lookup_elem(&ports, &key);
	return v && (*v & flag);
}

/* The owner of the local end of the connection, and whether it still lives. */
static __always_inline __u8 find_owner(const struct sock *sk, __u8 state, struct tuple *t,
				       struct owner *out, __u8 *alive)
{
	struct owner *o = NULL;
	__u8 src = OWNER_NONE;

	if (sk) {
		__u64 key = (__u64)sk;
		o = bpf_map_lookup_elem(&owner_by_sock, &key);
		if (o)
			src = OWNER_SOCKET;
	}
	if (!o) {
		o = bpf_map_lookup_elem(&owner_by_tuple, t);
		if (o)
			src = OWNER_TUPLE;
	}
	/*
	 * A request socket, or a child the application has not accepted yet,
	 * belongs to whoever listens. A reset without any socket does not: no
	 * process ever owned that connection.
	 */
	if (!o && sk && (state == TCP_NEW_SYN_RECV || state == TCP_SYN_RECV ||
			 state == TCP_ESTABLISHED)) {
		struct listener_key lk = { .netns = t->netns, .port = t->lport };
		o = bpf_map_lookup_elem(&owner_by_listener, &lk);
		if (o)
			src = OWNER_LISTENER;
	}
	if (!o)
		return OWNER_NONE;

	__builtin_memcpy(out, o, sizeof(*out));
	__u64 *gone = bpf_map_lookup_elem(&exited, &out->pid);
	*alive = !(gone && *gone > out->learned_ns);
	return src;
}

/* Sockets that a full socket's file points at, for the /proc fallback. */
static __always_inline __u64 sock_inode(const struct sock *sk, __u8 state)
{
	if (!sk || !full_sock(state))
		return 0;
	struct socket *so = BPF_CORE_READ(sk, sk_socket);
	if (!so)
		return 0;
	return BPF_CORE_READ(so, file, f_inode, i_ino);
}

static __always_inline void aggregate_event(const struct event *e)
{
	struct agg_key k = {};
	__u64 one = 1, *v;

	k.owner_pid = e->owner_pid;
	k.reason = e->reason;
	k.direction = e->direction;
	k.owner_source = e->owner_source;
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

	v = bpf_map_lookup_elem(&counts, &k);
	if (v) {
		__sync_fetch_and_add(v, 1);
		return;
	}
	if (bpf_map_update_elem(&counts, &k, &one, BPF_NOEXIST) == 0)
		return;
	/* Lost the race to insert: the key exists now. */
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
 * One reset, its tuple already known. sk may be NULL (no socket), a full
 * socket, a timewait or a request socket; skb may be NULL (an active reset:
 * close, linger, abort). state < 0: read it from sk.
 */
static __always_inline int handle_reset(__u8 dir, const struct sock *sk, const struct sk_buff *skb,
					struct tuple *t, int state_in, __u16 reason, __u64 cookie)
{
	struct event scratch = {};
	struct event *e = &scratch;
	struct owner o = {};
	__u8 alive = 0, state = 0;
	__u64 id;

	stat_inc(STAT_SEEN);

	if (state_in >= 0)
		state = state_in;
	else if (sk)
		state = BPF_CORE_READ(sk, __sk_common.skc_state);
	if (sk)
		t->netns = sock_netns(sk);
	else if (skb)
		t->netns = BPF_CORE_READ(skb, dev, nd_net.net, ns.inum);

	if (filter_netns && t->netns != filter_netns)
		goto filtered;
	if (filter_ports && !port_has(t->lport, PORT_REPORT) && !port_has(t->rport, PORT_REPORT))
		goto filtered;

	__u8 src = find_owner(sk, state, t, &o, &alive);
	id = bpf_get_current_pid_tgid();
	if (filter_pid && filter_pid != (id >> 32) && !(src && filter_pid == o.pid))
		goto filtered;

	e->direction = dir;
	e->state = state;
	e->reason = reason;
	e->family = t->family;
	e->lport = t->lport;
	e->rport = t->rport;
	e->netns = t->netns;
	__builtin_memcpy(e->laddr, t->laddr, sizeof(e->laddr));
	__builtin_memcpy(e->raddr, t->raddr, sizeof(e->raddr));
	e->owner_source = src;
	if (src) {
		e->owner_pid = o.pid;
		e->owner_tid = o.tid;
		e->owner_alive = alive;
		__builtin_memcpy(e->owner_comm, o.comm, sizeof(e->owner_comm));
	}

	if (aggregate)
		aggregate_event(e);
	if (!emit_events)
		return 0;

	struct event *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		stat_inc(STAT_LOST);
		return 0;
	}
	__builtin_memcpy(r, e, sizeof(*r));
	r->time_ns = bpf_ktime_get_ns();
	r->task_pid = id >> 32;
	r->task_tid = (__u32)id;
	bpf_get_current_comm(r->task_thread, sizeof(r->task_thread));
	if (r->task_pid == r->task_tid) {
		__builtin_memcpy(r->task_comm, r->task_thread, sizeof(r->task_comm));
	} else {
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();
		struct task_struct *leader = BPF_CORE_READ(task, group_leader);
		bpf_core_read_str(r->task_comm, sizeof(r->task_comm), &leader->comm);
	}
	r->cookie = cookie;
	if (!r->cookie && sk)
		r->cookie = BPF_CORE_READ(sk, __sk_common.skc_cookie.counter);
	r->inode = sock_inode(sk, state);

	__u64 flags = 0;
	if (wakeup_bytes) {
		/* Batch wake-ups: a storm must not wake the reader per record. */
		flags = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes ?
				BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	}
	bpf_ringbuf_submit(r, flags);
	stat_inc(STAT_EMITTED);
	return 0;

filtered:
	stat_inc(STAT_FILTERED);
	return 0;
}

SEC("tracepoint/tcp/tcp_send_reset")
int rstwatch_send_reset(void *ctx)
{
	struct tuple t = {};

	if (bpf_core_type_exists(struct trace_event_raw_tcp_send_reset)) {
		struct trace_event_raw_tcp_send_reset *args = ctx;
		const struct sock *sk = args->skaddr;
		const struct sk_buff *skb = args->skbaddr;
		__u16 reason = args->reason;
		int state = sk ? args->state : 0;

		if (tuple_from_sockaddrs(args->saddr, args->daddr, &t) && tuple_for_send(sk, skb, &t))
			return 0;
		return handle_reset(RST_SEND, sk, skb, &t, state, reason, 0);
	}
	struct trace_event_raw_tcp_event_sk_skb *args = ctx;
	const struct sock *sk = args->skaddr;
	const struct sk_buff *skb = args->skbaddr;
	if (skb && passive_by_fentry)
		return 0;
	if (tuple_for_send(sk, skb, &t))
		return 0;
	return handle_reset(RST_SEND, sk, skb, &t, -1, REASON_UNKNOWN, 0);
}

/*
 * fentry runs on entry, before the function's own early returns: it does
 * not answer a reset with a reset, so neither does this.
 */
static __always_inline int fentry_reset(const struct sock *sk, const struct sk_buff *skb)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u16 th = BPF_CORE_READ(skb, transport_header);
	__u8 flags = 0;

	struct tuple t = {};

	if (bpf_probe_read_kernel(&flags, 1, head + th + 13) || (flags & 0x04))
		return 0;
	if (tuple_for_send(sk, skb, &t))
		return 0;
	return handle_reset(RST_SEND, sk, skb, &t, -1, REASON_UNKNOWN, 0);
}

SEC("fentry/tcp_v4_send_reset")
int BPF_PROG(rstwatch_fentry_v4_send_reset, const struct sock *sk, const struct sk_buff *skb)
{
	return fentry_reset(sk, skb);
}

SEC("fentry/tcp_v6_send_reset")
int BPF_PROG(rstwatch_fentry_v6_send_reset, const struct sock *sk, const struct sk_buff *skb)
{
	return fentry_reset(sk, skb);
}

SEC("tracepoint/tcp/tcp_receive_reset")
int rstwatch_receive_reset(struct trace_event_raw_tcp_event_sk *args)
{
	const struct sock *sk = args->skaddr;
	struct tuple t = {};
	__u64 cookie = 0;

	if (!sk)
		return 0;
	__u32 zero = 0;
	__u64 *mark = bpf_map_lookup_elem(&reset_received, &zero);
	if (mark)
		*mark = (__u64)sk;
	if (bpf_core_field_exists(args->sock_cookie))
		cookie = args->sock_cookie;
	TUPLE_FROM_CTX(args, &t);
	return handle_reset(RST_RECEIVE, sk, NULL, &t, -1, REASON_UNKNOWN, cookie);
}

/*
 * Owner learning. CLOSE -> SYN_SENT happens inside connect() (or a
 * fast-open sendmsg), -> LISTEN inside listen(): the current task is the
 * owner. On -> CLOSE the 4-tuple is still intact (the trace point runs before
 * the port is released), so the owner is copied under it for resets that
 * arrive after the socket is gone or has become a timewait socket.
 */
SEC("tracepoint/sock/inet_sock_set_state")
int rstwatch_set_state(struct trace_event_raw_inet_sock_set_state *args)
{
	if (args->protocol != IPPROTO_TCP)
		return 0;

	const struct sock *sk = args->skaddr;
	int oldstate = args->oldstate;
	int newstate = args->newstate;
	__u64 key = (__u64)sk;
	struct owner o = {};

	/*
	 * The received-reset mark is valid only for the transition that
	 * follows it on this CPU (tcp_reset's own tcp_done): consume it on any
	 * transition, so that it can never outlive its socket and match a
	 * later socket at the same address.
	 */
	bool closed_by_reset = false;
	__u32 zero = 0;
	__u64 *mark = bpf_map_lookup_elem(&reset_received, &zero);
	if (mark && *mark) {
		closed_by_reset = *mark == key && newstate == TCP_CLOSE;
		*mark = 0;
	}

	if (newstate == TCP_SYN_SENT) {
		remember_owner(key, &o);
		return 0;
	}
	if (newstate == TCP_LISTEN) {
		struct listener_key lk = { .netns = sock_netns(sk), .port = args->sport };
		fill_owner_from_current(&o);
		bpf_map_update_elem(&owner_by_listener, &lk, &o, BPF_ANY);
		return 0;
	}
	if (newstate == TCP_CLOSE) {
		if (oldstate == TCP_LISTEN) {
			struct listener_key lk = { .netns = sock_netns(sk), .port = args->sport };
			bpf_map_delete_elem(&owner_by_listener, &lk);
			return 0;
		}
		if (closed_by_reset)
			return 0;
		struct owner *known = bpf_map_lookup_elem(&owner_by_sock, &key);
		if (!known)
			return 0;
		struct tuple t = {};
		TUPLE_FROM_CTX(args, &t);
		t.netns = sock_netns(sk);
		bpf_map_update_elem(&owner_by_tuple, &t, known, BPF_ANY);
	}
	return 0;
}

/* The socket's memory may be reused by another socket: forget its pointer. */
SEC("tracepoint/tcp/tcp_destroy_sock")
int rstwatch_destroy_sock(struct trace_event_raw_tcp_event_sk *args)
{
	__u64 key = (__u64)args->skaddr;
	bpf_map_delete_elem(&owner_by_sock, &key);
	return 0;
}

/* accept() returns the new socket's fd: find its sock through the fd table. */
static __always_inline int learn_accepted(struct trace_event_raw_sys_exit *args)
{
	long fd = args->ret;
	if (fd < 0)
		return 0;

	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = NULL;
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) || !f)
		return 0;
	struct socket *so = BPF_CORE_READ(f, private_data);
	if (!so)
		return 0;
	struct sock *sk = BPF_CORE_READ(so, sk);
	if (!sk || BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP ||
	    BPF_CORE_READ(sk, sk_type) != SOCK_STREAM)
		return 0;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return 0;

	struct owner o = {};
	remember_owner((__u64)sk, &o);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int rstwatch_accept4(struct trace_event_raw_sys_exit *args)
{
	return learn_accepted(args);
}

SEC("tracepoint/syscalls/sys_exit_accept")
int rstwatch_accept(struct trace_event_raw_sys_exit *args)
{
	return learn_accepted(args);
}

/* A thread group is gone when its last thread exits. */
SEC("tracepoint/sched/sched_process_exit")
int rstwatch_exit(void *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 now = bpf_ktime_get_ns();
	bpf_map_update_elem(&exited, &tgid, &now, BPF_ANY);
	return 0;
}
