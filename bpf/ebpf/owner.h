/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Who owns a socket. Resets are often emitted in softirq or timer context,
 * in the peer's context on loopback, or after the owner closed the socket or
 * exited, so the task on the CPU is not the owner. Owners are therefore
 * learned where the current task certainly is the owner (connect, listen,
 * accept: process context), or from the open files of every process when
 * rstwatch starts, and remembered by socket pointer until the socket is
 * destroyed; a connection that may still be answered with a reset after its
 * socket is gone (TIME_WAIT, an abort) keeps its owner under the 4-tuple.
 */
#ifndef __RSTWATCH_OWNER_H__
#define __RSTWATCH_OWNER_H__

#include "common.h"
#include "tuple.h"

/*
 * Live sockets' owners, by socket pointer: 4-way buckets of an array, one
 * bucket per hash of the pointer, a slot freed when its socket is
 * destroyed. Every connection made or accepted writes one slot and frees
 * it, so this is the per-connection path: a hash map's insert and delete
 * take a bucket lock with interrupts off and cost ~250 ns each on a
 * paravirtual VM, a slot a few loads and two atomics. (Socket-local storage
 * was measured too: creating an entry cost three times a hash insert.)
 *
 * A slot is taken only when free or already this socket's: a full bucket
 * refuses the owner (STAT_OWNER_FULL) rather than pushing out a live
 * socket's, so a socket never loses its owner to later ones. Slots use the
 * sequence protocol of the 4-tuple cache below: odd while written, taken
 * with a compare-and-swap of the even value read before the slot was
 * examined (so a write in between makes the swap fail), released with an
 * add; readers keep a copy only if the sequence was even and unchanged.
 */
#define SOCK_WAYS 4

/*
 * The sequences and sockets of a bucket share its first cache line, so that
 * finding a socket's slot, or that it has none, reads one line.
 */
struct sock_bucket {
	__u64 seq[SOCK_WAYS];
	__u64 sk[SOCK_WAYS]; /* 0: free */
	struct owner o[SOCK_WAYS];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct sock_bucket);
} owner_by_sock SEC(".maps");

/* max_entries of owner_by_sock minus one (a power of two): set by the loader. */
const volatile __u32 sock_bucket_mask = 16383;

static __always_inline struct sock_bucket *sock_bucket(__u64 sk)
{
	__u32 idx = (ptr_hash(sk) >> 8) & sock_bucket_mask;

	return bpf_map_lookup_elem(&owner_by_sock, &idx);
}

/*
 * Takes slot i if it holds `want` (0: free) and is not being written. The
 * sequence is read with a barrier before the slot's socket is, and the
 * swap succeeds only if no write came in between.
 */
static __always_inline bool sock_claim(struct sock_bucket *b, int i, __u64 want)
{
	__u64 seq = __sync_fetch_and_add(&b->seq[i], 0);

	if ((seq & 1) || b->sk[i] != want)
		return false;
	return __sync_val_compare_and_swap(&b->seq[i], seq, seq + 1) == seq;
}

/*
 * Remembers o as sk's owner: in sk's own slot if it has one (replacing it,
 * unless only_new), else in a free one. Returns false when the bucket had
 * no slot for it.
 */
static __always_inline bool sock_put(__u64 sk, const struct owner *o, bool only_new)
{
	struct sock_bucket *b = sock_bucket(sk);

	if (!b)
		return false;
	/* Its own slot first: a socket must never have two. */
#pragma unroll
	for (int i = 0; i < SOCK_WAYS; i++) {
		if (b->sk[i] != sk)
			continue;
		if (only_new)
			return true;
		if (!sock_claim(b, i, sk))
			return false;
		__builtin_memcpy(&b->o[i], o, sizeof(b->o[i]));
		__sync_fetch_and_add(&b->seq[i], 1);
		return true;
	}
#pragma unroll
	for (int i = 0; i < SOCK_WAYS; i++) {
		/* In use, or another writer took it first: try the next. */
		if (b->sk[i] || !sock_claim(b, i, 0))
			continue;
		b->sk[i] = sk;
		__builtin_memcpy(&b->o[i], o, sizeof(b->o[i]));
		__sync_fetch_and_add(&b->seq[i], 1);
		return true;
	}
	return false;
}

