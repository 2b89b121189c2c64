/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One reset, its tuple known: filter it, find its owner, count it and/or
 * send it to user space. Also the rare ZooKeeper connect records.
 */
#ifndef __RSTWATCH_REPORT_H__
#define __RSTWATCH_REPORT_H__

#include "common.h"
#include "tuple.h"
#include "owner.h"
#include "aggregate.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} events SEC(".maps");

/* cgroup v2 ids to report (Config.Cgroups): an owner's or the task's. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u8);
} cgroups SEC(".maps");

static __always_inline bool cgroup_wanted(__u64 id)
{
	return id && bpf_map_lookup_elem(&cgroups, &id);
}

/* Batch wake-ups: a storm must not wake the reader per record. */
static __always_inline __u64 wakeup_flags(void)
{
	if (!wakeup_bytes)
		return 0;
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP
									       : BPF_RB_NO_WAKEUP;
}

/* What the caller knows of a reset. */
struct reset {
	const struct sock *sk;   /* NULL: no socket */
	struct tuple t;          /* netns filled in by handle_reset */
	__u64 cookie;            /* 0: read it from sk */
	__u16 reason;
	__u8 direction;
	__u8 state;              /* of sk, 0 without one */
	bool syn;                /* answering a SYN */
	__u8 ts_option;          /* enum ts_option */
	__u16 flags;             /* enum event_flag */
};

/*
 * The last receive on this CPU that may have been the kernel's abort on
 * data (EVENT_MAYBE_ABORT): its socket, when, and the key it was counted
 * under when aggregating. The
 * abort's own send follows within microseconds on the same CPU
 * (tcp_reset(), tcp_done(), then the reply), so one slot per CPU holds it.
 */
struct abort_slot {
	__u64 sk;
	__u64 ns;
	struct agg_key key;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct abort_slot);
} abort_slot SEC(".maps");

/* Far longer than tcp_reset() to the reply; far shorter than a socket's reuse. */
#define ABORT_WINDOW_NS (10ULL * 1000 * 1000)

static __always_inline bool may_abort_state(__u8 state)
{
	return state == TCP_FIN_WAIT1 || state == TCP_FIN_WAIT2 || state == TCP_CLOSING || state == TCP_LAST_ACK;
}

static __always_inline void remember_abort(const struct reset *r, const struct event *e)
{
	__u32 zero = 0;
	struct abort_slot *s = bpf_map_lookup_elem(&abort_slot, &zero);

	if (!s)
		return;
	s->sk = (__u64)r->sk;
	s->ns = bpf_ktime_get_ns();
	if (aggregate)
		agg_key_of(e, &s->key);
}

/*
 * Whether this reply from the closed socket sk follows, on this CPU, the
 * receive its own abort fired: that receive was no reset received. Its
 * count is taken back here; its record is dropped by the reader.
 */
static __always_inline bool retracts_receive(const struct sock *sk)
{
	__u32 zero = 0;
	struct abort_slot *s = bpf_map_lookup_elem(&abort_slot, &zero);

	if (!s || s->sk != (__u64)sk)
		return false;
	s->sk = 0;
	if (bpf_ktime_get_ns() - s->ns > ABORT_WINDOW_NS)
		return false;
	if (aggregate)
		uncount_key(&s->key);
	stat_inc(STAT_ABORT_RETRACTED);
	return true;
}

/* The fields every reset record has, owner included. Every byte is written:
 * a ring-buffer record is not zeroed. */
static __always_inline void fill_event(struct event *e, const struct reset *r, const struct owner *o,
				       __u8 src, __u8 alive)
{
	e->kind = RECORD_RESET;
	e->direction = r->direction;
	e->state = r->state;
	e->owner_source = src;
	e->owner_alive = alive;
	e->ts_option = r->ts_option;
	e->family = r->t.family;
	e->lport = r->t.lport;
	e->rport = r->t.rport;
	e->reason = r->reason;
	e->flags = r->flags;
	e->netns = r->t.netns;
	e->owner_pid = o->pid;
	e->owner_tid = o->tid;
	e->pad3 = 0;
	e->owner_cgroup = o->cgroup;
	__builtin_memcpy(e->laddr, r->t.laddr, sizeof(e->laddr));
	__builtin_memcpy(e->raddr, r->t.raddr, sizeof(e->raddr));
	__builtin_memcpy(e->owner_comm, o->comm, sizeof(e->owner_comm));
}

