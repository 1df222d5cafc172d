/*
 * linux_guest_features (issue B4): Linux user space checks that a guest
 * kernel has working SVE, MTE and PMUv3.  Runs as root from the test
 * initramfs, first on bare QEMU, then in a guest of ns-hyp.  Prints one
 * line per check
 *   guest_features <check>: pass|fail
 * (with `guest_features info: ...` lines for details) and finally
 *   guest_features done: N pass, M fail
 *
 * Freestanding (raw syscalls, no libc): Debian's cross compiler builds it
 * without the arm64 libc headers (-static -nostdlib -ffreestanding, like
 * ci/optee-invoke-bench).  Built with -march=armv8.5-a+sve+memtag, but no
 * SVE or MTE instruction runs unless the kernel advertises the feature in
 * the aux vector (AT_HWCAP/AT_HWCAP2), so a kernel without them gets `fail`
 * lines, not SIGILL; -fno-tree-vectorize keeps the compiler's own code
 * scalar for the same reason.
 *
 * ABI references (numbers only):
 *   syscalls: include/uapi/asm-generic/unistd.h
 *   SVE: Documentation/arch/arm64/sve.rst (HWCAP_SVE, PR_SVE_GET/SET_VL,
 *        the syscall rule: Z bits [127:0] kept, the rest of Z and all of
 *        P0..P15 and FFR zero on return)
 *   MTE: Documentation/arch/arm64/memory-tagging-extension.rst
 *        (PROT_MTE, PR_SET_TAGGED_ADDR_CTRL, SEGV_MTESERR/SEGV_MTEAERR)
 *   instructions: Arm ARM DDI0487 (RDVL, WHILELO, LD1W/ST1W, LDR/STR
 *        (vector, predicate), WRFFR/RDFFR, IRG, STG, LDG)
 *   perf: include/uapi/linux/perf_event.h
 */
#include "quadrant_sys.h"
#define sys(n, a, b, c) sys6(n, (i64)(a), (i64)(b), (i64)(c), 0, 0, 0)

/* Aux vector keys and bits (include/uapi/linux/auxvec.h, arch/arm64/include/uapi/asm/hwcap.h). */
#define AT_HWCAP 16
#define AT_HWCAP2 26
#define HWCAP_SVE (1UL << 22)
#define HWCAP2_MTE (1UL << 18)

/* prctl (include/uapi/linux/prctl.h). */
#define PR_SVE_SET_VL 50
#define PR_SVE_GET_VL 51
#define PR_SVE_VL_LEN_MASK 0xffff
#define PR_SET_TAGGED_ADDR_CTRL 55
#define PR_GET_TAGGED_ADDR_CTRL 56
#define PR_TAGGED_ADDR_ENABLE (1UL << 0)
#define PR_MTE_TCF_SYNC (1UL << 1)
#define PR_MTE_TCF_ASYNC (1UL << 2)
#define PR_MTE_TAG_SHIFT 3

/* mmap (include/uapi/asm-generic/mman-common.h, arch/arm64/include/uapi/asm/mman.h). */
#define PROT_READ 1
#define PROT_WRITE 2
#define PROT_MTE 0x20
#define MAP_PRIVATE 2
#define MAP_ANONYMOUS 0x20

/* Signals (include/uapi/asm-generic/signal.h, siginfo.h; arm64 has SA_RESTORER). */
#define SIGSEGV 11
#define SIGCHLD 17
#define SA_SIGINFO 4
#define SA_RESTORER 0x04000000UL
#define SEGV_MTEAERR 8
#define SEGV_MTESERR 9

/* ---- output ---- */
static u32 npass, nfail;

static u64 slen(const char *s) { u64 n = 0; while (s[n]) n++; return n; }
static void emit(char *buf, char *end) { *end++ = '\n'; sys(SYS_write, 1, buf, end - buf); }