/* Copies sk's owner into out; false when it has none (or it was being written). */
static __always_inline bool sock_get(__u64 sk, struct owner *out)
{
	struct sock_bucket *b = sock_bucket(sk);

	if (!b || !sk)
		return false;
#pragma unroll
	for (int i = 0; i < SOCK_WAYS; i++) {
		struct owner o;

		if (b->sk[i] != sk)
			continue;
		__u64 before = __sync_fetch_and_add(&b->seq[i], 0);
		if ((before & 1) || b->sk[i] != sk)
			return false;
		__builtin_memcpy(&o, &b->o[i], sizeof(o));
		if (__sync_fetch_and_add(&b->seq[i], 0) != before)
			return false;
		__builtin_memcpy(out, &o, sizeof(*out));
		return true;
	}
	return false;
}

/*
 * Frees sk's slot before its memory can become another socket (on
 * tcp_destroy_sock). Only sk's
 * own writer (not running: the socket is being destroyed) takes a slot that
 * holds sk, so the claim cannot meet a writer; readers do not change the
 * sequence.
 */
static __always_inline void sock_forget(__u64 sk)
{
	struct sock_bucket *b = sock_bucket(sk);

	if (!b)
		return;
#pragma unroll
	for (int i = 0; i < SOCK_WAYS; i++) {
		if (b->sk[i] != sk || !sock_claim(b, i, sk))
			continue;
		b->sk[i] = 0;
		__sync_fetch_and_add(&b->seq[i], 1);
		return;
	}
}

/*
 * Closed connections: a cache of 4-way buckets, one bucket per hash of the
 * 4-tuple. Entries are written once and read rarely, so replacing the
 * oldest of a bucket (each bucket counts its writes) is what an LRU would
 * do. An LRU hash did the same job at about a microsecond per insert once
 * full (evictions take other buckets' locks), which every actively closed
 * connection paid; a bucket costs a hash and a few cache lines. Four ways
 * keep an entry against unrelated closes landing in its bucket: at 50k
 * closes a second into 16k buckets, the four that push it out take ~1 s.
 *
 * Slots are written by any CPU, so each has a sequence number: odd while
 * being written. A writer takes the slot with a compare-and-swap (or gives
 * the copy up when another writer has it) and releases it with an atomic
 * add; a reader copies a slot and keeps the copy only if the sequence was
 * even and unchanged around it, and only if the copied tuple is its own. So
 * a torn slot is never taken for an owner. The 64-bit atomics are full
 * barriers on every architecture the JITs support.
 */
#define TUPLE_WAYS 4

struct tuple_slot {
	__u64 seq;
	struct tuple t;
	__u32 pad;
	__u64 sk; /* the socket whose close wrote the slot */
	struct owner o;
};

struct tuple_bucket {
	__u64 writes; /* the next slot to replace, modulo TUPLE_WAYS */
	struct tuple_slot slot[TUPLE_WAYS];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct tuple_bucket);
} owner_by_tuple SEC(".maps");

/* max_entries of owner_by_tuple minus one (a power of two): set by the loader. */
const volatile __u32 tuple_bucket_mask = 16383;

static __always_inline __u32 tuple_hash(const struct tuple *t)
{
	const __u32 *w = (const __u32 *)t;
	__u32 h = 0x811c9dc5;

#pragma unroll
	for (int i = 0; i < sizeof(*t) / 4; i++) {
		h ^= w[i];
		h *= 0x01000193;
	}
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	return h;
}

static __always_inline bool tuple_equal(const struct tuple *a, const struct tuple *b)
{
	const __u32 *x = (const __u32 *)a, *y = (const __u32 *)b;
	__u32 diff = 0;

#pragma unroll
	for (int i = 0; i < sizeof(*a) / 4; i++)
		diff |= x[i] ^ y[i];
	return diff == 0;
}

static __always_inline void tuple_put(const struct tuple *t, const struct owner *o, const struct sock *sk)
{
	__u32 idx = tuple_hash(t) & tuple_bucket_mask;
	struct tuple_bucket *b = bpf_map_lookup_elem(&owner_by_tuple, &idx);

	if (!b)
		return;
	struct tuple_slot *s = &b->slot[__sync_fetch_and_add(&b->writes, 1) & (TUPLE_WAYS - 1)];
	__u64 seq = s->seq;
	if ((seq & 1) || __sync_val_compare_and_swap(&s->seq, seq, seq + 1) != seq)
		return; /* another writer has the slot: this copy is not kept */
	__builtin_memcpy(&s->t, t, sizeof(s->t));
	s->sk = (__u64)sk;
	__builtin_memcpy(&s->o, o, sizeof(s->o));
	__sync_fetch_and_add(&s->seq, 1);
}

/*
 * One slot's owner for t, if the slot holds t (written by socket sk, when
 * sk is not 0) and was not being written.
 */
