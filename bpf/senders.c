//go:build ignore
// SPDX-License-Identifier: GPL-2.0

/*
 * The packet-level view (--all-senders): every TCP segment with RST that
 * leaves a network device, in any network namespace of this host, that the
 * TCP stack did not make. tcp:tcp_send_reset reports only the TCP stack's
 * resets; a firewall's reject, a process writing packets on a raw or packet
 * socket, or another BPF program put resets on the wire without it.
 *
 * The hook is net:net_dev_queue as a BTF-typed program: it runs for every
 * packet queued on any device of any namespace (new ones included, with no
 * per-device attachment), after tc and netfilter egress, in the context
 * that queued the packet, so that the kernel stack still shows the firewall
 * rule that made it. What the TCP stack made is told by skb->sk: the
 * connection's own socket (active resets), a timewait or request socket, or
 * the kernel's TCP control socket (resets answering a segment); those
 * packets are left at once, without reading them. Packet sockets can bypass
 * the queue (PACKET_QDISC_BYPASS, AF_XDP copy mode), so their packets are
 * taken at net:net_dev_start_xmit instead, and only there.
 *
 * Packets this host received and passes on (forwarded, bridged) are left:
 * they were made where they came from.
 */
#include "senders/kernel.h"
#include "headers/bpf_helpers.h"
#include "headers/bpf_core_read.h"
#include "headers/bpf_endian.h"
#include "headers/bpf_tracing.h"
#include "senders/wire.h"
#include "senders/event.h"

char __license[] SEC("license") = "GPL";

#define AF_INET 2
#define AF_INET6 10
#define AF_PACKET 17
#define AF_XDP 44
#define SOCK_STREAM 1
#define SOCK_RAW 3
#define TCP_TIME_WAIT 6
#define TCP_NEW_SYN_RECV 12

/* Set by the loader before load. */
const volatile __u32 filter_netns = 0; /* 0: any */
/* Set where net_dev_start_xmit cannot be hooked: packet sockets' frames are
 * then taken at the queue, and those that bypass it are not seen. */
const volatile bool packets_at_queue = false;
const volatile __u64 wakeup_bytes = 0; /* 0: wake the reader per record */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} sender_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SENDER_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} sender_stats SEC(".maps");

/*
 * IPv6 resets that answer a segment leave without a socket (IPv4's carry
 * the TCP control socket): tcp:tcp_send_reset, which fires just before on
 * the same CPU in the same softirq, leaves the reset's addresses here, and
 * net_dev_queue takes the packet that matches as the TCP stack's. Before
 * 6.9 the tracepoint does not fire for a reset sent without a socket: such
 * a packet is recorded, and user space drops it by its kernel stack.
 */
struct stack_reset {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u32 set;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct stack_reset);
} stack_resets SEC(".maps");

/* Force bpf2go to emit these types. */
const struct sender_event *unused_sender_event __attribute__((unused));
const enum sender_sock *unused_sender_sock __attribute__((unused));
const enum sender_hook *unused_sender_hook __attribute__((unused));
const enum sender_stat *unused_sender_stat __attribute__((unused));

static __always_inline void stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&sender_stats, &idx);
	if (v)
		(*v)++;
}

/* Beyond enum sender_sock: packets to leave without reading them. */
#define KIND_TCP_STACK 0
#define KIND_IGNORE 0xff

/*
 * Who made the packet, from its socket. The fields past sock_common are
 * read only from full sockets: timewait and request sockets end there.
 */