/* `guest_features info: <what> <v>` */
static void info(const char *what, u64 v, int as_hex)
{
	char b[200], *p = put(b, "guest_features info: ");
	p = put(p, what);
	*p++ = ' ';
	p = as_hex ? hex(p, v) : num(p, v);
	emit(b, p);
}
static void verdict(const char *check, int ok)
{
	char b[120], *p = put(b, "guest_features ");
	p = put(p, check);
	p = put(p, ok ? ": pass" : ": fail");
	emit(b, p);
	if (ok) npass++; else nfail++;
}
static void __attribute__((noreturn)) quit(int code)
{
	for (;;) sys(SYS_exit_group, code, 0, 0);
}
static void fill(void *d, int c, u64 n) { u8 *p = d; while (n--) *p++ = (u8)c; }
static int same(const void *a, const void *b, u64 n)
{
	const u8 *x = a, *y = b;
	for (u64 i = 0; i < n; i++) if (x[i] != y[i]) return 0;
	return 1;
}

static u64 hwcap, hwcap2;

/* ---- counter (Linux lets EL0 read CNTVCT_EL0 and CNTFRQ_EL0) ---- */
static u64 cntvct(void) { u64 v; __asm__ volatile("isb; mrs %0, cntvct_el0" : "=r"(v)); return v; }
static u64 cntfrq(void) { u64 v; __asm__ volatile("mrs %0, cntfrq_el0" : "=r"(v)); return v; }

/* ---- processes ---- */
static i64 fork(void) { return sys6(SYS_clone, SIGCHLD, 0, 0, 0, 0, 0); }
/* The child's exit code, or 0x100 + signal if a signal killed it. */
static int wait_child(i64 pid)
{
	int st = 0;
	if (sys6(SYS_wait4, pid, (i64)&st, 0, 0, 0, 0) != pid) return 0x200;
	if ((st & 0x7f) == 0) return (st >> 8) & 0xff;
	return 0x100 | (st & 0x7f);
}
static void pin_to(int cpu)
{
	u64 mask = 1UL << cpu;
	sys(SYS_sched_setaffinity, 0, sizeof(mask), &mask);
}
/* struct rusage: two timevals, then 14 longs; ru_nivcsw is the last. */
static u64 nivcsw(void)
{
	i64 ru[18];
	fill(ru, 0, sizeof(ru));
	sys(SYS_getrusage, 0 /* RUSAGE_SELF */, ru, 0);
	return ru[17];
}
static int nr_cpus(void)
{
	u64 mask[16];
	fill(mask, 0, sizeof(mask));
	i64 n = sys(SYS_sched_getaffinity, 0, sizeof(mask), mask);
	int c = 0;
	for (i64 i = 0; i < n / 8; i++) c += __builtin_popcountl(mask[i]);
	return c;
}

/* ---- /proc/cpuinfo ---- */
static char cpuinfo[32768];

/* Whether the first `Features` line of /proc/cpuinfo has `word` as a whole word. */
static int cpuinfo_has(const char *word)
{
	u64 wl = slen(word);
	char *p = cpuinfo;
	while (*p) {
		if (same(p, "Features", 8)) {
			while (*p && *p != ':' && *p != '\n') p++;
			if (*p == ':') p++;
			while (*p && *p != '\n') {
				while (*p == ' ' || *p == '\t') p++;
				char *w = p;
				while (*p && *p != ' ' && *p != '\t' && *p != '\n') p++;
				if ((u64)(p - w) == wl && same(w, word, wl)) return 1;
			}
			return 0;
		}
		while (*p && *p != '\n') p++;
		if (*p) p++;
	}
	return 0;
}

static void check_cpuinfo(void)
{
	i64 fd = sys6(SYS_openat, -100 /* AT_FDCWD */, (i64)"/proc/cpuinfo", 0, 0, 0, 0);
	u64 got = 0;
	if (fd >= 0) {
		for (;;) {
			i64 n = sys(SYS_read, fd, cpuinfo + got, sizeof(cpuinfo) - 1 - got);
			if (n <= 0) break;
			got += n;
		}
		sys(SYS_close, fd, 0, 0);
	}
	cpuinfo[got] = 0;
	verdict("cpuinfo_sve", cpuinfo_has("sve"));
	verdict("cpuinfo_mte", cpuinfo_has("mte"));
}

/* ================================ SVE ================================ */

/* RDVL Xd, #1: the current vector length in bytes (DDI0487, RDVL). */
static u64 rdvl(void) { u64 v; __asm__ volatile("rdvl %0, #1" : "=r"(v)); return v; }

