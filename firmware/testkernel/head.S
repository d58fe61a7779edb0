/*
 * Test kernel entry: r3 = device tree, r4 = where we were placed, r5 = 0.
 * Like a ppc64 Linux kernel we copy ourselves to 0 first (anything the
 * wrapper left in [0, our memory size) is overwritten here: the seed's
 * hole), clear bss, then report from C.
 */
#include "asm.h"

	.section ".text.head", "ax"
	.globl	_kstart
_kstart:
	mr	%r31, %r3		/* device tree */
	mr	%r30, %r4		/* our address, per the wrapper */
	bl	1f
1:	mflr	%r29
	LOAD_PCREL(%r28, %r29, _kstart, 1b)	/* r28 = where we really are */
	cmpdi	%r28, 0
	beq	3f

	/* Copy [r28, r28 + file size) down to 0; forward is safe (dst < src). */
	LOAD_PCREL(%r10, %r29, __kbss_start, 1b)
	subf	%r10, %r28, %r10	/* bytes to copy */
	li	%r9, 0
2:	cmpld	%r9, %r10
	bge	25f
	ldx	%r0, %r9, %r28
	stdx	%r0, 0, %r9
	addi	%r9, %r9, 8
	b	2b
25:	sync
	isync
	/* Continue in the copy at 0: our link address. */
	lis	%r9, 3f@ha
	addi	%r9, %r9, 3f@l
	mtctr	%r9
	bctr

3:	lis	%r9, __kbss_start@ha
	addi	%r9, %r9, __kbss_start@l
	lis	%r10, __kbss_end@ha
	addi	%r10, %r10, __kbss_end@l
	li	%r0, 0
4:	cmpld	%r9, %r10
	bge	5f
	std	%r0, 0(%r9)
	addi	%r9, %r9, 8
	b	4b

5:	lis	%r2, (.TOC.)@ha
	addi	%r2, %r2, (.TOC.)@l
	lis	%r1, kstack_top@ha
	addi	%r1, %r1, kstack_top@l
	addi	%r1, %r1, -STACK_FRAME_MIN
	li	%r0, 0
	std	%r0, 0(%r1)
	mr	%r3, %r31
	mr	%r4, %r30
	mr	%r5, %r28
	bl	kernel_main
	nop
6:	b	6b

/* kernel_report(hcall args): r3 = the report hcall number, r4.. values. */
FUNC_START(kernel_hcall)
	sc	1
	blr
FUNC_END(kernel_hcall)

	.section ".bss", "aw", @nobits
	.balign	16
kstack:
	.space	0x4000
kstack_top:
