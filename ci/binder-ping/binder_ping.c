/*
 * binder_ping: one binder transaction round trip between two processes
 * (issue B2 item 4, test android_bits).
 *
 * The parent opens /dev/binderfs/binder (else /dev/binder), maps its receive buffer, becomes the
 * context manager (handle 0 for everyone else) and enters the looper; it
 * forks.  The child opens the device itself (its own binder_proc), maps it,
 * and sends BC_TRANSACTION to handle 0 with PAYLOAD.  The parent gets
 * BR_TRANSACTION, checks the code, the sender and the data, and answers
 * BC_REPLY with the payload's letters case-swapped (plus BC_FREE_BUFFER for
 * the request).  The child gets BR_REPLY and checks the data.  The parent
 * waits for the child and prints
 *   binder_ping: round trip ok
 * or one `binder_ping: FAIL <reason>` line (and exits 1).
 *
 * ABI: include/uapi/linux/android/binder.h (ioctl and command numbers,
 * struct layouts for 64-bit binder_uintptr_t/binder_size_t, protocol
 * version 8), written out by hand below.  Freestanding (raw syscalls, no
 * libc): Debian's cross compiler without the arm64 libc headers builds it.
 */
#include "quadrant_sys.h"

#define AT_FDCWD -100
#define O_RDWR 2
#define O_CLOEXEC 02000000
#define PROT_READ 1
#define MAP_PRIVATE 2
#define SIGCHLD 17

#define sys(n, a, b, c, d) sys6(n, a, b, c, d, 0, 0)

/*
 * The kernel's _IOC encoding (asm-generic/ioctl.h): dir << 30 | size << 16 |
 * type << 8 | nr, dir 1 = write (user to kernel), 2 = read.  Binder's
 * BC_* commands are _IOW('c', nr, type) and BR_* returns _IOR('r', nr, type):
 * the size field tells how many bytes of payload follow each command word.
 */
#define IOC(dir, type, nr, size) (((u32)(dir) << 30) | ((u32)(size) << 16) | ((u32)(type) << 8) | (u32)(nr))
#define IOC_SIZE(cmd) (((cmd) >> 16) & 0x3fff)

/* struct binder_write_read: 6 x 64-bit, 48 bytes. */
struct bwr {
	u64 write_size, write_consumed, write_buffer;
	u64 read_size, read_consumed, read_buffer;
};

/*
 * struct binder_transaction_data, 64 bytes: target (handle or ptr, 8),
 * cookie (8), code, flags, sender_pid, sender_euid (4 each), data_size,
 * offsets_size (8 each), data.ptr.buffer, data.ptr.offsets (8 each).
 */
struct txn {
	u64 target;
	u64 cookie;
	u32 code, flags;
	s32 sender_pid;
	u32 sender_euid;
	u64 data_size, offsets_size;
	u64 buffer, offsets;
};

#define BINDER_WRITE_READ IOC(3, 'b', 1, sizeof(struct bwr))
#define BINDER_SET_CONTEXT_MGR IOC(1, 'b', 7, 4)
#define BINDER_VERSION IOC(3, 'b', 9, 4)
#define BINDER_PROTOCOL_VERSION 8 /* 64-bit binder_uintptr_t */

#define BC_TRANSACTION IOC(1, 'c', 0, sizeof(struct txn))
#define BC_REPLY IOC(1, 'c', 1, sizeof(struct txn))
#define BC_FREE_BUFFER IOC(1, 'c', 3, 8)
#define BC_ENTER_LOOPER IOC(0, 'c', 12, 0)

#define BR_ERROR IOC(2, 'r', 0, 4)
#define BR_TRANSACTION IOC(2, 'r', 2, sizeof(struct txn))
#define BR_REPLY IOC(2, 'r', 3, sizeof(struct txn))
#define BR_DEAD_REPLY IOC(0, 'r', 5, 0)
#define BR_TRANSACTION_COMPLETE IOC(0, 'r', 6, 0)
#define BR_NOOP IOC(0, 'r', 12, 0)
#define BR_FAILED_REPLY IOC(0, 'r', 17, 0)

/*
 * The device: binderfs's (mount -t binder binder /dev/binderfs) when it is
 * mounted, else the misc device binder_linux registers from its `devices=`
 * parameter (Debian 7.3's kernel: CONFIG_ANDROID_BINDERFS is not set).
 */
#define BINDERFS_DEV "/dev/binderfs/binder"
#define MISC_DEV "/dev/binder"
#define ENOENT 2

#define MAP_SIZE (128 * 1024)
#define PING_CODE 0x50494e47u /* "PING" */
static const char PAYLOAD[] = "binder ping from the child";
#define PAYLOAD_LEN (sizeof(PAYLOAD) - 1)