static __always_inline bool slot_get(struct tuple_slot *s, const struct tuple *t, __u64 sk, struct owner *out)
{
	struct tuple seen;
	struct owner o;
	__u64 writer;

	__u64 before = __sync_fetch_and_add(&s->seq, 0);
	if (before == 0 || (before & 1))
		return false; /* never written, or being written */
	__builtin_memcpy(&seen, &s->t, sizeof(seen));
	writer = s->sk;
	__builtin_memcpy(&o, &s->o, sizeof(o));
	if (__sync_fetch_and_add(&s->seq, 0) != before || !tuple_equal(&seen, t) || (sk && writer != sk))
		return false;
	__builtin_memcpy(out, &o, sizeof(*out));
	return true;
}

/*
 * Copies the owner remembered for t into out and returns true; leaves out
 * alone and returns false when there is none (or its slot was being
 * written). A non-zero sk asks for the entry that this very socket wrote.
 */
static __always_inline bool tuple_get(const struct tuple *t, __u64 sk, struct owner *out)
{
	__u32 idx = tuple_hash(t) & tuple_bucket_mask;
	struct tuple_bucket *b = bpf_map_lookup_elem(&owner_by_tuple, &idx);

	if (!b)
		return false;
#pragma unroll
	for (int i = 0; i < TUPLE_WAYS; i++)
		if (slot_get(&b->slot[i], t, sk, out))
			return true;
	return false;
}

struct listener_key {
	__u32 netns;
	__u16 port;
	__u16 pad;
};

/*
 * Who listens on a port, for connections not accepted yet. An entry is
 * replaced by the next listen() on its port and kept when its listener
 * closes: closing a listener resets the connections still in its queue
 * after the listener's own state change.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct listener_key);
	__type(value, struct owner);
} owner_by_listener SEC(".maps");

/* Thread groups that exited: tgid -> time of exit. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u64);
} exited SEC(".maps");

/*
 * The socket whose reset was just received on this CPU: tcp_reset() closes
 * it right after the tracepoint, on the same CPU (and inet_sock_set_state
 * consumes the mark on the next transition, whichever it is). Its peer has
 * already dropped the connection, so no late segment will need the owner
 * under the 4-tuple, and the insert is skipped.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} reset_received SEC(".maps");

static __always_inline void owner_from_current(struct owner *o, bool typed)
{
	__u64 id = bpf_get_current_pid_tgid();

	o->learned_ns = bpf_ktime_get_ns();
	o->cgroup = bpf_get_current_cgroup_id();
	o->pid = id >> 32;
	o->tid = (__u32)id;
	/* The leader's own thread can name itself without a task read. */
	if (!typed && o->pid == o->tid)
		bpf_get_current_comm(o->comm, sizeof(o->comm));
	else
		leader_comm(o->comm, current_task(typed), typed);
}

/*
 * The current task owns the socket: fill o (zeroed by the caller) and
 * remember it by pointer, counting a full bucket. Returns whether it was
 * remembered.
 */
static __always_inline bool remember_current(const struct sock *sk, struct owner *o, bool typed)
{
	owner_from_current(o, typed);
	if (sock_put((__u64)sk, o, false))
		return true;
	stat_inc(STAT_OWNER_FULL);
	return false;
}

static __always_inline void remember_listener(const struct sock *sk, bool typed)
{
	struct owner o = {};
	struct listener_key lk = {
		.netns = sock_netns(sk, typed),
		.port = KREAD(typed, sk, __sk_common.skc_num),
	};

	remember_current(sk, &o, typed);
	bpf_map_update_elem(&owner_by_listener, &lk, &o, BPF_ANY);
}

/* Closed by its process (orphaned): the kernel finishes the connection alone. */
static __always_inline bool sock_dead(const struct sock *sk, bool typed)
{
	return KREAD(typed, sk, __sk_common.skc_flags) & (1UL << bpf_core_enum_value(enum sock_flags, SOCK_DEAD));
}

#define RCV_SHUTDOWN 1

/*
 * Shut down for reading (shutdown(SHUT_RD), or close()): data that arrives
 * in FIN_WAIT1/2 then makes the kernel abort the connection itself
 * (TCP_ABORT_ON_DATA), through the same tcp_reset() as a received reset.
 */
static __always_inline bool rcv_shutdown(const struct sock *sk, bool typed)
{
	if (typed)
		return BPF_CORE_READ_BITFIELD(sk, sk_shutdown) & RCV_SHUTDOWN;
	return BPF_CORE_READ_BITFIELD_PROBED(sk, sk_shutdown) & RCV_SHUTDOWN;
}

