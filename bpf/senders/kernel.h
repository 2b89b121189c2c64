/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kernel types the packet-level view (senders.c) reads, trimmed to the
 * fields it uses. Like headers/vmlinux.h, every struct is marked
 * preserve_access_index: field offsets are relocated against the running
 * kernel's BTF at load time (CO-RE), these definitions give names and types,
 * never offsets. It is a separate file because senders.c reads fields of
 * sk_buff, sock and net_device that rstwatch.c does not, and the two
 * programs are compiled apart.
 */
#ifndef __RSTWATCH_SENDERS_KERNEL_H__
#define __RSTWATCH_SENDERS_KERNEL_H__

typedef unsigned char __u8;
typedef short int __s16;
typedef short unsigned int __u16;
typedef int __s32;
typedef unsigned int __u32;
typedef long long int __s64;
typedef long long unsigned int __u64;
typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __s64 s64;
typedef __u64 u64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
enum { false = 0, true = 1 };

enum bpf_map_type {
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_RINGBUF = 27,
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
	s64 counter;
} atomic64_t;

typedef struct {
	__u32 val;
} kuid_t;

struct ns_common {
	unsigned int inum;
};

struct net {
	struct ns_common ns;
};

typedef struct {
	struct net *net;
} possible_net_t;

struct sock_common {
	short unsigned int skc_family;
	volatile unsigned char skc_state;
	atomic64_t skc_cookie;
};

struct inode {
	long unsigned int i_ino;
};

struct file {
	struct inode *f_inode;
};

struct socket {
	struct file *file;
};

/* Fields past sock_common exist only in full sockets (see sk_class). */
struct sock {
	struct sock_common __sk_common;
	struct socket *sk_socket;
	kuid_t sk_uid;
	u16 sk_protocol;
	u16 sk_type;
	u8 sk_kern_sock : 1;
};

struct net_device {
	unsigned int flags;
	int ifindex;
	possible_net_t nd_net;
	char name[16];
	short unsigned int hard_header_len;
};

struct sk_buff {
	struct net_device *dev;
	struct sock *sk;
	int skb_iif;
	__be16 protocol;
	__u16 transport_header;
	__u16 network_header;
	unsigned char *head;
	unsigned char *data;
};

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
};

struct files_struct {
	struct fdtable *fdt;
};

struct task_struct {
	int pid;
	int tgid;
	struct task_struct *group_leader;
	char comm[16];
	struct files_struct *files;
};

#pragma clang attribute pop

#endif /* __RSTWATCH_SENDERS_KERNEL_H__ */
