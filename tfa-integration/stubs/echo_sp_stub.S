/*
 * Quadrant validation stub for the "echo" SP (S-EL1), linked at
 * 0x0e304000 = load-address 0x0e300000 + entrypoint-offset 0x4000.
 * Only needs to exist in the FIP (the stub SPMC never runs it). If run by a
 * real SPMC: FFA_MSG_WAIT, then answer each direct request with a direct
 * response carrying the same payload (x3..x7), endpoint ids swapped.
 */
	.equ	FFA_MSG_WAIT,		0x8400006B
	.equ	FFA_DIRECT_REQ_32,	0x8400006F
	.equ	FFA_DIRECT_RESP_32,	0x84000070
	.equ	FFA_DIRECT_REQ_64,	0xC400006F
	.equ	FFA_DIRECT_RESP_64,	0xC4000070

	.macro	mov32 reg, val
	movz	\reg, #((\val) & 0xffff)
	movk	\reg, #(((\val) >> 16) & 0xffff), lsl #16
	.endm

	.text
	.global	_start
_start:
	mov32	x0, FFA_MSG_WAIT
	mov	x1, xzr
	mov	x2, xzr
	smc	#0
1:	ubfx	x9, x1, #16, #16
	ubfx	x10, x1, #0, #16
	orr	x1, x9, x10, lsl #16
	mov32	x9, FFA_DIRECT_REQ_32
	cmp	x0, x9
	b.ne	2f
	mov32	x0, FFA_DIRECT_RESP_32
	mov	x2, xzr
	smc	#0
	b	1b
2:	mov32	x9, FFA_DIRECT_REQ_64
	cmp	x0, x9
	b.ne	_start
	mov32	x0, FFA_DIRECT_RESP_64
	mov	x2, xzr
	smc	#0
	b	1b
