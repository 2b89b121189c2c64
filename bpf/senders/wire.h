/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Packet headers as they are on the wire (RFC 791, 8200, 9293). These are
 * not kernel types and need no CO-RE: the layout is the protocol's. The
 * names carry a wire_ prefix so that they can never clash with the kernel's
 * own struct iphdr/tcphdr should a shared header define those.
 */
#ifndef __RSTWATCH_SENDERS_WIRE_H__
#define __RSTWATCH_SENDERS_WIRE_H__

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD

#define IPPROTO_TCP 6

#define TCP_FLAG_RST 0x04

struct wire_ipv4 {
	__u8 ver_ihl; /* version << 4 | header length in 32-bit words */
	__u8 tos;
	__be16 tot_len;
	__be16 id;
	__be16 frag_off; /* flags and fragment offset */
	__u8 ttl;
	__u8 protocol;
	__be16 check;
	__u8 saddr[4];
	__u8 daddr[4];
};

struct wire_ipv6 {
	__be32 ver_class_flow;
	__be16 payload_len;
	__u8 nexthdr;
	__u8 hop_limit;
	__u8 saddr[16];
	__u8 daddr[16];
};

struct wire_tcp {
	__be16 source;
	__be16 dest;
	__be32 seq;
	__be32 ack_seq;
	__u8 doff; /* data offset << 4 */
	__u8 flags;
	__be16 window;
	__be16 check;
	__be16 urg_ptr;
};

#define IPV4_FRAG_OFFSET 0x1fff

#endif /* __RSTWATCH_SENDERS_WIRE_H__ */
