/*
 * Quadrant validation stub for BL32 (SPMC at S-EL2), linked at 0x0e100000.
 * Entered by the SPMD with MMU off, DAIF masked, x0 = SPMC manifest
 * (TOS_FW_CONFIG, Secure-PAS copy under RME), x4 = linear core id.
 * Prints its entry registers, ends init with FFA_MSG_WAIT, then serves the
 * SPMD framework FFA_VERSION request forever. Anything else: FFA_ERROR.
 */
	.include "common.inc"

	.equ	FFA_ERROR,			0x84000060
	.equ	FFA_MSG_WAIT,			0x8400006B
	.equ	FFA_MSG_SEND_DIRECT_REQ_32,	0x8400006F
	.equ	FFA_MSG_SEND_DIRECT_RESP_32,	0x84000070
	.equ	FWK_FFA_VERSION_REQ,		0x80000008
	.equ	FWK_FFA_VERSION_RESP,		0x80000009
	.equ	OUR_FFA_VERSION,		0x00010002

	.text
	.global	_start
_start:
	mov	x19, x0
	mov	x20, x1
	mov	x21, x2
	mov	x22, x3
	mov	x23, x4
	print_str "stub spmc: S-EL2 entry"
	print_reg " x0=", x19
	print_reg " x1=", x20
	print_reg " x2=", x21
	print_reg " x3=", x22
	print_reg " x4=", x23
	mrs	x24, CurrentEL
	print_reg " CurrentEL=", x24
	/* First word of the manifest (FDT magic d00dfeed, big-endian) */
	cbz	x19, 1f
	ldr	w24, [x19]
	rev	w24, w24
	print_reg " [x0]=", x24
1:	print_str "\r\n"

	/* End of init: FFA_MSG_WAIT */
	mov32	x0, FFA_MSG_WAIT

	mov	x1, xzr
	mov	x2, xzr
	mov	x3, xzr
	mov	x4, xzr
	mov	x5, xzr
	mov	x6, xzr
	mov	x7, xzr
	smc	#0

dispatch:	/* A message arrived: x0 = function id */
	mov32	x9, FFA_MSG_SEND_DIRECT_REQ_32
	cmp	x0, x9
	b.ne	unknown
	mov32	x9, FWK_FFA_VERSION_REQ
	cmp	x2, x9
	b.ne	unknown
	mov	x19, x1			/* (src << 16) | dst */
	mov	x20, x3			/* version requested by NS */
	print_reg "stub spmc: framework FFA_VERSION req x1=", x19
	print_reg " x3=", x20
	print_str "\r\n"
	/* Reply: swap endpoint ids, framework FFA_VERSION response */
	ubfx	x9, x19, #16, #16	/* src (SPMD, 0xffff) */
	ubfx	x10, x19, #0, #16	/* dst (us, spmc_id) */
	orr	x1, x9, x10, lsl #16
	mov32	x0, FFA_MSG_SEND_DIRECT_RESP_32
	mov32	x2, FWK_FFA_VERSION_RESP
	mov32	x3, OUR_FFA_VERSION
	mov	x4, xzr
	mov	x5, xzr
	mov	x6, xzr
	mov	x7, xzr
	smc	#0
	b	dispatch		/* x0.. = next message */

unknown:
	mov	x19, x0
	print_reg "stub spmc: unexpected x0=", x19
	print_str "\r\n"
	/* FFA_ERROR(NOT_SUPPORTED = -1) */
	mov32	x0, FFA_ERROR
	mov	x1, xzr
	mov	x2, #-1
	and	x2, x2, #0xffffffff
	mov	x3, xzr
	mov	x4, xzr
	mov	x5, xzr
	mov	x6, xzr
	mov	x7, xzr
	smc	#0
	b	dispatch

	def_putc
	def_puts
	def_puthex
	.ltorg
