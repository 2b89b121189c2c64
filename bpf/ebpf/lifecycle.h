/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A socket's life as far as attribution cares: the state changes and the
 * accept that name its owner, the close that may keep the owner under the
 * 4-tuple, and the ZooKeeper connections reported when asked for.
 */
#ifndef __RSTWATCH_LIFECYCLE_H__
#define __RSTWATCH_LIFECYCLE_H__

#include "common.h"
#include "tuple.h"
#include "owner.h"
#include "report.h"

/*
 * Whether an established connection has a ZooKeeper port at either end:
 * checked first, so that every other connection pays two array lookups
 * for the connect records, not an owner lookup and a tuple read.
 */
static __always_inline bool zk_conn(const struct sock *sk, bool typed)
{
	return port_has(KREAD(typed, sk, __sk_common.skc_num), PORT_ZK) ||
	       port_has(bpf_ntohs(KREAD(typed, sk, __sk_common.skc_dport)), PORT_ZK);
}

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
	switch (newstate) {
	case TCP_SYN_SENT: {
		struct owner o = {};

		remember_current(sk, &o, typed);
		break;
	}
	case TCP_LISTEN:
		remember_listener(sk, typed);
		break;
	case TCP_ESTABLISHED:
		if (zk_connects && oldstate == TCP_SYN_SENT && zk_conn(sk, typed)) {
			struct owner o;

			if (sock_get((__u64)sk, &o))
				report_connect(sk, &o, false, typed);
		}
		break;
	case TCP_CLOSE:
		/*
		 * A reset received by a socket its process still holds: the
		 * peer dropped the connection, nothing more will come. On a
		 * socket shut down for reading (closed, or shutdown(SHUT_RD) as
		 * ZooKeeper's Java client and server do before close) the
		 * "received reset" may be the kernel aborting it for data that
		 * arrived after the shutdown, answered with a reset of its own
		 * right after, while more of the peer's segments may be on
		 * their way: keep the owner then, for their resets.
		 */
		if (closing_by_received_reset(sk) && !rcv_shutdown(sk, typed))
			break;
		if (!keep_after_close(oldstate))
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

/*
 * Accepted sockets: no BTF-typed hook sees them (a tp_btf program on
 * raw_syscalls:sys_exit would run for every system call), so both kinds are
 * classic syscall tracepoints, which cost nothing for other calls. The typed
 * kind reads the fd table and the socket with plain loads (typed casts,
 * 6.2+); the classic one with a helper call per field.
 */
static __always_inline int accepted(struct trace_event_raw_sys_exit *args, bool typed)
{
	const struct sock *sk = typed ? accepted_sock_typed(args->ret) : accepted_sock(args->ret);
	struct owner o = {};

	if (!sk)
		return 0;
	/* Reported only when remembered, as a connect's record is. */
	if (remember_current(sk, &o, typed) && zk_connects && zk_conn(sk, typed))
		report_connect(sk, &o, true, typed);
	return 0;
}

#endif /* __RSTWATCH_LIFECYCLE_H__ */