static __always_inline int handle_reset(struct reset *r, bool typed)
{
	struct owner o = {}; /* all zero when there is none */
	__u8 alive = 0, src;
	__u64 id, task_cgroup = 0;

	stat_inc(STAT_SEEN);

	if (filter_netns && r->t.netns != filter_netns)
		goto filtered;
	if (filter_ports && !port_has(r->t.lport, PORT_REPORT) && !port_has(r->t.rport, PORT_REPORT))
		goto filtered;

	/* Whether the owner lives is reported with events only. */
	src = find_owner(r->sk, r->state, &r->t, r->syn, &o, emit_events ? &alive : NULL, typed);
	id = bpf_get_current_pid_tgid();
	if (filter_pid && filter_pid != (id >> 32) && !(src && filter_pid == o.pid))
		goto filtered;
	if (filter_cgroups || emit_events)
		task_cgroup = bpf_get_current_cgroup_id();
	if (filter_cgroups && !cgroup_wanted(task_cgroup) && !(src && cgroup_wanted(o.cgroup)))
		goto filtered;

	struct event *rec = NULL;
	if (emit_events) {
		rec = bpf_ringbuf_reserve(&events, sizeof(*rec), 0);
		if (!rec)
			stat_inc(STAT_LOST);
	}
	if (!rec) {
		/* Counting only, or the ring is full: build it on the stack. */
		if (aggregate) {
			struct event e;

			fill_event(&e, r, &o, src, alive);
			count_event(&e);
			if (r->flags & EVENT_MAYBE_ABORT)
				remember_abort(r, &e);
		}
		return 0;
	}
	/* Built in place in the ring buffer, counted from there. */
	fill_event(rec, r, &o, src, alive);
	if (aggregate)
		count_event(rec);
	if (r->flags & EVENT_MAYBE_ABORT)
		remember_abort(r, rec);
	rec->time_ns = bpf_ktime_get_ns();
	rec->task_pid = id >> 32;
	rec->task_tid = (__u32)id;
	rec->task_cgroup = task_cgroup;
	if (typed) {
		struct task_struct *task = bpf_get_current_task_btf();
		__u64 *d = (__u64 *)rec->task_thread;

		d[0] = *(__u64 *)&task->comm[0];
		d[1] = *(__u64 *)&task->comm[8];
		leader_comm(rec->task_comm, task, true);
	} else {
		bpf_get_current_comm(rec->task_thread, sizeof(rec->task_thread));
		if (rec->task_pid == rec->task_tid)
			__builtin_memcpy(rec->task_comm, rec->task_thread, sizeof(rec->task_comm));
		else
			leader_comm(rec->task_comm, current_task(false), false);
	}
	/* A local copy: a CO-RE read would relocate the access to r too. */
	const struct sock *sk = r->sk;

	rec->cookie = r->cookie;
	if (!rec->cookie && sk)
		rec->cookie = KREAD(typed, sk, __sk_common.skc_cookie.counter);
	bpf_ringbuf_submit(rec, wakeup_flags());
	stat_inc(STAT_EMITTED);
	return 0;

filtered:
	stat_inc(STAT_FILTERED);
	return 0;
}

/*
 * A connection to or from a ZooKeeper port was made (the caller checked
 * the ports): tell user space who made it, so that it can learn about the
 * client while the process lives.
 */
static __always_inline void report_connect(const struct sock *sk, const struct owner *o, bool accepted, bool typed)
{
	struct tuple t = {};

	tuple_from_sock(sk, TCP_ESTABLISHED, &t, typed);
	t.netns = sock_netns(sk, typed);
	if (filter_netns && t.netns != filter_netns)
		return;
	if (filter_pid && filter_pid != o->pid)
		return;
	if (filter_cgroups && !cgroup_wanted(o->cgroup))
		return;

	/* Counted apart: a lost connect record is not a lost reset. */
	struct connect_event *c = bpf_ringbuf_reserve(&events, sizeof(*c), 0);
	if (!c) {
		stat_inc(STAT_CONNECTS_LOST);
		return;
	}
	c->kind = RECORD_CONNECT;
	c->accepted = accepted;
	c->family = t.family;
	c->lport = t.lport;
	c->rport = t.rport;
	c->netns = t.netns;
	c->pid = o->pid;
	c->tid = o->tid;
	c->pad = 0;
	c->time_ns = bpf_ktime_get_ns();
	c->cgroup = o->cgroup;
	__builtin_memcpy(c->laddr, t.laddr, sizeof(c->laddr));
	__builtin_memcpy(c->raddr, t.raddr, sizeof(c->raddr));
	__builtin_memcpy(c->comm, o->comm, sizeof(c->comm));
	bpf_ringbuf_submit(c, wakeup_flags());
	stat_inc(STAT_CONNECTS);
}

