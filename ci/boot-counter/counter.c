/*
 * Where a Linux guest's boot has got to, in its own counter (`cargo xtask
 * bench`, row guest_boot_to_prompt_icount): the bench's initramfs runs this
 * where its shell would start, under ns-hyp and on bare QEMU alike.  Reads
 * the virtual counter (CNTVCT_EL0, after an ISB so the read is not taken
 * early: DDI0487 D12.1.2) and its frequency (CNTFRQ_EL0); Linux lets EL0
 * read both (CNTKCTL_EL1.EL0VCTEN, set for its vDSO).  Under QEMU's
 * `-icount shift=0` the counter is the instructions executed since reset at
 * every EL (and the jumps over idle time, sleep=off).  Prints one line:
 *   quadrant-boot: cntvct N cntfrq F
 * ns-hyp's bench-split build prints its totals when it has seen that line.
 *
 * Freestanding (raw syscalls, no libc), as ci/optee-invoke-bench.
 */
typedef unsigned long u64;

static long sys(long n, long a, long b, long c)
{
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	__asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
	return x0;
}

#define SYS_write 64
#define SYS_exit 93

static char *put(char *p, const char *s) { while (*s) *p++ = *s++; return p; }
static char *num(char *p, u64 v)
{
	char t[24];
	int n = 0;
	do { t[n++] = '0' + v % 10; v /= 10; } while (v);
	while (n) *p++ = t[--n];
	return p;
}

void __attribute__((noreturn)) _start(void)
{
	u64 cnt, frq;
	char buf[96], *p;

	__asm__ volatile("isb\n\tmrs %0, cntvct_el0" : "=r"(cnt) : : "memory");
	__asm__ volatile("mrs %0, cntfrq_el0" : "=r"(frq));
	p = put(buf, "quadrant-boot: cntvct ");
	p = num(p, cnt);
	p = put(p, " cntfrq ");
	p = num(p, frq);
	*p++ = '\n';
	sys(SYS_write, 1, (long)buf, p - buf);
	sys(SYS_exit, 0, 0, 0);
	__builtin_unreachable();
}