static __always_inline __u8 sock_kind(const struct sock *sk)
{
	if (!sk)
		return SENDER_SOCK_NONE;
	__u16 family = sk->__sk_common.skc_family;
	if (family == AF_PACKET || family == AF_XDP)
		return SENDER_SOCK_PACKET;
	if (family != AF_INET && family != AF_INET6)
		return KIND_IGNORE;
	__u8 state = sk->__sk_common.skc_state;
	if (state == TCP_TIME_WAIT || state == TCP_NEW_SYN_RECV)
		return KIND_TCP_STACK;
	__u16 type = sk->sk_type;
	__u16 proto = sk->sk_protocol;
	if (type == SOCK_STREAM)
		return proto == IPPROTO_TCP ? KIND_TCP_STACK : KIND_IGNORE;
	if (type != SOCK_RAW)
		return KIND_IGNORE; /* datagram sockets cannot carry a TCP segment */
	/*
	 * The kernel's own raw sockets: for IPPROTO_TCP that is the TCP
	 * control socket that answers segments with resets; for other
	 * protocols ICMP and the like.
	 */
	if (BPF_CORE_READ_BITFIELD_PROBED(sk, sk_kern_sock))
		return proto == IPPROTO_TCP ? KIND_TCP_STACK : KIND_IGNORE;
	return SENDER_SOCK_RAW;
}

/* The IP and TCP headers of one packet, read in one go for the usual case. */
union headers {
	struct {
		struct wire_ipv4 ip;
		struct wire_tcp tcp;
	} v4;
	struct {
		struct wire_ipv6 ip;
		struct wire_tcp tcp;
	} v6;
};

struct segment {
	__u16 family;
	__u8 saddr[16];
	__u8 daddr[16];
	struct wire_tcp tcp;
};

#define PARSE_NOT_TCP 1 /* not a TCP segment with RST: not ours */
#define PARSE_FAILED 2  /* an IP packet whose TCP header was not found */

/* Reads the segment at l3, an IP header of version 4 or 6. */
static __always_inline int parse_ip(const unsigned char *l3, struct segment *s)
{
	union headers h;

	if (bpf_probe_read_kernel(&h, sizeof(h), l3))
		return PARSE_FAILED;
	__u8 version = h.v4.ip.ver_ihl >> 4;
	if (version == 4) {
		if (h.v4.ip.protocol != IPPROTO_TCP)
			return PARSE_NOT_TCP;
		/* A later fragment has no TCP header. */
		if (h.v4.ip.frag_off & bpf_htons(IPV4_FRAG_OFFSET))
			return PARSE_NOT_TCP;
		__u32 ihl = (h.v4.ip.ver_ihl & 0x0f) * 4;
		if (ihl < sizeof(struct wire_ipv4))
			return PARSE_FAILED;
		if (ihl == sizeof(struct wire_ipv4))
			s->tcp = h.v4.tcp;
		else if (bpf_probe_read_kernel(&s->tcp, sizeof(s->tcp), l3 + ihl))
			return PARSE_FAILED;
		s->family = AF_INET;
		__builtin_memcpy(s->saddr, h.v4.ip.saddr, 4);
		__builtin_memcpy(s->daddr, h.v4.ip.daddr, 4);
	} else if (version == 6) {
		__u8 next = h.v6.ip.nexthdr;
		if (next != IPPROTO_TCP) {
			/* Extension headers (hop-by-hop, routing, fragment,
			 * destination options) may hide one: not followed. */
			if (next == 0 || next == 43 || next == 44 || next == 60)
				return PARSE_FAILED;
			return PARSE_NOT_TCP;
		}
		s->tcp = h.v6.tcp;
		s->family = AF_INET6;
		__builtin_memcpy(s->saddr, h.v6.ip.saddr, 16);
		__builtin_memcpy(s->daddr, h.v6.ip.daddr, 16);
	} else {
		return PARSE_FAILED;
	}
	return (s->tcp.flags & TCP_FLAG_RST) ? 0 : PARSE_NOT_TCP;
}

/*
 * Whether the task has this file open: a raw socket's packet is queued in
 * the sending process's own sendmsg, unless it waited for the neighbour's
 * address and leaves later from a softirq, on top of whichever task. The
 * process may close the socket right after, so this is checked here, not
 * later in /proc. Bounded: past HOLDER_MAX_FDS descriptors it says no.
 */
#define HOLDER_MAX_FDS 1024

static __always_inline bool task_holds(const struct task_struct *task, const struct file *want)
{
	if (!want)
		return false;
	struct files_struct *files = task->files;
	if (!files)
		return false;
	struct fdtable *fdt = files->fdt;
	if (!fdt)
		return false;
	unsigned int max = fdt->max_fds;
	struct file **fds = fdt->fd;
	for (unsigned int i = 0; i < HOLDER_MAX_FDS; i++) {
		if (i >= max)
			break;
		struct file *f = NULL;
		if (bpf_probe_read_kernel(&f, sizeof(f), &fds[i]))
			break;
		if (f == want)
			return true;
	}
	return false;
}

