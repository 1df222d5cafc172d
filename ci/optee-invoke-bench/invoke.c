/*
 * One OP-TEE invoke round trip, timed from Linux user space (`cargo xtask
 * bench`, row optee_invoke): opens a session to OP-TEE's invoke-tests
 * pseudo TA through /dev/tee0 and invokes a command it does not have (it
 * answers TEE_ERROR_BAD_PARAMETERS at once: no work in OP-TEE), CALLS times,
 * timed with CLOCK_MONOTONIC.  The same binary runs under spmc (FF-A) and
 * under the SPD=opteed reference (SMC ABI): only the path to OP-TEE differs.
 *
 * Freestanding (raw syscalls, no libc): Debian's cross compiler without
 * the arm64 libc headers builds it.  Prints one line:
 *   quadrant-invoke: CALLS calls NS ns ret 0xRET
 */
#include "quadrant_sys.h"
#define sys(n, a, b, c, d) sys6(n, (i64)(a), (i64)(b), (i64)(c), (i64)(d), 0, 0)

#define CALLS 2000

#define AT_FDCWD -100
#define O_RDWR 2

/* include/uapi/linux/tee.h */
#define TEE_IOC_OPEN_SESSION 0x8010a402UL /* _IOR(0xa4, 2, struct tee_ioctl_buf_data) */
#define TEE_IOC_INVOKE 0x8010a403UL       /* _IOR(0xa4, 3, ...) */
#define TEE_IOC_CLOSE_SESSION 0x8004a405UL /* _IOR(0xa4, 5, u32) */

struct buf_data { u64 ptr, len; };
struct open_arg { u8 uuid[16], clnt_uuid[16]; u32 login, cancel_id, session, ret, ret_origin, num_params; };
struct invoke_arg { u32 func, session, cancel_id, ret, ret_origin, num_params; };
struct timespec { long sec, nsec; };

/* PTA_INVOKE_TESTS_UUID d96a5b40-c3e5-21e3-8794-1002a5d5c61b */
static const u8 pta[16] = { 0xd9, 0x6a, 0x5b, 0x40, 0xc3, 0xe5, 0x21, 0xe3, 0x87, 0x94, 0x10, 0x02, 0xa5, 0xd5, 0xc6, 0x1b };

static void say(const char *s, u64 a, u64 b, u64 c)
{
	char buf[128], *p = put(buf, s);
	p = num(p, a); p = put(p, " calls ");
	p = num(p, b); p = put(p, " ns ret ");
	p = hex(p, c); *p++ = '\n';
	sys(SYS_write, 1, (long)buf, p - buf, 0);
}
static u64 now(void)
{
	struct timespec t;
	sys(SYS_clock_gettime, 1 /* CLOCK_MONOTONIC */, (long)&t, 0, 0);
	return (u64)t.sec * 1000000000UL + (u64)t.nsec;
}

void __attribute__((noreturn)) _start(void)
{
	long fd = sys(SYS_openat, AT_FDCWD, (long)"/dev/tee0", O_RDWR, 0);
	struct open_arg o = { 0 };
	struct invoke_arg a = { 0 };
	struct buf_data b;
	u64 t0, t1;
	int i;

	if (fd < 0) { say("quadrant-invoke: open failed ", 0, 0, -fd); sys(SYS_exit, 1, 0, 0, 0); }
	for (i = 0; i < 16; i++) o.uuid[i] = pta[i];
	b.ptr = (u64)&o; b.len = sizeof(o);
	if (sys(SYS_ioctl, fd, TEE_IOC_OPEN_SESSION, (long)&b, 0) || o.ret) {
		say("quadrant-invoke: open session failed ", 0, 0, o.ret);
		sys(SYS_exit, 1, 0, 0, 0);
	}
	a.func = 0xffff; /* no such command */
	a.session = o.session;
	b.ptr = (u64)&a; b.len = sizeof(a);
	t0 = now();
	for (i = 0; i < CALLS; i++) {
		a.ret = 0;
		if (sys(SYS_ioctl, fd, TEE_IOC_INVOKE, (long)&b, 0)) { say("quadrant-invoke: invoke failed ", i, 0, 0); sys(SYS_exit, 1, 0, 0, 0); }
	}
	t1 = now();
	say("quadrant-invoke: ", CALLS, t1 - t0, a.ret);
	sys(SYS_ioctl, fd, TEE_IOC_CLOSE_SESSION, (long)&o.session, 0);
	sys(SYS_exit, 0, 0, 0, 0);
	__builtin_unreachable();
}