/*
 * c[i] = a[i] + b[i] for i < n, a predicated loop (WHILELO makes the
 * governing predicate; the last pass runs with the tail lanes inactive, so
 * nothing past c[n-1] is written).
 */
static void sve_add(const u32 *a, const u32 *b, u32 *c, u64 n)
{
	u64 i = 0;
	__asm__ volatile(
		"whilelo p0.s, %[i], %[n]\n"
		"1:\n"
		"ld1w {z0.s}, p0/z, [%[a], %[i], lsl #2]\n"
		"ld1w {z1.s}, p0/z, [%[b], %[i], lsl #2]\n"
		"add z0.s, z0.s, z1.s\n"
		"st1w {z0.s}, p0, [%[c], %[i], lsl #2]\n"
		"incw %[i]\n"
		"whilelo p0.s, %[i], %[n]\n"
		"b.first 1b\n"
		: [i] "+r"(i)
		: [a] "r"(a), [b] "r"(b), [c] "r"(c), [n] "r"(n)
		: "v0", "v1", "p0", "cc", "memory");
}

#define ADD_N 1003 /* not a multiple of any vector length */
static u32 add_a[ADD_N], add_b[ADD_N], add_c[ADD_N + 64];

/* The vector sum equals the scalar one, and the word after the end is untouched. */
static int add_check(u64 seed)
{
	u64 x = seed;
	for (int i = 0; i < ADD_N; i++) {
		x ^= x << 13; x ^= x >> 7; x ^= x << 17;
		add_a[i] = (u32)x;
		add_b[i] = (u32)(x >> 32);
	}
	for (int i = 0; i < ADD_N + 64; i++) add_c[i] = 0xdeadbeef;
	sve_add(add_a, add_b, add_c, ADD_N);
	for (int i = 0; i < ADD_N; i++)
		if (add_c[i] != (u32)(add_a[i] + add_b[i])) { info("sve_add: first wrong element", i, 0); return 0; }
	for (int i = ADD_N; i < ADD_N + 64; i++)
		if (add_c[i] != 0xdeadbeef) { info("sve_add: written past the end at", i, 0); return 0; }
	return 1;
}

/*
 * u64 sve_hold(zin, pin, zout, pout, deadline, yields)
 * Loads Z0..Z31 from zin, P0..P15 from pin and FFR from pin + 16 predicate
 * lengths (LDR (vector/predicate), MUL VL), then makes `yields`
 * sched_yield calls, then spins reading CNTVCT_EL0 (no syscalls, no memory
 * access) until it reaches `deadline`, then stores every register back.
 * Returns the longest gap between two counter reads of the spin (time the
 * thread did not run: preempted by Linux, or its vCPU by the hypervisor).
 * D8..D15 (the low halves of Z8..Z15) are callee-saved in AAPCS64, so they
 * are kept on the stack.
 */
__asm__(
	".text\n"
	".p2align 2\n"
	".type sve_hold, %function\n"
	"sve_hold:\n"
	"	stp d8, d9, [sp, #-64]!\n"
	"	stp d10, d11, [sp, #16]\n"
	"	stp d12, d13, [sp, #32]\n"
	"	stp d14, d15, [sp, #48]\n"
	"	ldr p0, [x1, #16, mul vl]\n"
	"	wrffr p0.b\n"
	"	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n"
	"	ldr p\\n, [x1, #\\n, mul vl]\n"
	"	.endr\n"
	"	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
	"	ldr z\\n, [x0, #\\n, mul vl]\n"
	"	.endr\n"
	"1:	cbz x5, 2f\n"
	"	mov x8, #124\n" /* sched_yield: the kernel keeps x1..x7 */
	"	svc #0\n"
	"	sub x5, x5, #1\n"
	"	b 1b\n"
	"2:	mov x7, #0\n"
	"	isb\n"
	"	mrs x9, cntvct_el0\n"
	"3:	isb\n"
	"	mrs x10, cntvct_el0\n"
	"	sub x11, x10, x9\n"
	"	cmp x11, x7\n"
	"	csel x7, x11, x7, hi\n"
	"	mov x9, x10\n"
	"	cmp x10, x4\n"
	"	b.lo 3b\n"
	"	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
	"	str z\\n, [x2, #\\n, mul vl]\n"
	"	.endr\n"
	"	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n"
	"	str p\\n, [x3, #\\n, mul vl]\n"
	"	.endr\n"
	"	rdffr p0.b\n"
	"	str p0, [x3, #16, mul vl]\n"
	"	ldp d10, d11, [sp, #16]\n"
	"	ldp d12, d13, [sp, #32]\n"
	"	ldp d14, d15, [sp, #48]\n"
	"	ldp d8, d9, [sp], #64\n"
	"	mov x0, x7\n"
	"	ret\n"
	".size sve_hold, .-sve_hold\n");