/*
 * A full socket that no process holds yet: a child waiting in a listener's
 * accept queue. Every socket a process made or accepted has a struct
 * socket until it is closed, and a closed one is marked dead.
 */
static __always_inline bool unaccepted_child(const struct sock *sk, bool typed)
{
	if (KREAD(typed, sk, sk_socket))
		return false;
	return !sock_dead(sk, typed);
}

/*
 * The owner of the local end of the connection, and whether it still
 * lives (when alive is not NULL). sk may be NULL (a reset without any
 * socket), a full, timewait or request socket. A refused SYN (no socket,
 * answering a SYN) belongs to no process, whatever earlier connection had
 * the same 4-tuple.
 */
static __always_inline __u8 find_owner(const struct sock *sk, __u8 state, const struct tuple *t,
				       bool syn, struct owner *out, __u8 *alive, bool typed)
{
	__u8 src = OWNER_NONE;

	/* Only full sockets are remembered: not timewait or request ones. */
	if (sk && full_sock(state) && sock_get((__u64)sk, out)) {
		src = out->seeded ? OWNER_SEEDED : OWNER_SOCKET;
		goto found;
	}
	/*
	 * Only a connection whose socket is gone or has become a timewait
	 * socket is looked up by tuple: a live socket with the same tuple
	 * is a later connection, not the one remembered.
	 */
	if (((!sk && !syn) || state == TCP_TIME_WAIT) && tuple_get(t, 0, out)) {
		src = OWNER_TUPLE;
		goto found;
	}
	/*
	 * A closed socket that the kernel destroys and then answers the
	 * segment with (data arriving after close(): TCP_ABORT_ON_DATA) has
	 * already been forgotten by pointer; the entry its own close wrote
	 * under the tuple, and only that one, still names its owner.
	 */
	if (sk && state == TCP_CLOSE && sock_dead(sk, typed) && tuple_get(t, (__u64)sk, out)) {
		src = OWNER_TUPLE;
		goto found;
	}
	/*
	 * A request socket, or a child the application has not accepted yet,
	 * belongs to whoever listens. A reset without any socket does not: no
	 * process ever owned that connection.
	 */
	if (!sk)
		return OWNER_NONE;
	if (state == TCP_NEW_SYN_RECV && sock_get((__u64)KREAD(typed, sk, __sk_common.skc_listener), out)) {
		src = OWNER_LISTENER;
		goto found;
	}
	if (state == TCP_NEW_SYN_RECV || (full_sock(state) && unaccepted_child(sk, typed))) {
		struct listener_key lk = { .netns = t->netns, .port = t->lport };
		struct owner *o = bpf_map_lookup_elem(&owner_by_listener, &lk);

		if (o) {
			__builtin_memcpy(out, o, sizeof(*out));
			src = OWNER_LISTENER;
			goto found;
		}
	}
	return OWNER_NONE;
found:
	if (alive) {
		__u64 *gone = bpf_map_lookup_elem(&exited, &out->pid);
		*alive = !(gone && *gone > out->learned_ns);
	}
	return src;
}

/*
 * A full socket is closing (-> CLOSE). Keep its owner under the 4-tuple
 * only where a reset can still come after the socket is gone: it becomes
 * a timewait socket (an active close, from FIN_WAIT1/2 or CLOSING), or it
 * is aborted while the peer may still be sending (ESTABLISHED, CLOSE_WAIT).
 * Not for a connection that never got going (SYN_SENT, SYN_RECV), nor for a
 * passive close that completed (LAST_ACK: the peer is in TIME_WAIT and
 * sends nothing more), nor when the socket closes because it received a
 * reset (the peer has dropped it).
 */
static __always_inline bool keep_after_close(int oldstate)
{
	switch (oldstate) {
	case TCP_ESTABLISHED:
	case TCP_CLOSE_WAIT:
	case TCP_FIN_WAIT1:
	case TCP_FIN_WAIT2:
	case TCP_CLOSING:
		return true;
	}
	return false;
}

static __always_inline void remember_tuple(const struct sock *sk, struct tuple *t, bool typed)
{
	struct owner known;

	if (!sock_get((__u64)sk, &known))
		return;
	t->netns = sock_netns(sk, typed);
	tuple_put(t, &known, sk);
}

/*
 * The received-reset mark is valid only for the close that follows it on
 * this CPU: tcp_reset() runs the tracepoint and then tcp_done(), with
 * bottom halves off, so the next CLOSE transition on the CPU is that
 * socket's. Every CLOSE consumes the mark, so that it cannot outlive its
 * socket and match a later socket at the same address; other transitions
 * leave it alone (they are most of a connection's, and pay nothing).
 * Returns whether this close is the one the reset caused.
 */
