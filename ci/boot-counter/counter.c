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
 * Freestanding (raw syscalls, no libc; ci/include/quadrant_sys.h), as
 * ci/optee-invoke-bench.
 */
#include "quadrant_sys.h"
#define sys(n, a, b, c) sys6(n, (i64)(a), (i64)(b), (i64)(c), 0, 0, 0)

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