u64 sve_hold(const void *zin, const void *pin, void *zout, void *pout, u64 deadline, u64 yields);

#define VL_MAX 256 /* bytes: SVE's architectural maximum, 2048 bits */
static u8 zin[32 * VL_MAX], zout[32 * VL_MAX];
static u8 pin[17 * VL_MAX / 8], pout[17 * VL_MAX / 8];

/*
 * One process's half of a register check: its own pattern in every Z, P
 * and FFR register (FFR: a prefix of true bits, as first-fault loads leave
 * it), held across `yields` sched_yield calls or a `spin_ms` spin while
 * another process does the same; exits 0 if what comes back is right:
 * after a spin, everything; after syscalls, Z bits [127:0] and zero
 * elsewhere (sve.rst, "System call behaviour").
 */
static void __attribute__((noreturn)) hold_child(int who, int cpu, int must_switch, u64 start, u64 spin_ms, u64 yields, const char *check)
{
	u64 vl = rdvl(), pl = vl / 8;
	u64 x = 0x9e3779b97f4a7c15UL * (u64)(who + 1);
	pin_to(cpu);
	for (u64 i = 0; i < 32 * vl; i++) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; zin[i] = (u8)(x >> 24); }
	for (u64 i = 0; i < 16 * pl; i++) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; pin[i] = (u8)(x >> 24); }
	u64 ffr_bits = 1 + (x >> 32) % (8 * pl);
	fill(pin + 16 * pl, 0, pl);
	for (u64 b = 0; b < ffr_bits; b++) pin[16 * pl + b / 8] |= (u8)(1 << (b % 8));
	/* Both processes begin together, so each runs while the other holds its registers. */
	while (cntvct() < start) sys(SYS_sched_yield, 0, 0, 0);
	/*
	 * Sharing a CPU, a spin goes on (up to 8 rounds, registers reloaded and
	 * checked each round) until Linux has switched this process out once:
	 * on a loaded host the other process may reach its spin only after
	 * this one's first round ended, and a round that nobody interrupted
	 * proves nothing.
	 */
	u64 switches = 0, gap = 0;
	int ok = 1;
	for (int round = 0; round < (must_switch ? 8 : 1) && switches == 0; round++) {
		fill(zout, 0x55, sizeof(zout));
		fill(pout, 0x55, sizeof(pout));
		u64 before = nivcsw();
		u64 deadline = spin_ms ? cntvct() + cntfrq() * spin_ms / 1000 : 0;
		u64 g = sve_hold(zin, pin, zout, pout, deadline, yields);
		switches += nivcsw() - before;
		if (g > gap) gap = g;
		if (yields) {
			for (u64 r = 0; r < 32; r++)
				for (u64 i = 0; i < vl; i++)
					if (zout[r * vl + i] != (i < 16 ? zin[r * vl + i] : 0)) ok = 0;
			for (u64 i = 0; i < 17 * pl; i++)
				if (pout[i]) ok = 0;
		} else if (!(same(zin, zout, 32 * vl) && same(pin, pout, 17 * pl))) {
			ok = 0;
		}
	}
	char b[200], *p = put(b, "guest_features info: ");
	p = put(p, check);
	p = put(p, " process ");
	p = num(p, who);
	p = put(p, " on cpu ");
	p = num(p, cpu);
	p = put(p, ": registers ");
	p = put(p, ok ? "as expected" : "WRONG");
	p = put(p, ", involuntary switches ");
	p = num(p, switches);
	p = put(p, ", longest stall ");
	p = num(p, gap * 1000000 / cntfrq());
	p = put(p, " us");
	emit(b, p);
	quit(!ok ? 1 : (must_switch && switches == 0) ? 2 : 0);
}

