/*
 * What Quadrant's freestanding arm64 Linux test programs share (built by
 * xtask with Debian's cross gcc, -nostdlib, no arm64 libc): fixed-width
 * types, the syscall numbers they use (include/uapi/asm-generic/unistd.h,
 * the arm64 table), the raw syscall (the AArch64 Linux ABI: number in
 * x8, arguments in x0..x5, `svc #0`, result in x0) and the few helpers
 * that build an output line in a buffer, so each line goes out in one
 * write(2) and cannot be split by another process's output.
 */
#ifndef QUADRANT_SYS_H
#define QUADRANT_SYS_H

typedef unsigned long u64;
typedef long i64;
typedef long s64;
typedef unsigned int u32;
typedef int s32;
typedef unsigned char u8;

#define SYS_ioctl 29
#define SYS_openat 56
#define SYS_close 57
#define SYS_pipe2 59
#define SYS_read 63
#define SYS_write 64
#define SYS_exit 93
#define SYS_exit_group 94
#define SYS_clock_gettime 113
#define SYS_sched_setaffinity 122
#define SYS_sched_getaffinity 123
#define SYS_sched_yield 124
#define SYS_rt_sigaction 134
#define SYS_rt_sigreturn 139
#define SYS_getrusage 165
#define SYS_prctl 167
#define SYS_getpid 172
#define SYS_munmap 215
#define SYS_clone 220
#define SYS_mmap 222
#define SYS_perf_event_open 241
#define SYS_wait4 260

static inline i64 sys6(i64 n, i64 a, i64 b, i64 c, i64 d, i64 e, i64 f)
{
	register i64 x8 __asm__("x8") = n;
	register i64 x0 __asm__("x0") = a;
	register i64 x1 __asm__("x1") = b;
	register i64 x2 __asm__("x2") = c;
	register i64 x3 __asm__("x3") = d;
	register i64 x4 __asm__("x4") = e;
	register i64 x5 __asm__("x5") = f;
	__asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
	return x0;
}

/* Copies the string `s` to `p`; returns the end. */
static inline char *put(char *p, const char *s)
{
	while (*s)
		*p++ = *s++;
	return p;
}

/* Writes `v` in `base` (2..16) to `p`, no prefix; returns the end. */
static inline char *num_base(char *p, u64 v, unsigned base)
{
	char t[64];
	int n = 0;
	do { t[n++] = "0123456789abcdef"[v % base]; v /= base; } while (v);
	while (n)
		*p++ = t[--n];
	return p;
}

static inline char *num(char *p, u64 v) { return num_base(p, v, 10); }

/* A signed decimal. */
static inline char *snum(char *p, s64 v)
{
	if (v < 0) {
		*p++ = '-';
		return num(p, -(u64)v);
	}
	return num(p, (u64)v);
}

/* `0x` and `v` in hexadecimal. */
static inline char *hex(char *p, u64 v) { return num_base(put(p, "0x"), v, 16); }

#endif