/*
 * Before 6.10 tcp:tcp_send_reset does not fire for resets sent from
 * tcp_v4/v6_send_reset (a refused SYN, data for a closed or timewait
 * connection). Where fentry programs there attach, the loader sets this and
 * the tracepoint program leaves every reset with a packet to them.
 */
volatile __u32 passive_by_fentry = 0;

/*
 * A sent reset answers the segment in skb when there is one (its tuple is
 * exact even for a listener or no socket), else it is an active reset of
 * the socket. sk may be NULL (no socket), full, timewait or request.
 */
static __always_inline int send_reset(const struct sock *sk, const struct sk_buff *skb, __u16 reason, bool typed)
{
	struct reset r = { .sk = sk, .reason = reason, .direction = RST_SEND };
	struct tcphdr tcp;

	if (sk)
		r.state = KREAD(typed, sk, __sk_common.skc_state);
	if (skb) {
		if (tuple_from_skb_reversed(skb, &r.t, &tcp, typed))
			return 0;
		if (sk && r.state == TCP_CLOSE && retracts_receive(sk))
			r.flags = EVENT_RETRACTS_RECEIVE;
		r.syn = tcp.syn && !tcp.ack;
		r.ts_option = TS_ABSENT; /* a reply: a bare header */
	} else if (sk) {
		/* An active reset, always from a full socket: it carries the
		 * timestamp option when the connection negotiated it. */
		const struct tcp_sock *tp = (const void *)sk;

		tuple_from_sock(sk, r.state, &r.t, typed);
		if (emit_events) /* records only: counts have no use for it */
			r.ts_option = BPF_CORE_READ_BITFIELD_PROBED(tp, rx_opt.tstamp_ok) ? TS_PRESENT : TS_ABSENT;
	} else {
		return 0;
	}
	if (sk)
		r.t.netns = sock_netns(sk, typed);
	else
		r.t.netns = net_inum(KREAD(typed, skb, dev, nd_net.net), typed);
	return handle_reset(&r, typed);
}

/*
 * fentry runs on entry, before the function's own early returns: it does
 * not answer a reset with a reset, so neither does this.
 */
static __always_inline int fentry_reset(const struct sock *sk, const struct sk_buff *skb)
{
	struct reset r = { .sk = sk, .reason = REASON_UNKNOWN, .direction = RST_SEND };
	struct tcphdr tcp;

	if (tuple_from_skb_reversed(skb, &r.t, &tcp, false) || tcp.rst)
		return 0;
	r.syn = tcp.syn && !tcp.ack;
	r.ts_option = TS_ABSENT; /* a reply: a bare header */
	if (sk) {
		r.state = BPF_CORE_READ(sk, __sk_common.skc_state);
		r.t.netns = sock_netns(sk, false);
		if (r.state == TCP_CLOSE && retracts_receive(sk))
			r.flags = EVENT_RETRACTS_RECEIVE;
	} else {
		r.t.netns = net_inum(BPF_CORE_READ(skb, dev, nd_net.net), false);
	}
	return handle_reset(&r, false);
}

/*
 * A reset received on a full socket. Classic programs pass the tuple and
 * cookie their tracepoint recorded; typed ones read them from the socket.
 */
static __always_inline int receive_reset(const struct sock *sk, const struct tuple *ctx_tuple, __u64 cookie,
					 bool typed)
{
	struct reset r = { .sk = sk, .reason = REASON_UNKNOWN, .direction = RST_RECEIVE, .cookie = cookie };

	if (!sk)
		return 0;
	mark_reset_received(sk);
	r.state = KREAD(typed, sk, __sk_common.skc_state);
	if (may_abort_state(r.state) && rcv_shutdown(sk, typed))
		r.flags = EVENT_MAYBE_ABORT;
	/* tcp_reset runs after the RST's options were parsed into rx_opt. */
	const struct tcp_sock *tp = (const void *)sk;

	if (emit_events) /* records only: counts have no use for it */
		r.ts_option = BPF_CORE_READ_BITFIELD_PROBED(tp, rx_opt.saw_tstamp) ? TS_PRESENT : TS_ABSENT;
	if (ctx_tuple)
		r.t = *ctx_tuple;
	else
		tuple_from_sock(sk, r.state, &r.t, typed);
	r.t.netns = sock_netns(sk, typed);
	return handle_reset(&r, typed);
}

#endif /* __RSTWATCH_REPORT_H__ */