/*
 * Two processes at once, each checking its own registers (hold_child);
 * `cpus`: both on CPU 0 (Linux switches between them) or one on each CPU
 * (a hypervisor running both vCPUs on one physical CPU switches them).
 * Sharing CPU 0, each must have been switched out at least once while it
 * held them (exit 2 otherwise): the check proves nothing if not.
 */
static void check_hold(const char *check, int cpus, u64 spin_ms, u64 yields)
{
	i64 pid[2];
	u64 start = cntvct() + cntfrq() / 5; /* 200 ms from now, after both forks */
	for (int k = 0; k < 2; k++) {
		pid[k] = fork();
		if (pid[k] == 0) hold_child(k, cpus == 2 ? k : 0, cpus == 1, start, spin_ms, yields, check);
	}
	int ok = 1;
	for (int k = 0; k < 2; k++) {
		int st = pid[k] > 0 ? wait_child(pid[k]) : 0x300;
		if (st != 0) { ok = 0; info(st == 2 ? "not preempted while spinning, exit" : "register check process exit", st, 0); }
	}
	verdict(check, ok);
}

static void check_sve(void)
{
	if (!(hwcap & HWCAP_SVE)) {
		info("no HWCAP_SVE in AT_HWCAP", hwcap, 1);
		verdict("sve_vl", 0);
		verdict("sve_add", 0);
		verdict("sve_set_vl", 0);
		verdict("sve_regs_preempt_1cpu", 0);
		verdict("sve_regs_preempt_2cpu", 0);
		verdict("sve_regs_syscall_1cpu", 0);
		return;
	}
	/* PR_SVE_GET_VL: the thread's VL in the low 16 bits (sve.rst §6). */
	i64 got = sys(SYS_prctl, PR_SVE_GET_VL, 0, 0);
	u64 vl = rdvl();
	info("sve: vector length (bytes)", vl, 0);
	verdict("sve_vl", got >= 0 && (u64)(got & PR_SVE_VL_LEN_MASK) == vl && vl >= 16 && vl <= VL_MAX && vl % 16 == 0);
	verdict("sve_add", add_check(1));
	/* PR_SVE_SET_VL to the minimum (16 bytes): RDVL follows, the add still works; then back. */
	i64 set = sys(SYS_prctl, PR_SVE_SET_VL, 16, 0);
	u64 small = rdvl();
	int add_small = add_check(2);
	i64 back = sys(SYS_prctl, PR_SVE_SET_VL, vl, 0);
	info("sve: after PR_SVE_SET_VL 16, RDVL", small, 0);
	verdict("sve_set_vl", set >= 0 && small == 16 && add_small && back >= 0 && rdvl() == vl);
	check_hold("sve_regs_preempt_1cpu", 1, 400, 0);
	if (nr_cpus() >= 2) check_hold("sve_regs_preempt_2cpu", 2, 400, 0);
	else { info("sve_regs_preempt_2cpu: CPUs", nr_cpus(), 0); verdict("sve_regs_preempt_2cpu", 0); }
	check_hold("sve_regs_syscall_1cpu", 1, 0, 500);
}

/* ================================ MTE ================================ */

/* Sets this thread's tagged-address control: tag checks `tcf`, IRG may pick any tag but 0. */
static i64 mte_mode(u64 tcf)
{
	return sys(SYS_prctl, PR_SET_TAGGED_ADDR_CTRL, PR_TAGGED_ADDR_ENABLE | tcf | (0xfffeUL << PR_MTE_TAG_SHIFT), 0);
}
static u64 tag_of(u64 p) { return (p >> 56) & 0xf; }
static u64 with_tag(u64 p, u64 t) { return (p & ~(0xfUL << 56)) | (t << 56); }
/* IRG: a random tag from the include mask (GCR_EL1, set from the prctl) into the pointer. */
static u64 irg(u64 p) { u64 t; __asm__ volatile("irg %0, %1" : "=r"(t) : "r"(p)); return t; }
/* STG: the pointer's tag becomes the allocation tag of its 16-byte granule. */
static void stg(u64 p) { __asm__ volatile("stg %0, [%0]" : : "r"(p) : "memory"); }
/* LDG: the granule's allocation tag, merged into the pointer. */
static u64 ldg(u64 p) { __asm__ volatile("ldg %0, [%0]" : "+r"(p) : : "memory"); return p; }

