/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The wire format between the BPF programs and the Go tracer. bpf2go
 * generates the Go mirror of these structs (-type), so this is their only
 * definition.
 */
#ifndef __RSTWATCH_H__
#define __RSTWATCH_H__

#define TASK_COMM_LEN 16

/* The first byte of every ring-buffer record says what follows. */
enum record_kind {
	RECORD_RESET = 1,   /* struct event */
	RECORD_CONNECT = 2, /* struct connect_event */
};

enum rst_direction {
	RST_SEND = 1,
	RST_RECEIVE = 2,
};

/* How the owner of the local socket was found. */
enum owner_source {
	OWNER_NONE = 0,
	OWNER_SOCKET = 1,   /* by socket pointer: the live socket was seen being made */
	OWNER_TUPLE = 2,    /* by 4-tuple: the socket is gone or is a timewait socket */
	OWNER_LISTENER = 3, /* the listener's owner: not accepted yet */
	/* 4 is the user-space /proc fallback, which the kernel never reports */
	OWNER_SEEDED = 5,   /* by socket pointer: the socket predates rstwatch and this
			     * process held it when rstwatch started */
};

#define REASON_UNKNOWN 0xffff

/*
 * Whether the RST carried the TCP timestamp option: as its sender built it
 * (an active reset leaves through the socket with the options the
 * connection negotiated; a reply to a segment, tcp_v4/v6_send_reset, never
 * has one) or as the receiving socket parsed it. Two resets a host sends on
 * one connection microseconds apart (a close, and its listener answering a
 * segment that crossed it) are told apart by it: the receiving socket takes
 * only one of them.
 */
enum ts_option {
	TS_UNKNOWN = 0,
	TS_ABSENT = 1,
	TS_PRESENT = 2,
};

/*
 * tcp_reset() fires the receive tracepoint both for a reset received and
 * for the kernel aborting a socket shut down for reading because data
 * arrived (TCP_ABORT_ON_DATA), which then sends a reset of its own. The
 * receive cannot tell them apart; the send right after, on the same CPU
 * from the same socket, can.
 */
enum event_flag {
	/* A receive that may be such an abort: shut down for reading, in FIN_WAIT1/2, CLOSING or LAST_ACK. */
	EVENT_MAYBE_ABORT = 1,
	/* A send that says the receive just before on this socket was its abort, not a received reset. */
	EVENT_RETRACTS_RECEIVE = 2,
};

/* Indexes of the per-CPU stats array. */
enum stat_index {
	STAT_SEEN = 0,     /* resets seen by the programs (before filters) */
	STAT_EMITTED = 1,  /* reset records submitted to the ring buffer */
	STAT_LOST = 2,     /* ring buffer full: reset records dropped */
	STAT_FILTERED = 3, /* dropped by --pid/--port/--netns/cgroup filters */
	STAT_AGG_FULL = 4, /* aggregation map full: counted in the overflow key */
	STAT_OWNER_FULL = 5, /* owner table bucket full: a socket's owner not remembered */
	STAT_CONNECTS = 6, /* ZooKeeper connect records submitted */
	STAT_CONNECTS_LOST = 7, /* ring buffer full: connect records dropped */
	STAT_ABORT_RETRACTED = 8, /* receives that were the kernel's abort on data (retracted) */
	STAT_MAX = 9,
};

/* What is remembered of a socket's owner, at the time it was learned. */
struct owner {
	__u64 learned_ns; /* when the owner was learned, to tell it from a later exit */
	__u64 cgroup;     /* the owner's cgroup v2 id then */
	__u32 pid;        /* thread group id */
	__u32 tid;        /* the thread that connected, accepted or listened; 0 if seeded */
	char comm[TASK_COMM_LEN]; /* the thread group leader's name */
	__u8 seeded;      /* found by the start-up iterator, not seen being made */
	__u8 pad[7];
};

/* RECORD_RESET: one reset sent or received. */
struct event {
	__u8 kind; /* RECORD_RESET */
	__u8 direction;
	__u8 state; /* TCP state of the socket, 0 when there is none */
	__u8 owner_source;
	__u8 owner_alive;
	__u8 ts_option; /* enum ts_option */
	__u16 family; /* AF_INET or AF_INET6 of the addresses below */
	__u16 lport;  /* host byte order */
	__u16 rport;
	__u16 reason; /* enum sk_rst_reason, REASON_UNKNOWN when not reported */
	__u16 flags;  /* enum event_flag */
	__u32 netns;
	__u32 task_pid;
	__u32 task_tid;
	__u32 owner_pid;
	__u32 owner_tid;
	__u32 pad3;
	__u64 time_ns; /* bpf_ktime_get_ns */
	__u64 cookie;  /* socket cookie, 0 when unknown */
	__u64 task_cgroup;  /* cgroup v2 id of the task on the CPU */
	__u64 owner_cgroup; /* cgroup v2 id of the owner when it was learned, 0 if none */
	__u8 laddr[16];
	__u8 raddr[16];
	char task_comm[TASK_COMM_LEN];   /* the running task's thread group leader */
	char task_thread[TASK_COMM_LEN]; /* the running thread itself */
	char owner_comm[TASK_COMM_LEN];
};

/*
 * RECORD_CONNECT: a connection to or from a ZooKeeper port was made, so
 * that user space can learn about the client while it lives. Rare: only
 * for the configured ports.
 */
struct connect_event {
	__u8 kind; /* RECORD_CONNECT */
	__u8 accepted; /* 1: accepted here (server side); 0: connected from here */
	__u16 family;
	__u16 lport;
	__u16 rport;
	__u32 netns;
	__u32 pid;
	__u32 tid;
	__u32 pad;
	__u64 time_ns;
	__u64 cgroup;
	__u8 laddr[16];
	__u8 raddr[16];
	char comm[TASK_COMM_LEN];
};

/*
 * In-kernel aggregation (serve): a count per key, read by the daemon on
 * scrape, so a storm costs no wake-up and no per-event copy.
 */
struct agg_key {
	__u64 owner_cgroup; /* the owner's cgroup v2 id, 0 when unknown */
	__u32 owner_pid;
	__u32 netns;
	__u16 reason;
	__u16 zk_port; /* the ZooKeeper port of the connection, 0 when not ZooKeeper */
	__u8 direction;
	__u8 owner_source;
	__u8 zk_family;
	__u8 state; /* TCP state of the socket, 0 when there is none (a refused SYN) */
	__u8 zk_addr[16]; /* the ZooKeeper server's address, zero when not ZooKeeper */
	char owner_comm[TASK_COMM_LEN];
};

#endif /* __RSTWATCH_H__ */