static __always_inline int report(void *ctx, const struct sk_buff *skb, const struct net_device *dev,
				  const struct sock *sk, __u8 kind, __u8 hook, struct segment *s)
{
	__u32 netns = dev->nd_net.net->ns.inum;

	if (filter_netns && netns != filter_netns)
		return 0;

	struct sender_event *e = bpf_ringbuf_reserve(&sender_events, sizeof(*e), 0);
	if (!e) {
		stat_inc(SENDER_STAT_LOST);
		return 0;
	}
	__u64 id = bpf_get_current_pid_tgid();

	e->time_ns = bpf_ktime_get_ns();
	e->netns = netns;
	e->ifindex = dev->ifindex;
	bpf_probe_read_kernel(e->ifname, sizeof(e->ifname), dev->name);
	e->family = s->family;
	__builtin_memcpy(e->saddr, s->saddr, sizeof(e->saddr));
	__builtin_memcpy(e->daddr, s->daddr, sizeof(e->daddr));
	e->sport = bpf_ntohs(s->tcp.source);
	e->dport = bpf_ntohs(s->tcp.dest);
	e->seq = bpf_ntohl(s->tcp.seq);
	e->ack_seq = bpf_ntohl(s->tcp.ack_seq);
	e->tcp_flags = s->tcp.flags;
	e->sock = kind;
	e->hook = hook;
	e->task_holds = 0;
	e->task_pid = id >> 32;
	e->task_tid = (__u32)id;
	bpf_get_current_comm(e->task_thread, sizeof(e->task_thread));
	struct task_struct *task = bpf_get_current_task_btf();
	bpf_probe_read_kernel(e->task_comm, sizeof(e->task_comm), task->group_leader->comm);

	e->sk_inode = 0;
	e->sk_cookie = 0;
	e->sk_uid = 0;
	if (sk) {
		e->sk_cookie = sk->__sk_common.skc_cookie.counter;
		e->sk_uid = sk->sk_uid.val;
		struct socket *so = sk->sk_socket;
		struct file *file = so ? so->file : NULL;
		if (file) {
			e->sk_inode = file->f_inode->i_ino;
			e->task_holds = task_holds(task, file);
		}
	}
	/*
	 * Without a socket the kernel made the packet; its stack says where
	 * (a firewall rule, and at which hook). Only these rare packets pay
	 * for the walk.
	 */
	e->stack_bytes = 0;
	if (kind == SENDER_SOCK_NONE) {
		long n = bpf_get_stack(ctx, e->stack, sizeof(e->stack), 0);
		if (n > 0)
			e->stack_bytes = n;
	}

	__u64 flags = 0;
	if (wakeup_bytes) {
		/* Batch wake-ups: a storm of rejects must not wake the reader per record. */
		flags = bpf_ringbuf_query(&sender_events, BPF_RB_AVAIL_DATA) >= wakeup_bytes ?
				BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	}
	bpf_ringbuf_submit(e, flags);
	stat_inc(SENDER_STAT_EMITTED);
	return 0;
}

/* A packet socket's frame: the link-layer header first. */
static __always_inline int parse_frame(const struct sk_buff *skb, const struct net_device *dev, struct segment *s)
{
	const unsigned char *data = skb->data;
	const unsigned char *l3 = data;
	__u16 hh = dev->hard_header_len;
	if (hh == ETH_HLEN) {
		__be16 ethertype = 0;
		if (bpf_probe_read_kernel(&ethertype, sizeof(ethertype), data + 12))
			return PARSE_FAILED;
		if (ethertype != bpf_htons(ETH_P_IP) && ethertype != bpf_htons(ETH_P_IPV6))
			return PARSE_NOT_TCP;
		l3 = data + ETH_HLEN;
	} else if (hh != 0) {
		/* A link layer rstwatch does not parse. */
		return PARSE_NOT_TCP;
	}
	return parse_ip(l3, s);
}