/* The write end of the pipe a fault child reports on (each child has its own). */
static int report_fd;

/* SIGSEGV handler of the fault children: sends signal, si_code and si_addr up the pipe, exits. */
static void on_segv(int sig, void *si, void *uc)
{
	(void)uc;
	u64 msg[3] = { (u64)sig, (u64) * (int *)((u8 *)si + 8) /* si_code */, *(u64 *)((u8 *)si + 16) /* si_addr */ };
	sys(SYS_write, report_fd, msg, sizeof(msg));
	quit(0);
}
/* SA_RESTORER's trampoline (never used: the handler exits): rt_sigreturn. */
__asm__(".text\n.p2align 2\n.type restorer, %function\nrestorer:\n\tmov x8, #139\n\tsvc #0\n.size restorer, .-restorer\n");
void restorer(void);

struct ksigaction { void *handler; u64 flags; void *restorer; u64 mask; };

struct fault_child { i64 pid; int rd; };

/*
 * Starts a child that pins itself to `cpu`, sets tag-check mode `tcf`,
 * installs on_segv, spins (no syscalls) until the counter reaches `until`,
 * then accesses `bad` (a pointer whose tag is not its memory's): a load if
 * sync, a store then syscalls if async (an asynchronous tag check fault is
 * only reported at the next entry to the kernel, memory-tagging-extension.rst).
 */
static struct fault_child fault_start(u64 tcf, u64 bad, int cpu, u64 until)
{
	int fds[2];
	struct fault_child c = { -1, -1 };
	if (sys(SYS_pipe2, fds, 0, 0) < 0) return c;
	c.pid = fork();
	if (c.pid == 0) {
		report_fd = fds[1];
		pin_to(cpu);
		struct ksigaction sa = { (void *)on_segv, SA_SIGINFO | SA_RESTORER, (void *)restorer, 0 };
		if (sys6(SYS_rt_sigaction, SIGSEGV, (i64)&sa, 0, 8, 0, 0) < 0 || mte_mode(tcf) < 0) quit(3);
		while (cntvct() < until) {}
		if (tcf == PR_MTE_TCF_SYNC) {
			(void)*(volatile u64 *)bad;
		} else {
			*(volatile u64 *)bad = 1;
			for (int i = 0; i < 1000; i++) sys(SYS_getpid, 0, 0, 0);
		}
		quit(4); /* no fault */
	}
	sys(SYS_close, fds[1], 0, 0); /* so the read sees EOF if the child exits without a report */
	c.rd = fds[0];
	return c;
}

/* The si_code the child reported (its si_addr in *addr), or -1. */
static i64 fault_finish(struct fault_child c, u64 *addr)
{
	if (c.pid <= 0) { info("mte: fork/pipe failed", (u64)c.pid, 1); return -1; }
	u64 msg[3] = { 0, (u64)-1, 0 };
	i64 n = sys(SYS_read, c.rd, msg, sizeof(msg));
	int st = wait_child(c.pid);
	sys(SYS_close, c.rd, 0, 0);
	if (n != sizeof(msg)) { info("mte: fault child reported nothing, exit", st, 1); return -1; }
	if (msg[0] != SIGSEGV) { info("mte: fault child got signal", msg[0], 0); return -1; }
	*addr = msg[2];
	return (i64)msg[1];
}

