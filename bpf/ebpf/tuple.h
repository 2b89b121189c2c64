/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The connection a reset belongs to, as this host sees it: local end first,
 * ports in host order, in the socket's network namespace. IPv4 on an IPv6
 * socket is stored as IPv4, so that a tuple taken from the socket and one
 * taken from a packet of the same connection are equal.
 */
#ifndef __RSTWATCH_TUPLE_H__
#define __RSTWATCH_TUPLE_H__

#include "common.h"

struct tuple {
	__u32 netns;
	__u16 family;
	__u16 lport;
	__u16 rport;
	__u16 pad;
	__u8 laddr[16];
	__u8 raddr[16];
};

static __always_inline bool v4_mapped(const __u8 *a)
{
	const __u32 *w = (const __u32 *)a;

	return w[0] == 0 && w[1] == 0 && w[2] == bpf_htonl(0xffff);
}

/* ::ffff:a.b.c.d on both ends is an IPv4 connection. */
static __always_inline void tuple_unmap(struct tuple *t)
{
	if (t->family != AF_INET6 || !v4_mapped(t->laddr) || !v4_mapped(t->raddr))
		return;
	t->family = AF_INET;
	__builtin_memcpy(t->laddr, &t->laddr[12], 4);
	__builtin_memcpy(t->raddr, &t->raddr[12], 4);
	__builtin_memset(&t->laddr[4], 0, 12);
	__builtin_memset(&t->raddr[4], 0, 12);
}

/*
 * The connection as seen from the socket (full, timewait or request). The
 * namespace is left to the caller, which knows it for every kind of reset.
 */
static __always_inline void tuple_from_sock(const struct sock *sk, __u8 state, struct tuple *t, bool typed)
{
	t->family = KREAD(typed, sk, __sk_common.skc_family);
	t->lport = KREAD(typed, sk, __sk_common.skc_num);
	/*
	 * A full socket going to CLOSE has released its port (skc_num = 0)
	 * before inet_sock_set_state fires and before an active reset is
	 * sent; inet_sport keeps it. inet_sock lies beyond struct sock, where
	 * a typed load may not reach: it is read with a helper either way.
	 */
	if (!t->lport && full_sock(state))
		t->lport = bpf_ntohs(BPF_CORE_READ((struct inet_sock *)sk, inet_sport));
	t->rport = bpf_ntohs(KREAD(typed, sk, __sk_common.skc_dport));
	if (t->family == AF_INET6) {
		if (typed) {
			__builtin_memcpy(t->laddr, &sk->__sk_common.skc_v6_rcv_saddr, 16);
			__builtin_memcpy(t->raddr, &sk->__sk_common.skc_v6_daddr, 16);
		} else {
			BPF_CORE_READ_INTO(&t->laddr, sk, __sk_common.skc_v6_rcv_saddr);
			BPF_CORE_READ_INTO(&t->raddr, sk, __sk_common.skc_v6_daddr);
		}
		tuple_unmap(t);
	} else {
		__u32 *l = (__u32 *)t->laddr, *r = (__u32 *)t->raddr;

		*l = KREAD(typed, sk, __sk_common.skc_rcv_saddr);
		*r = KREAD(typed, sk, __sk_common.skc_daddr);
	}
}

/* The IP header of either version, read in one go. */
union iphdrs {
	struct iphdr v4;
	struct ipv6hdr v6;
};

/*
 * The connection as seen from the segment a reset answers, reversed: the
 * reset goes from the segment's destination (this host) to its source.
 * Also returns the segment's TCP header.
 */
static __always_inline int tuple_from_skb_reversed(const struct sk_buff *skb, struct tuple *t,
						   struct tcphdr *tcp, bool typed)
{
	unsigned char *head = KREAD(typed, skb, head);
	__u16 nh = KREAD(typed, skb, network_header);
	__u16 th = KREAD(typed, skb, transport_header);
	/*
	 * One read for both headers when the TCP header follows an IP header
	 * without options (IPv4, 20 bytes) or extension headers (IPv6, 40):
	 * helper calls are most of what a reset costs here. The 60 bytes
	 * may run past a short IPv4 segment's end into the skb's own buffer,
	 * which is only read, never used.
	 */
	struct {
		union iphdrs ip;
		struct tcphdr tcp;
	} h;
	const union iphdrs *ip = &h.ip;

	if (bpf_probe_read_kernel(&h, sizeof(h), head + nh))
		return -1;
	if (th == nh + sizeof(struct iphdr)) {
		__builtin_memcpy(tcp, (__u8 *)&h + sizeof(struct iphdr), sizeof(*tcp));
	} else if (th == nh + sizeof(struct ipv6hdr)) {
		__builtin_memcpy(tcp, &h.tcp, sizeof(*tcp));
	} else if (bpf_probe_read_kernel(tcp, sizeof(*tcp), head + th)) {
		return -1;
	}
	if (ip->v4.version == 4) {
		t->family = AF_INET;
		__builtin_memcpy(t->raddr, &ip->v4.saddr, 4);
		__builtin_memcpy(t->laddr, &ip->v4.daddr, 4);
	} else if (ip->v4.version == 6) {
		t->family = AF_INET6;
		__builtin_memcpy(t->raddr, &ip->v6.saddr, 16);
		__builtin_memcpy(t->laddr, &ip->v6.daddr, 16);
		tuple_unmap(t);
	} else {
		return -1;
	}
	t->rport = bpf_ntohs(tcp->source);
	t->lport = bpf_ntohs(tcp->dest);
	return 0;
}

/*
 * The tuple as a classic tracepoint already recorded it (tcp_event_sk and
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
			tuple_unmap(t);                                           \
		} else {                                                          \
			bpf_probe_read_kernel((t)->laddr, 4, (args)->saddr);      \
			bpf_probe_read_kernel((t)->raddr, 4, (args)->daddr);      \
		}                                                                 \
	} while (0)

#endif /* __RSTWATCH_TUPLE_H__ */