/* A packet socket's frame, from either hook. */
static __always_inline int handle_frame(void *ctx, const struct sk_buff *skb, const struct net_device *dev,
					const struct sock *sk, __u8 hook)
{
	struct segment s = {};
	int err = parse_frame(skb, dev, &s);
	if (err) {
		if (err == PARSE_FAILED)
			stat_inc(SENDER_STAT_UNPARSED);
		return 0;
	}
	return report(ctx, skb, dev, sk, SENDER_SOCK_PACKET, hook, &s);
}

/* Whether the TCP stack announced this IPv6 reset (and forget it). */
static __always_inline bool announced(const struct segment *s)
{
	__u32 zero = 0;
	struct stack_reset *m = bpf_map_lookup_elem(&stack_resets, &zero);
	if (!m || !m->set)
		return false;
	if (m->sport != bpf_ntohs(s->tcp.source) || m->dport != bpf_ntohs(s->tcp.dest))
		return false;
	for (int i = 0; i < 16; i++) {
		if (m->saddr[i] != s->saddr[i] || m->daddr[i] != s->daddr[i])
			return false;
	}
	m->set = 0;
	return true;
}

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(rstwatch_senders_tcp_reset, const struct sock *sk, const struct sk_buff *skb)
{
	/* An active reset goes out with its connection's socket. */
	if (!skb || skb->protocol != bpf_htons(ETH_P_IPV6))
		return 0;
	struct wire_ipv6 ip;
	__be16 ports[2];
	const unsigned char *head = skb->head;
	if (bpf_probe_read_kernel(&ip, sizeof(ip), head + skb->network_header) ||
	    bpf_probe_read_kernel(ports, sizeof(ports), head + skb->transport_header))
		return 0;
	__u32 zero = 0;
	struct stack_reset *m = bpf_map_lookup_elem(&stack_resets, &zero);
	if (!m)
		return 0;
	/* The reset goes back where the segment came from. */
	__builtin_memcpy(m->saddr, ip.daddr, 16);
	__builtin_memcpy(m->daddr, ip.saddr, 16);
	m->sport = bpf_ntohs(ports[1]);
	m->dport = bpf_ntohs(ports[0]);
	m->set = 1;
	return 0;
}

SEC("tp_btf/net_dev_queue")
int BPF_PROG(rstwatch_senders_queue, struct sk_buff *skb)
{
	/* Received by this host and passed on: made elsewhere. */
	if (skb->skb_iif)
		return 0;
	const struct sock *sk = skb->sk;
	__u8 kind = sock_kind(sk);
	if (kind == KIND_TCP_STACK || kind == KIND_IGNORE)
		return 0;
	if (kind == SENDER_SOCK_PACKET) {
		if (!packets_at_queue)
			return 0;
		return handle_frame(ctx, skb, skb->dev, sk, SENDER_HOOK_QUEUE);
	}
	__be16 proto = skb->protocol;
	if (proto != bpf_htons(ETH_P_IP) && proto != bpf_htons(ETH_P_IPV6))
		return 0;

	struct segment s = {};
	int err = parse_ip(skb->head + skb->network_header, &s);
	if (err) {
		if (err == PARSE_FAILED)
			stat_inc(SENDER_STAT_UNPARSED);
		return 0;
	}
	if (kind == SENDER_SOCK_NONE && s.family == AF_INET6 && announced(&s))
		return 0;
	return report(ctx, skb, skb->dev, sk, kind, SENDER_HOOK_QUEUE, &s);
}

/*
 * Packet sockets hand the driver whole frames, through the queue or past
 * it: their packets are taken here, where both ways meet, and only here.
 */
SEC("tp_btf/net_dev_start_xmit")
int BPF_PROG(rstwatch_senders_xmit, const struct sk_buff *skb, const struct net_device *dev)
{
	const struct sock *sk = skb->sk;
	if (!sk)
		return 0;
	__u16 family = sk->__sk_common.skc_family;
	if (family != AF_PACKET && family != AF_XDP)
		return 0;
	return handle_frame(ctx, skb, dev, sk, SENDER_HOOK_XMIT);
}
