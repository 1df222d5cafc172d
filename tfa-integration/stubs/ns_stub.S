/*
 * Quadrant validation stub for BL33 (ns-hyp, NS-EL2), linked at 0x60000000.
 * Prints its entry registers, then:
 *   FFA_VERSION(1.2)  -> forwarded by the SPMD to the SPMC (framework msg)
 *   FFA_ID_GET        -> answered by the SPMD itself (NS endpoint id 0)
 *   FFA_SPM_ID_GET    -> answered by the SPMD itself (spmc_id)
 *   RMI_VERSION(1.0)  -> forwarded by the RMMD to the RMM
 *   PSCI CPU_ON(core 1) -> EL3 enters the SPMC then the RMM on core 1 before
 *                        core 1 reaches ns_secondary (x0 = context id)
 * prints one verdict char per call ('Y' good, 'N' bad), then PSCI SYSTEM_OFF.
 */
	.include "common.inc"

	.equ	FFA_VERSION,	0x84000063
	.equ	FFA_ID_GET,	0x84000069
	.equ	FFA_SPM_ID_GET,	0x84000085
	.equ	FFA_SUCCESS_32,	0x84000061
	.equ	RMI_VERSION,	0xC4000150
	.equ	PSCI_SYSTEM_OFF, 0x84000008
	.equ	PSCI_CPU_ON_64,	0xC4000003

	.text
	.global	_start
_start:
	mov	x19, x0
	mov	x20, x1
	mov	x21, x2
	mov	x22, x3
	print_str "stub ns: NS-EL2 entry"
	print_reg " x0=", x19
	print_reg " x1=", x20
	print_reg " x2=", x21
	print_reg " x3=", x22
	mrs	x23, CurrentEL
	print_reg " CurrentEL=", x23
	/* x0 = DTB (0x40000000) when built with ARM_LINUX_KERNEL_AS_BL33=1 */
	cbz	x19, 1f
	ldr	w23, [x19]
	rev	w23, w23
	print_reg " [x0]=", x23
1:	print_str "\r\n"

	/* FFA_VERSION(1.2) */
	mov32	x0, FFA_VERSION
	mov32	x1, 0x10002
	mov	x2, xzr
	mov	x3, xzr
	smc	#0
	mov	x19, x0
	print_reg "stub ns: FFA_VERSION x0=", x19
	mov32	x9, 0x10002
	cmp	w19, w9
	cset	w24, eq
	bl	verdict

	/* FFA_ID_GET */
	mov32	x0, FFA_ID_GET
	mov	x1, xzr
	mov	x2, xzr
	smc	#0
	mov	x19, x0
	mov	x20, x2
	print_reg "stub ns: FFA_ID_GET x0=", x19
	print_reg " x2=", x20
	mov32	x9, FFA_SUCCESS_32
	cmp	x19, x9
	ccmp	x20, #0, #0, eq
	cset	w24, eq
	bl	verdict

	/* FFA_SPM_ID_GET */
	mov32	x0, FFA_SPM_ID_GET
	mov	x1, xzr
	mov	x2, xzr
	smc	#0
	mov	x19, x0
	mov	x20, x2
	print_reg "stub ns: FFA_SPM_ID_GET x0=", x19
	print_reg " x2=", x20
	mov32	x9, FFA_SUCCESS_32
	cmp	x19, x9
	mov	x9, #0x8000
	ccmp	x20, x9, #0, eq
	cset	w24, eq
	bl	verdict

	/* RMI_VERSION(1.0): expect x0 = 0 (success), x1/x2 = 0x10000 */
	mov32	x0, RMI_VERSION
	mov32	x1, 0x10000
	mov	x2, xzr
	mov	x3, xzr
	smc	#0
	mov	x19, x0
	mov	x20, x1
	mov	x21, x2
	print_reg "stub ns: RMI_VERSION x0=", x19
	print_reg " x1=", x20
	print_reg " x2=", x21
	mov	x9, #0x10000
	cmp	x19, #0
	ccmp	x20, x9, #0, eq
	cset	w24, eq
	bl	verdict

	/* PSCI CPU_ON(mpidr 1, ns_secondary, context 0x5ec0), wait for it */
	mov32	x0, PSCI_CPU_ON_64
	mov	x1, #1
	adr	x2, ns_secondary
	mov	x3, #0x5ec0
	smc	#0
	mov	x19, x0
	print_reg "stub ns: CPU_ON(1) x0=", x19
	cmp	x19, #0
	cset	w24, eq
	bl	verdict
	adr	x9, secondary_flag
1:	ldr	w10, [x9]
	cbz	w10, 1b

	print_str "stub ns: PSCI SYSTEM_OFF\r\n"
	mov32	x0, PSCI_SYSTEM_OFF
	smc	#0
	print_str "stub ns: SYSTEM_OFF returned!\r\n"
1:	wfi
	b	1b

/* core 1 lands here in NS-EL2 after the SPMC and RMM ran on it */
ns_secondary:
	mov	x19, x0
	mrs	x20, mpidr_el1
	print_reg "stub ns: secondary entry x0=", x19
	print_reg " mpidr=", x20
	print_str "\r\n"
	adr	x9, secondary_flag
	mov	w10, #1
	str	w10, [x9]
1:	wfi
	b	1b

	.balign	8
secondary_flag:
	.word	0

/* verdict: w24 = 1 -> " Y\r\n" else " N\r\n" (uses x25 for lr) */
verdict:
	mov	x25, x30
	mov	w0, #' '
	bl	putc
	mov	w0, #'N'
	mov	w9, #'Y'
	cmp	w24, #0
	csel	w0, w9, w0, ne
	bl	putc
	mov	w0, #'\r'
	bl	putc
	mov	w0, #'\n'
	bl	putc
	ret	x25

	def_putc
	def_puts
	def_puthex
	.ltorg
