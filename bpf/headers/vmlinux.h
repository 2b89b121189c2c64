/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kernel types rstwatch reads, trimmed to the fields it uses.
 *
 * Every struct is marked preserve_access_index, so field offsets are
 * relocated against the running kernel's BTF at load time (CO-RE): these
 * definitions give names and types, never offsets. Anonymous unions and
 * structs of the kernel are flattened here; CO-RE finds a field through the
 * kernel's anonymous members by name.
 */
#ifndef __RSTWATCH_VMLINUX_H__
#define __RSTWATCH_VMLINUX_H__

typedef unsigned char __u8;
typedef short int __s16;
typedef short unsigned int __u16;
typedef int __s32;
typedef unsigned int __u32;
typedef long long int __s64;
typedef long long unsigned int __u64;
typedef __u8 u8;
typedef __s16 s16;
typedef __u16 u16;
typedef __s32 s32;
typedef __u32 u32;
typedef __s64 s64;
typedef __u64 u64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
enum { false = 0, true = 1 };

enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_HASH = 5,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_RINGBUF = 27,
};

enum {
	BPF_ANY = 0,
	BPF_NOEXIST = 1,
	BPF_EXIST = 2,
};

enum {
	BPF_F_NO_COMMON_LRU = 2,
};

enum {
	BPF_RB_NO_WAKEUP = 1,
	BPF_RB_FORCE_WAKEUP = 2,
};

enum {
	BPF_RB_AVAIL_DATA = 0,
};

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

typedef struct {
	int counter;
} atomic_t;

typedef struct {
	s64 counter;
} atomic64_t;

struct in6_addr {
	union {
		__u8 u6_addr8[16];
		__be32 u6_addr32[4];
	} in6_u;
};

struct ns_common {
	unsigned int inum;
};

struct net {
	struct ns_common ns;
	__u64 net_cookie;
};

typedef struct {
	struct net *net;
} possible_net_t;

struct sock_common {
	__be32 skc_daddr;
	__be32 skc_rcv_saddr;
	__be16 skc_dport;
	__u16 skc_num;
	short unsigned int skc_family;
	volatile unsigned char skc_state;
	possible_net_t skc_net;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
	atomic64_t skc_cookie;
	long unsigned int skc_flags; /* sock_flags bits of a full socket */
	struct sock *skc_listener;   /* of a request socket: its listener */
};

struct file {
	void *private_data;
};

struct sock;

struct socket {
	struct sock *sk;
};

struct sock {
	struct sock_common __sk_common;
	struct socket *sk_socket;
	u16 sk_protocol;
	u16 sk_type;
	/* A bitfield in older kernels: read with BPF_CORE_READ_BITFIELD*. */
	u8 sk_shutdown;
};

enum sock_flags {
	SOCK_DEAD = 0,
};


/* What a TCP socket parsed from the last segment and learned at the
 * handshake: whether that segment carried a timestamp, whether the
 * connection uses them. Bitfields, read with BPF_CORE_READ_BITFIELD_PROBED. */
struct tcp_options_received {
	u16 saw_tstamp : 1, tstamp_ok : 1;
};

struct tcp_sock {
	struct tcp_options_received rx_opt;
};

/* Full sockets only: timewait and request sockets end at sock_common. */
struct inet_sock {
	struct sock sk;
	__be16 inet_sport;
};

struct net_device {
	possible_net_t nd_net;
};

struct sk_buff {
	struct net_device *dev;
	__u16 transport_header;
	__u16 network_header;
	unsigned char *head;
};

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
};

struct files_struct {
	struct fdtable *fdt;
};

struct signal_struct {
	atomic_t live;
};

struct kernfs_node {
	u64 id;
};

struct cgroup {
	struct kernfs_node *kn;
};

struct css_set {
	struct cgroup *dfl_cgrp;
};

struct task_struct {
	int pid;
	int tgid;
	struct task_struct *group_leader;
	char comm[16];
	struct files_struct *files;
	struct signal_struct *signal;
	struct css_set *cgroups;
};

/* The context of an iter/task_file program: one open file of one task. */
struct bpf_iter_meta {
	u64 seq_num;
};

struct bpf_iter__task_file {
	union {
		struct bpf_iter_meta *meta;
	};
	union {
		struct task_struct *task;
	};
	u32 fd;
	union {
		struct file *file;
	};
};

struct trace_entry {
	short unsigned int type;
	unsigned char flags;
	unsigned char preempt_count;
	int pid;
};

/*
 * Tracepoint contexts. Fields are read with direct, CO-RE relocated loads
 * (no helper call); a field a kernel lacks is checked with
 * bpf_core_field_exists first.
 *
 * tcp:tcp_send_reset: before 6.10 an event of the tcp_event_sk_skb class
 * with split address fields and no reason, of which only the two pointers
 * are used (addresses then come from the socket or the packet); from 6.10 its
 * own event with a reason and sockaddr addresses.
 */
struct trace_event_raw_tcp_event_sk_skb {
	struct trace_entry ent;
	const void *skbaddr;
	const void *skaddr;
};

/* Only the type is needed: CO-RE matches an enum field only with an enum. */
enum sk_rst_reason {
	SK_RST_REASON_NOT_SPECIFIED = 0,
};

/* 6.10+: the addresses are sockaddr_in/sockaddr_in6, this host's end first. */
struct trace_event_raw_tcp_send_reset {
	struct trace_entry ent;
	const void *skbaddr;
	const void *skaddr;
	int state;
	enum sk_rst_reason reason;
	__u8 saddr[28];
	__u8 daddr[28];
};

/* tcp:tcp_receive_reset and tcp:tcp_destroy_sock (class tcp_event_sk). */
struct trace_event_raw_tcp_event_sk {
	struct trace_entry ent;
	const void *skaddr;
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u8 saddr[4];
	__u8 daddr[4];
	__u8 saddr_v6[16];
	__u8 daddr_v6[16];
	__u64 sock_cookie;
};

struct trace_event_raw_inet_sock_set_state {
	struct trace_entry ent;
	const void *skaddr;
	int oldstate;
	int newstate;
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u16 protocol;
	__u8 saddr[4];
	__u8 daddr[4];
	__u8 saddr_v6[16];
	__u8 daddr_v6[16];
};

struct trace_event_raw_sys_exit {
	struct trace_entry ent;
	long int id;
	long int ret;
};

#pragma clang attribute pop

/*
 * Packet headers. These are wire formats, fixed by the RFCs rather than by
 * the kernel, so they are plain structs without CO-RE relocation; they are
 * read from a packet with bpf_probe_read_kernel into a copy on the stack.
 * Bit fields are in little-endian order (the bpfel target).
 */
struct iphdr {
	__u8 ihl : 4, version : 4;
	__u8 tos;
	__be16 tot_len;
	__be16 id;
	__be16 frag_off;
	__u8 ttl;
	__u8 protocol;
	__u16 check;
	__be32 saddr;
	__be32 daddr;
};

struct ipv6hdr {
	__u8 priority : 4, version : 4;
	__u8 flow_lbl[3];
	__be16 payload_len;
	__u8 nexthdr;
	__u8 hop_limit;
	struct in6_addr saddr;
	struct in6_addr daddr;
};

struct tcphdr {
	__be16 source;
	__be16 dest;
	__be32 seq;
	__be32 ack_seq;
	__u16 res1 : 4, doff : 4, fin : 1, syn : 1, rst : 1, psh : 1, ack : 1, urg : 1, ece : 1, cwr : 1;
	__be16 window;
	__u16 check;
	__be16 urg_ptr;
};

#endif /* __RSTWATCH_VMLINUX_H__ */
