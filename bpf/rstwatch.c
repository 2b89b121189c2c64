//go:build ignore
// SPDX-License-Identifier: GPL-2.0

/*
 * rstwatch: every TCP reset this host sends or receives, with the process that
 * owns (or last owned) the socket and the kernel's reason.
 *
 * This file holds the entry points only; the logic is in ebpf/: tuple.h
 * (which connection), owner.h (who owns it), aggregate.h (in-kernel counts)
 * and report.h (filters and records for user space).
 *
 * Each hook has two programs. The BTF-typed one (tp_btf) gets the kernel's
 * own arguments and reads the socket with plain loads; the classic
 * tracepoint is the fallback where a typed program cannot load or attach,
 * and costs more: the kernel fills a trace record before every run. The
 * loader attaches one of each pair.
 */
#include "ebpf/common.h"
#include "ebpf/tuple.h"
#include "ebpf/owner.h"
#include "ebpf/aggregate.h"
#include "ebpf/report.h"

char __license[] SEC("license") = "GPL";

/*
 * Before 6.10 tcp:tcp_send_reset does not fire for resets sent from
 * tcp_v4/v6_send_reset (a refused SYN, data for a closed or timewait
 * connection). Where fentry programs there attach, the loader sets this and
 * the tracepoint program leaves every reset with a packet to them.
 */
volatile __u32 passive_by_fentry = 0;

/* Force bpf2go to emit these types. */
const struct event *unused_event __attribute__((unused));
const struct connect_event *unused_connect_event __attribute__((unused));
const struct agg_key *unused_agg_key __attribute__((unused));
const enum stat_index *unused_stat_index __attribute__((unused));
const enum owner_source *unused_owner_source __attribute__((unused));
const enum rst_direction *unused_rst_direction __attribute__((unused));
const enum record_kind *unused_record_kind __attribute__((unused));

/* --- sent resets ------------------------------------------------------- */

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
		r.syn = tcp.syn && !tcp.ack;
	} else if (sk) {
		tuple_from_sock(sk, r.state, &r.t, typed);
	} else {
		return 0;
	}
	if (sk)
		r.t.netns = sock_netns(sk, typed);
	else
		r.t.netns = KREAD(typed, skb, dev, nd_net.net, ns.inum);
	return handle_reset(&r, typed);
}

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(rstwatch_send_reset_btf, const struct sock *sk, const struct sk_buff *skb)
{
	__u16 reason = REASON_UNKNOWN;

	/* 6.10 added the reason argument, with its enum. */
	if (bpf_core_type_exists(enum sk_rst_reason))
		reason = (__u16)ctx[2];
	else if (skb && passive_by_fentry)
		return 0;
	return send_reset(sk, skb, reason, true);
}