/* gcc may call these for struct copies even freestanding. */
void *memset(void *d, int c, unsigned long n)
{
	u8 *p = d;
	while (n--)
		*p++ = (u8)c;
	return d;
}
void *memcpy(void *d, const void *s, unsigned long n)
{
	u8 *p = d;
	const u8 *q = s;
	while (n--)
		*p++ = *q++;
	return d;
}

static unsigned long len(const char *s) { unsigned long n = 0; while (s[n]) n++; return n; }
static void say(const char *s) { sys(SYS_write, 1, (s64)s, (s64)len(s), 0); }
static void __attribute__((noreturn)) die(const char *who, const char *why, s64 v)
{
	char buf[160], *p = put(buf, "binder_ping: FAIL ");
	p = put(p, who);
	p = put(p, ": ");
	p = put(p, why);
	p = put(p, " (");
	p = snum(p, v);
	p = put(p, ")\n");
	sys(SYS_write, 1, (s64)buf, p - buf, 0);
	sys(SYS_exit_group, 1, 0, 0, 0);
	__builtin_unreachable();
}

/* The reply's transformation: ASCII letters case-swapped. */
static u8 swap_case(u8 c)
{
	return ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ? c ^ 0x20 : c;
}

/* Opens the binder device and maps its receive buffer (read-only, as binder_mmap requires). */
static s64 open_binder(const char *who)
{
	s64 fd = sys(SYS_openat, AT_FDCWD, (s64)BINDERFS_DEV, O_RDWR | O_CLOEXEC, 0);
	int fd_is_binderfs = fd >= 0;
	if (fd == -ENOENT)
		fd = sys(SYS_openat, AT_FDCWD, (s64)MISC_DEV, O_RDWR | O_CLOEXEC, 0);
	if (fd < 0)
		die(who, "open " BINDERFS_DEV " or " MISC_DEV, fd);
	if (who[0] == 'm')
		say(fd_is_binderfs ? "binder_ping: device " BINDERFS_DEV "\n" : "binder_ping: device " MISC_DEV "\n");
	s32 version = -1;
	s64 r = sys(SYS_ioctl, fd, BINDER_VERSION, (s64)&version, 0);
	if (r < 0 || version != BINDER_PROTOCOL_VERSION)
		die(who, "BINDER_VERSION is not 8", r < 0 ? r : version);
	s64 m = sys6(SYS_mmap, 0, MAP_SIZE, PROT_READ, MAP_PRIVATE, fd, 0);
	if (m < 0 && m > -4096)
		die(who, "mmap", m);
	return fd;
}

/* One BINDER_WRITE_READ: writes `wlen` bytes of commands, reads into `rbuf`; returns the bytes read. */
static u64 write_read(const char *who, s64 fd, const void *w, u64 wlen, void *rbuf, u64 rlen)
{
	struct bwr b;
	b.write_size = wlen;
	b.write_consumed = 0;
	b.write_buffer = (u64)w;
	b.read_size = rlen;
	b.read_consumed = 0;
	b.read_buffer = (u64)rbuf;
	s64 r;
	do
		r = sys(SYS_ioctl, fd, BINDER_WRITE_READ, (s64)&b, 0);
	while (r == -4); /* EINTR */
	if (r < 0)
		die(who, "BINDER_WRITE_READ", r);
	if (b.write_consumed != wlen)
		die(who, "commands not all consumed", (s64)b.write_consumed);
	return b.read_consumed;
}

/*
 * Reads return commands until one of `want` (a BR_* code) arrives, copying
 * its transaction data into *t when it carries one.  Fails on BR_ERROR,
 * BR_DEAD_REPLY, BR_FAILED_REPLY; skips the others (BR_NOOP, ...) by the
 * size their code encodes.
 */
static void wait_for(const char *who, s64 fd, u32 want, struct txn *t)
{
	u32 rbuf[64];
	for (;;) {
		u64 n = write_read(who, fd, 0, 0, rbuf, sizeof(rbuf));
		u8 *p = (u8 *)rbuf, *end = p + n;
		while (p + 4 <= end) {
			u32 cmd = *(u32 *)p;
			u32 size = IOC_SIZE(cmd);
			p += 4;
			if (p + size > end)
				die(who, "truncated return command", cmd);
			if (cmd == BR_ERROR)
				die(who, "BR_ERROR", *(s32 *)p);
			if (cmd == BR_DEAD_REPLY || cmd == BR_FAILED_REPLY)
				die(who, cmd == BR_DEAD_REPLY ? "BR_DEAD_REPLY" : "BR_FAILED_REPLY", cmd);
			if (cmd == want) {
				if (t && size == sizeof(*t))
					memcpy(t, p, sizeof(*t));
				return;
			}
			p += size;
		}
	}
}

