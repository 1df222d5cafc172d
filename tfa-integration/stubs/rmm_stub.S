/*
 * Quadrant validation stub for the RMM (R-EL2), linked at 0x40100000.
 * Cold boot (primary): x0 = linear cpu id, x1 = RMM-EL3 interface version,
 * x2 = core count, x3 = EL3<->RMM shared buffer (boot manifest at offset 0).
 * Warm boot (CPU_ON): same entry, x0 = cpu id, x1..x3 = 0.
 * Reports RMM_BOOT_COMPLETE(0), then answers every RMI call through
 * RMM_RMI_REQ_COMPLETE: RMI_VERSION -> success, 1.0/1.0; others -> error.
 */
	.include "common.inc"

	.equ	RMM_BOOT_COMPLETE,	0xC40001CF
	.equ	RMM_RMI_REQ_COMPLETE,	0xC400018F
	.equ	RMI_VERSION,		0xC4000150
	.equ	RMI_SUCCESS,		0
	.equ	RMI_ERROR_INPUT,	1
	.equ	RMI_ABI_VERSION,	0x10000		/* 1.0 */

	.text
	.global	_start
_start:
	mov	x19, x0
	mov	x20, x1
	mov	x21, x2
	mov	x22, x3
	print_str "stub rmm: R-EL2 entry"
	print_reg " x0=", x19
	print_reg " x1=", x20
	print_reg " x2=", x21
	print_reg " x3=", x22
	cbz	x22, 1f
	/* boot manifest v0.3: version u32 @0, dram bank[0] base/size @64/@72,
	 * console[0] base @80 */
	ldr	w23, [x22]
	print_reg " manifest.version=", x23
	ldr	x23, [x22, #64]
	print_reg " dram0.base=", x23
	ldr	x23, [x22, #72]
	print_reg " dram0.size=", x23
	ldr	x23, [x22, #80]
	print_reg " console.base=", x23
1:	print_str "\r\n"

	mov32	x0, RMM_BOOT_COMPLETE
	mov	x1, #0
	smc	#0

dispatch:	/* an RMI call from NS: x0 = fid, x1.. = args */
	mov	x19, x0
	mov	x20, x1
	print_reg "stub rmm: RMI x0=", x19
	print_reg " x1=", x20
	print_str "\r\n"
	mov32	x9, RMI_VERSION
	cmp	x19, x9
	b.ne	1f
	mov32	x0, RMM_RMI_REQ_COMPLETE
	mov	x1, #RMI_SUCCESS	/* NS x0: status */
	mov	x2, #RMI_ABI_VERSION	/* NS x1: lower revision */
	mov	x3, #RMI_ABI_VERSION	/* NS x2: higher revision */
	mov	x4, xzr
	mov	x5, xzr
	smc	#0
	b	dispatch
1:	mov32	x0, RMM_RMI_REQ_COMPLETE
	mov	x1, #RMI_ERROR_INPUT
	mov	x2, xzr
	mov	x3, xzr
	mov	x4, xzr
	mov	x5, xzr
	smc	#0
	b	dispatch

	def_putc
	def_puts
	def_puthex
	.ltorg
