//go:build ignore
// SPDX-License-Identifier: GPL-2.0

/*
 * rstwatch: every TCP reset this host sends or receives, with the process that
 * owns (or last owned) the socket and the kernel's reason.
 *
 * This file holds the entry points only; the logic is in ebpf/: tuple.h
 * (which connection), owner.h (who owns it), aggregate.h (in-kernel counts),
 * report.h (a reset: filters, records for user space) and lifecycle.h
 * (what a socket's state changes and accept teach about its owner).
 *
 * Each hook has two programs. The BTF-typed one (tp_btf) gets the kernel's
 * own arguments and reads the socket with plain loads; the classic
 * tracepoint is the fallback where a typed program cannot load or attach,
 * and costs more: the kernel fills a trace record before every run. The
 * loader attaches one of each pair. The accept programs are classic
 * tracepoints either way; their typed kind reads with plain loads.
 */
#include "ebpf/common.h"
#include "ebpf/tuple.h"
#include "ebpf/owner.h"
#include "ebpf/aggregate.h"
#include "ebpf/report.h"
#include "ebpf/lifecycle.h"

char __license[] SEC("license") = "GPL";

/* Force bpf2go to emit these types. */
const struct event *unused_event __attribute__((unused));
const struct connect_event *unused_connect_event __attribute__((unused));
const struct agg_key *unused_agg_key __attribute__((unused));
const enum stat_index *unused_stat_index __attribute__((unused));
const enum owner_source *unused_owner_source __attribute__((unused));
const enum rst_direction *unused_rst_direction __attribute__((unused));
const enum record_kind *unused_record_kind __attribute__((unused));
const enum ts_option *unused_ts_option __attribute__((unused));
const enum event_flag *unused_event_flag __attribute__((unused));

/* --- sent resets ------------------------------------------------------- */

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
	return receive_reset(sk, NULL, 0, true);
}

SEC("tracepoint/tcp/tcp_receive_reset")
int rstwatch_receive_reset(struct trace_event_raw_tcp_event_sk *args)
{
	struct tuple t = {};
	__u64 cookie = 0;

	if (bpf_core_field_exists(args->sock_cookie))
		cookie = args->sock_cookie;
	TUPLE_FROM_CTX(args, &t);
	return receive_reset(args->skaddr, &t, cookie, false);
}

/* --- owner learning ---------------------------------------------------- */

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
	sock_forget((__u64)sk);
	return 0;
}

SEC("tracepoint/tcp/tcp_destroy_sock")
int rstwatch_destroy_sock(struct trace_event_raw_tcp_event_sk *args)
{
	sock_forget((__u64)args->skaddr);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int rstwatch_accept4_btf(struct trace_event_raw_sys_exit *args)
{
	return accepted(args, true);
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int rstwatch_accept4(struct trace_event_raw_sys_exit *args)
{
	return accepted(args, false);
}

SEC("tracepoint/syscalls/sys_exit_accept")
int rstwatch_accept_btf(struct trace_event_raw_sys_exit *args)
{
	return accepted(args, true);
}

SEC("tracepoint/syscalls/sys_exit_accept")
int rstwatch_accept(struct trace_event_raw_sys_exit *args)
{
	return accepted(args, false);
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
