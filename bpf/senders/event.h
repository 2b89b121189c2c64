/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The record of a TCP reset that left a network device without the TCP
 * stack having made it. bpf2go generates the Go mirror (-type), so this is
 * its only definition.
 */
#ifndef __RSTWATCH_SENDERS_EVENT_H__
#define __RSTWATCH_SENDERS_EVENT_H__

#define SENDER_COMM_LEN 16
#define SENDER_IFNAMSIZ 16
#define SENDER_STACK_DEPTH 32

/* What skb->sk said about who made the packet. */
enum sender_sock {
	SENDER_SOCK_NONE = 1,   /* no socket: made inside the kernel (netfilter, ...) */
	SENDER_SOCK_RAW = 2,    /* a process's raw IP socket (SOCK_RAW) */
	SENDER_SOCK_PACKET = 3, /* a packet socket (AF_PACKET) or an AF_XDP socket */
};

/* Where the program saw it. */
enum sender_hook {
	SENDER_HOOK_QUEUE = 1, /* net:net_dev_queue, in the context that sent it */
	SENDER_HOOK_XMIT = 2,  /* net:net_dev_start_xmit, at the driver (packet sockets) */
};

/* Indexes of the per-CPU counters. */
enum sender_stat {
	SENDER_STAT_EMITTED = 0,  /* records submitted */
	SENDER_STAT_LOST = 1,     /* ring buffer full: records dropped */
	SENDER_STAT_UNPARSED = 2, /* IP packets of a non-TCP-stack sender whose TCP header was not found */
	SENDER_STAT_MAX = 3,
};

struct sender_event {
	__u64 time_ns;   /* bpf_ktime_get_ns */
	__u64 sk_inode;  /* inode of the sending socket's file, 0 when none */
	__u64 sk_cookie; /* the sending socket's cookie, 0 when none was assigned */
	__u32 netns;     /* network namespace of the device */
	__u32 ifindex;
	__u32 task_pid;  /* the task on the CPU (not necessarily the sender) */
	__u32 task_tid;
	__u32 seq;       /* host byte order */
	__u32 ack_seq;
	__u32 sk_uid;
	__u16 family;    /* AF_INET or AF_INET6 */
	__u16 sport;     /* host byte order */
	__u16 dport;
	__u16 stack_bytes; /* bytes of stack[] filled (no-socket packets only) */
	__u8 tcp_flags;
	__u8 sock;       /* enum sender_sock */
	__u8 hook;       /* enum sender_hook */
	__u8 task_holds; /* 1: the task on the CPU has the sending socket open */
	__u8 saddr[16];
	__u8 daddr[16];
	char ifname[SENDER_IFNAMSIZ];
	char task_comm[SENDER_COMM_LEN];   /* the task's thread group leader */
	char task_thread[SENDER_COMM_LEN]; /* the running thread */
	__u64 stack[SENDER_STACK_DEPTH];   /* kernel return addresses, innermost first */
};

#endif /* __RSTWATCH_SENDERS_EVENT_H__ */