static void check_mte(void)
{
	if (!(hwcap2 & HWCAP2_MTE)) {
		info("no HWCAP2_MTE in AT_HWCAP2", hwcap2, 1);
		verdict("mte_prctl", 0);
		verdict("mte_mmap", 0);
		verdict("mte_irg", 0);
		verdict("mte_tagged_access", 0);
		verdict("mte_sync_fault", 0);
		verdict("mte_async_fault", 0);
		verdict("mte_modes_2cpu", 0);
		return;
	}
	u64 want = PR_TAGGED_ADDR_ENABLE | PR_MTE_TCF_SYNC | (0xfffeUL << PR_MTE_TAG_SHIFT);
	i64 set = mte_mode(PR_MTE_TCF_SYNC);
	i64 got = sys(SYS_prctl, PR_GET_TAGGED_ADDR_CTRL, 0, 0);
	verdict("mte_prctl", set == 0 && (u64)got == want);
	i64 m = sys6(SYS_mmap, 0, 4096, PROT_READ | PROT_WRITE | PROT_MTE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int mapped = m > 0 || m < -4096;
	verdict("mte_mmap", mapped);
	if (!mapped || set != 0) {
		info("mte: mmap/prctl returned", (u64)(mapped ? set : m), 1);
		verdict("mte_irg", 0);
		verdict("mte_tagged_access", 0);
		verdict("mte_sync_fault", 0);
		verdict("mte_async_fault", 0);
		verdict("mte_modes_2cpu", 0);
		return;
	}
	u64 base = (u64)m;
	/* IRG never picks the excluded tag 0, and does not always pick the same one. */
	u32 seen = 0;
	for (int i = 0; i < 64; i++) seen |= 1u << tag_of(irg(base));
	info("mte: tags IRG chose (bit mask)", seen, 1);
	verdict("mte_irg", !(seen & 1) && __builtin_popcount(seen) >= 2);
	/* Tag two granules, read the tag back, use them through the tagged pointer. */
	u64 p = irg(base);
	stg(p);
	stg(p + 16);
	u64 t = tag_of(p);
	int ok = t != 0 && tag_of(ldg(base)) == t && tag_of(ldg(base + 16)) == t && tag_of(ldg(base + 32)) == 0;
	volatile u64 *q = (volatile u64 *)p;
	q[0] = 0x1122334455667788UL;
	q[3] = 0x99aabbccddeeff00UL;
	ok = ok && q[0] == 0x1122334455667788UL && q[3] == 0x99aabbccddeeff00UL;
	info("mte: tag of the granules", t, 0);
	verdict("mte_tagged_access", ok);
	/* A wrong tag (any other than t; tag 0 is checked too for user addresses). */
	u64 bad = with_tag(p + 8, (t + 1) & 0xf), addr = 0;
	i64 code = fault_finish(fault_start(PR_MTE_TCF_SYNC, bad, 0, 0), &addr);
	info("mte: sync fault si_code", (u64)code, 0);
	info("mte: sync fault si_addr", addr, 1);
	/* si_addr: the faulting address, tag bits cleared (no SA_EXPOSE_TAGBITS). */
	verdict("mte_sync_fault", code == SEGV_MTESERR && addr == with_tag(bad, 0));
	code = fault_finish(fault_start(PR_MTE_TCF_ASYNC, bad, 0, 0), &addr);
	info("mte: async fault si_code", (u64)code, 0);
	verdict("mte_async_fault", code == SEGV_MTEAERR);
	/*
	 * Both modes at once, one process on each CPU spinning 300 ms before its
	 * access: each CPU's tag-check mode (SCTLR_EL1.TCF0) and fault status
	 * (TFSRE0_EL1) must stay its own while a hypervisor switches the vCPUs.
	 */
	if (nr_cpus() >= 2) {
		u64 until = cntvct() + cntfrq() * 3 / 10, a0 = 0, a1 = 0;
		struct fault_child s0 = fault_start(PR_MTE_TCF_SYNC, bad, 0, until);
		struct fault_child s1 = fault_start(PR_MTE_TCF_ASYNC, bad, 1, until);
		i64 c0 = fault_finish(s0, &a0), c1 = fault_finish(s1, &a1);
		info("mte: 2 cpus, sync process si_code", (u64)c0, 0);
		info("mte: 2 cpus, async process si_code", (u64)c1, 0);
		verdict("mte_modes_2cpu", c0 == SEGV_MTESERR && c1 == SEGV_MTEAERR);
	} else {
		info("mte_modes_2cpu: CPUs", nr_cpus(), 0);
		verdict("mte_modes_2cpu", 0);
	}
	/* Nothing above may have changed the memory through the wrong tag. */
	sys(SYS_munmap, base, 4096, 0);
}

/* ================================ PMU ================================ */

/* struct perf_event_attr, PERF_ATTR_SIZE_VER0 (64 bytes). */
struct perf_attr { u32 type, size; u64 config, sample_period, sample_type, read_format, flags; u32 wakeup_events, bp_type; u64 config1; };
#define PERF_TYPE_HARDWARE 0
#define PERF_COUNT_HW_CPU_CYCLES 0
#define PERF_FLAG_DISABLED (1UL << 0)
#define PERF_FLAG_EXCLUDE_KERNEL (1UL << 5)
#define PERF_FLAG_EXCLUDE_HV (1UL << 6)
#define PERF_EVENT_IOC_ENABLE 0x2400 /* _IO('$', 0) */
#define PERF_EVENT_IOC_DISABLE 0x2401
#define PERF_EVENT_IOC_RESET 0x2403

/* User-mode CPU cycles of a busy loop through perf_event_open: counted, and more for a longer loop. */
static void check_pmu(void)
{
	struct perf_attr a;
	fill(&a, 0, sizeof(a));
	a.type = PERF_TYPE_HARDWARE;
	a.size = sizeof(a);
	a.config = PERF_COUNT_HW_CPU_CYCLES;
	a.flags = PERF_FLAG_DISABLED | PERF_FLAG_EXCLUDE_KERNEL | PERF_FLAG_EXCLUDE_HV;
	i64 fd = sys6(SYS_perf_event_open, (i64)&a, 0 /* this thread */, -1 /* any CPU */, -1, 0, 0);
	if (fd < 0) { info("pmu: perf_event_open returned", (u64)fd, 1); verdict("pmu_cycles", 0); return; }
	u64 counts[2] = { 0, 0 };
	for (int k = 0; k < 2; k++) {
		sys(SYS_ioctl, fd, PERF_EVENT_IOC_RESET, 0);
		sys(SYS_ioctl, fd, PERF_EVENT_IOC_ENABLE, 0);
		for (volatile u64 i = 0; i < (k ? 4000000UL : 400000UL); i++) {}
		sys(SYS_ioctl, fd, PERF_EVENT_IOC_DISABLE, 0);
		if (sys(SYS_read, fd, &counts[k], 8) != 8) counts[k] = 0;
	}
	sys(SYS_close, fd, 0, 0);
	info("pmu: user cycles for 400k iterations", counts[0], 0);
	info("pmu: user cycles for 4M iterations", counts[1], 0);
	verdict("pmu_cycles", counts[0] > 0 && counts[1] > counts[0]);
}

/* ================================ main ================================ */

void __attribute__((noreturn, used)) features_main(u64 *sp)
{
	/* The initial stack: argc, argv[], NULL, envp[], NULL, auxv pairs (AT_NULL ends). */
	u64 *p = sp + 1 + sp[0] + 1;
	while (*p) p++;
	for (p++; p[0]; p += 2) {
		if (p[0] == AT_HWCAP) hwcap = p[1];
		if (p[0] == AT_HWCAP2) hwcap2 = p[1];
	}
	info("AT_HWCAP", hwcap, 1);
	info("AT_HWCAP2", hwcap2, 1);
	verdict("hwcap_sve", (hwcap & HWCAP_SVE) != 0);
	verdict("hwcap2_mte", (hwcap2 & HWCAP2_MTE) != 0);
	check_cpuinfo();
	check_pmu();
	check_sve();
	check_mte();
	char b[80], *q = put(b, "guest_features done: ");
	q = num(q, npass);
	q = put(q, " pass, ");
	q = num(q, nfail);
	q = put(q, " fail");
	emit(b, q);
	quit(nfail ? 1 : 0);
}

/* The kernel enters with sp at argc (16-byte aligned). */
__asm__(".text\n.globl _start\n.type _start, %function\n_start:\n\tmov x0, sp\n\tmov x29, #0\n\tmov x30, #0\n\tbl features_main\n.size _start, .-_start\n");