/* Command buffers: a 32-bit code, then its payload, packed (binder reads them unaligned-safe). */
struct free_and_reply {
	u32 free_cmd;
	u64 free_ptr;
	u32 reply_cmd;
	struct txn reply;
} __attribute__((packed));
struct send {
	u32 cmd;
	struct txn t;
} __attribute__((packed));
struct free_cmd {
	u32 cmd;
	u64 ptr;
} __attribute__((packed));

static void child(void)
{
	const char *who = "child";
	s64 fd = open_binder(who);
	struct send s;
	memset(&s, 0, sizeof(s));
	s.cmd = BC_TRANSACTION;
	s.t.target = 0; /* handle 0: the context manager */
	s.t.code = PING_CODE;
	s.t.data_size = PAYLOAD_LEN;
	s.t.buffer = (u64)PAYLOAD;
	write_read(who, fd, &s, sizeof(s), 0, 0);
	struct txn r;
	/* BR_TRANSACTION_COMPLETE first (skipped), then BR_REPLY. */
	wait_for(who, fd, BR_REPLY, &r);
	if (r.data_size != PAYLOAD_LEN)
		die(who, "reply size", (s64)r.data_size);
	const u8 *d = (const u8 *)r.buffer;
	for (u64 i = 0; i < PAYLOAD_LEN; i++)
		if (d[i] != swap_case((u8)PAYLOAD[i]))
			die(who, "reply data differs at byte", (s64)i);
	struct free_cmd f = { BC_FREE_BUFFER, r.buffer };
	write_read(who, fd, &f, sizeof(f), 0, 0);
	say("binder_ping: child got BR_REPLY with the payload case-swapped\n");
	sys(SYS_exit_group, 0, 0, 0, 0);
}

void __attribute__((noreturn)) _start(void)
{
	const char *who = "manager";
	s64 fd = open_binder(who);
	s64 r = sys(SYS_ioctl, fd, BINDER_SET_CONTEXT_MGR, 0, 0);
	if (r < 0)
		die(who, "BINDER_SET_CONTEXT_MGR", r);
	u32 enter = BC_ENTER_LOOPER;
	write_read(who, fd, &enter, sizeof(enter), 0, 0);

	s64 pid = sys(SYS_clone, SIGCHLD, 0, 0, 0); /* fork() */
	if (pid < 0)
		die(who, "fork", pid);
	if (pid == 0)
		child();

	struct txn t;
	wait_for(who, fd, BR_TRANSACTION, &t);
	if (t.code != PING_CODE)
		die(who, "transaction code", t.code);
	if (t.sender_pid != (s32)pid)
		die(who, "sender pid is not the child's", t.sender_pid);
	if (t.data_size != PAYLOAD_LEN)
		die(who, "request size", (s64)t.data_size);
	static u8 answer[PAYLOAD_LEN];
	const u8 *req = (const u8 *)t.buffer;
	for (u64 i = 0; i < PAYLOAD_LEN; i++) {
		if (req[i] != (u8)PAYLOAD[i])
			die(who, "request data differs at byte", (s64)i);
		answer[i] = swap_case(req[i]);
	}
	say("binder_ping: manager got BR_TRANSACTION from the child\n");
	struct free_and_reply fr;
	memset(&fr, 0, sizeof(fr));
	fr.free_cmd = BC_FREE_BUFFER;
	fr.free_ptr = t.buffer;
	fr.reply_cmd = BC_REPLY;
	fr.reply.code = PING_CODE;
	fr.reply.data_size = PAYLOAD_LEN;
	fr.reply.buffer = (u64)answer;
	write_read(who, fd, &fr, sizeof(fr), 0, 0);
	/* BR_TRANSACTION_COMPLETE: the kernel took the reply. */
	wait_for(who, fd, BR_TRANSACTION_COMPLETE, 0);

	s32 status = -1;
	r = sys(SYS_wait4, pid, (s64)&status, 0, 0);
	if (r != pid)
		die(who, "wait4", r);
	/* The exit status: bits 15..8; a signal in bits 6..0. */
	if ((status & 0x7f) != 0)
		die(who, "the child died of signal", status & 0x7f);
	if (((status >> 8) & 0xff) != 0)
		die(who, "the child failed, status", (status >> 8) & 0xff);
	say("binder_ping: round trip ok\n");
	sys(SYS_exit_group, 0, 0, 0, 0);
	__builtin_unreachable();
}