SEC("tracepoint/tcp/tcp_send_reset")
int rstwatch_send_reset(void *ctx)
{
	if (bpf_core_type_exists(struct trace_event_raw_tcp_send_reset)) {
		struct trace_event_raw_tcp_send_reset *args = ctx;

		return send_reset(args->skaddr, args->skbaddr, args->reason, false);
	}
	struct trace_event_raw_tcp_event_sk_skb *args = ctx;

	if (args->skbaddr && passive_by_fentry)
		return 0;
	return send_reset(args->skaddr, args->skbaddr, REASON_UNKNOWN, false);
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
	if (sk) {
		r.state = BPF_CORE_READ(sk, __sk_common.skc_state);
		r.t.netns = sock_netns(sk, false);
	} else {
		r.t.netns = BPF_CORE_READ(skb, dev, nd_net.net, ns.inum);
	}
	return handle_reset(&r, false);
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

/* --- received resets --------------------------------------------------- */

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(rstwatch_receive_reset_btf, const struct sock *sk)
{
	struct reset r = { .sk = sk, .reason = REASON_UNKNOWN, .direction = RST_RECEIVE };

	if (!sk)
		return 0;
	mark_reset_received(sk);
	r.state = sk->__sk_common.skc_state;
	tuple_from_sock(sk, r.state, &r.t, true);
	r.t.netns = sock_netns(sk, true);
	return handle_reset(&r, true);
}

SEC("tracepoint/tcp/tcp_receive_reset")
int rstwatch_receive_reset(struct trace_event_raw_tcp_event_sk *args)
{
	const struct sock *sk = args->skaddr;
	struct reset r = { .sk = sk, .reason = REASON_UNKNOWN, .direction = RST_RECEIVE };

	if (!sk)
		return 0;
	mark_reset_received(sk);
	if (bpf_core_field_exists(args->sock_cookie))
		r.cookie = args->sock_cookie;
	r.state = BPF_CORE_READ(sk, __sk_common.skc_state);
	TUPLE_FROM_CTX(args, &r.t);
	r.t.netns = sock_netns(sk, false);
	return handle_reset(&r, false);
}

/* --- owner learning ---------------------------------------------------- */

/*
 * CLOSE -> SYN_SENT happens inside connect() (or a fast-open sendmsg),
 * -> LISTEN inside listen(): the current task is the owner. -> CLOSE may
 * keep the owner under the 4-tuple (owner.h). SYN_SENT -> ESTABLISHED of a
 * ZooKeeper connection is reported when asked for (the local port is only
 * known once connect() has picked it).
 */
static __always_inline int set_state(const struct sock *sk, int oldstate, int newstate,
				     struct tuple *ctx_tuple, bool typed)
{
	bool closed_by_reset = closing_by_received_reset(sk, newstate);

	switch (newstate) {
	case TCP_SYN_SENT:
		remember_current(sk, typed);
		break;
	case TCP_LISTEN:
		remember_listener(sk, typed);
		break;
	case TCP_ESTABLISHED:
		if (zk_connects && oldstate == TCP_SYN_SENT) {
			__u64 key = (__u64)sk;
			struct owner *o = bpf_map_lookup_elem(&owner_by_sock, &key);

			if (o)
				report_connect(sk, o, false, typed);
		}
		break;
	case TCP_CLOSE:
		if (closed_by_reset || !keep_after_close(oldstate))
			break;
		if (ctx_tuple) {
			remember_tuple(sk, ctx_tuple, typed);
		} else {
			struct tuple t = {};

			tuple_from_sock(sk, oldstate, &t, typed);
			remember_tuple(sk, &t, typed);
		}
		break;
	}
	return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(rstwatch_set_state_btf, const struct sock *sk, int oldstate, int newstate)
{
	if (sk->sk_protocol != IPPROTO_TCP)
		return 0;
	return set_state(sk, oldstate, newstate, NULL, true);
}

SEC("tracepoint/sock/inet_sock_set_state")
int rstwatch_set_state(struct trace_event_raw_inet_sock_set_state *args)
{
	if (args->protocol != IPPROTO_TCP)
		return 0;
	if (args->newstate == TCP_CLOSE) {
		struct tuple t = {};

		TUPLE_FROM_CTX(args, &t);
		return set_state(args->skaddr, args->oldstate, args->newstate, &t, false);
	}
	return set_state(args->skaddr, args->oldstate, args->newstate, NULL, false);
}

SEC("tp_btf/tcp_destroy_sock")
int BPF_PROG(rstwatch_destroy_sock_btf, const struct sock *sk)
{
	forget_sock(sk);
	return 0;
}

SEC("tracepoint/tcp/tcp_destroy_sock")
int rstwatch_destroy_sock(struct trace_event_raw_tcp_event_sk *args)
{
	forget_sock(args->skaddr);
	return 0;
}

/*
 * Accepted sockets: no BTF-typed hook sees them (a tp_btf program on
 * raw_syscalls:sys_exit would run for every system call), so both kinds use
 * the classic syscall tracepoints, which cost nothing for other calls.
 */
static __always_inline int accepted(struct trace_event_raw_sys_exit *args)
{
	const struct sock *sk = accepted_sock(args->ret);

	if (!sk)
		return 0;
	remember_current(sk, false);
	if (zk_connects) {
		__u64 key = (__u64)sk;
		struct owner *o = bpf_map_lookup_elem(&owner_by_sock, &key);

		if (o)
			report_connect(sk, o, true, false);
	}
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int rstwatch_accept4(struct trace_event_raw_sys_exit *args)
{
	return accepted(args);
}

SEC("tracepoint/syscalls/sys_exit_accept")
int rstwatch_accept(struct trace_event_raw_sys_exit *args)
{
	return accepted(args);
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(rstwatch_exit_btf, struct task_struct *task)
{
	note_exit(task, true);
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int rstwatch_exit(void *ctx)
{
	note_exit((struct task_struct *)bpf_get_current_task(), false);
	return 0;
}

/* --- sockets older than rstwatch ---------------------------------------- */

SEC("iter/task_file")
int rstwatch_seed(struct bpf_iter__task_file *ctx)
{
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;

	if (task && file)
		seed_owner(task, file);
	return 0;
}