static __always_inline bool closing_by_received_reset(const struct sock *sk)
{
	__u32 zero = 0;
	__u64 *mark = bpf_map_lookup_elem(&reset_received, &zero);
	bool hit = false;

	if (mark && *mark) {
		hit = *mark == (__u64)sk;
		*mark = 0;
	}
	return hit;
}

static __always_inline void mark_reset_received(const struct sock *sk)
{
	__u32 zero = 0;
	__u64 *mark = bpf_map_lookup_elem(&reset_received, &zero);

	if (mark)
		*mark = (__u64)sk;
}

/* A thread group is gone when its last thread exits. */
static __always_inline void note_exit(const struct task_struct *task, bool typed)
{
	if (KREAD(typed, task, signal, live.counter) != 0)
		return;
	__u32 tgid = KREAD(typed, task, tgid);
	__u64 now = bpf_ktime_get_ns();

	bpf_map_update_elem(&exited, &tgid, &now, BPF_ANY);
}

/* accept() returned the new socket's fd: find its sock through the fd table. */
static __always_inline const struct sock *accepted_sock(long fd)
{
	if (fd < 0)
		return NULL;

	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = NULL;
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) || !f)
		return NULL;
	struct socket *so = BPF_CORE_READ(f, private_data);
	if (!so)
		return NULL;
	struct sock *sk = BPF_CORE_READ(so, sk);
	if (!sk || BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP ||
	    BPF_CORE_READ(sk, sk_type) != SOCK_STREAM)
		return NULL;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return NULL;
	return sk;
}

/*
 * Turns a number into a read-only typed pointer (a kfunc of 6.2+; the
 * verifier turns the call into a move): loads through it are plain loads,
 * guarded like any typed program's, instead of a helper call per field.
 */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;

/*
 * accepted_sock with plain loads: the task from a typed helper, one helper
 * call for the fd table's slot (a pointer to pointers is a number to the
 * verifier), and typed casts for the file and its socket.
 */
static __always_inline const struct sock *accepted_sock_typed(long fd)
{
	if (fd < 0)
		return NULL;

	struct task_struct *task = bpf_get_current_task_btf();
	struct fdtable *fdt = task->files->fdt;
	if (!fdt || fd >= fdt->max_fds)
		return NULL;
	struct file **fds = fdt->fd;
	struct file *f = NULL;
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) || !f)
		return NULL;
	const struct file *file = bpf_rdonly_cast(f, bpf_core_type_id_kernel(struct file));
	const struct socket *so = bpf_rdonly_cast(file->private_data, bpf_core_type_id_kernel(struct socket));
	if (!so)
		return NULL;
	const struct sock *sk = so->sk;
	if (!sk || sk->sk_protocol != IPPROTO_TCP || sk->sk_type != SOCK_STREAM)
		return NULL;
	__u16 family = sk->__sk_common.skc_family;
	if (family != AF_INET && family != AF_INET6)
		return NULL;
	return sk;
}

/*
 * The owners of sockets that exist when rstwatch starts: every TCP socket in
 * every process's file table, the first process (lowest pid) holding it
 * being its owner. Owners learned since the programs were attached win.
 */
static __always_inline void seed_owner(const struct task_struct *task, struct file *f)
{
	struct socket *so = bpf_sock_from_file(f);
	if (!so)
		return;
	const struct sock *sk = so->sk;
	if (!sk || sk->sk_protocol != IPPROTO_TCP || sk->sk_type != SOCK_STREAM)
		return;
	__u16 family = sk->__sk_common.skc_family;
	if (family != AF_INET && family != AF_INET6)
		return;

	struct owner o = {
		.learned_ns = bpf_ktime_get_ns(),
		.cgroup = task->cgroups->dfl_cgrp->kn->id,
		.pid = task->tgid,
		.seeded = 1,
	};
	leader_comm(o.comm, task, true);
	if (!sock_put((__u64)sk, &o, true))
		stat_inc(STAT_OWNER_FULL);
	if (sk->__sk_common.skc_state == TCP_LISTEN) {
		struct listener_key lk = { .netns = sock_netns(sk, true), .port = sk->__sk_common.skc_num };

		bpf_map_update_elem(&owner_by_listener, &lk, &o, BPF_NOEXIST);
	}
}

#endif /* __RSTWATCH_OWNER_H__ */
