/*
 * Wrapper entry, as a chain-loader (kexec-tools, or firmware such as QEMU's
 * pseries -bios) leaves us:
 *	r3 = physical address of the flattened device tree
 *	r4 = address the image was loaded at (0 under QEMU -bios)
 *	r5 = 0 (no Open Firmware client interface)
 * real mode (MMU off), big-endian, maybe still in 32-bit mode, no stack.
 *
 * We run where we were loaded: find our own address, apply our
 * R_PPC64_RELATIVE relocations, set up the TOC and a stack, clear bss,
 * and call start_wrapper(dtb, base, loader_r4).
 */
#include "asm.h"
#include "guest_abi.h"

	.section ".text.entry", "ax"
	.globl	_start
_start:
	/* 64-bit mode first: QEMU's -bios entry has MSR[SF] clear. */
	mfmsr	%r0
	li	%r11, 1
	rldicr	%r11, %r11, MSR_SF_BIT, 0
	or	%r0, %r0, %r11
	mtmsrd	%r0
	isync

	mr	%r31, %r3		/* device tree */
	mr	%r30, %r4		/* loader's idea of our address */
	bl	1f
1:	mflr	%r29			/* r29 = run-time address of 1b */
	LOAD_PCREL(%r28, %r29, _start, 1b)	/* r28 = base (linked at 0) */

	/* Apply .rela.dyn: every entry must be R_PPC64_RELATIVE (or NONE). */
	LOAD_PCREL(%r9, %r29, __rela_start, 1b)
	LOAD_PCREL(%r10, %r29, __rela_end, 1b)
2:	cmpld	%r9, %r10
	bge	4f
	ld	%r11, 8(%r9)		/* r_info: type in the low 32 bits */
	clrldi	%r11, %r11, 32
	cmpdi	%r11, R_PPC64_NONE
	beq	3f
	cmpdi	%r11, R_PPC64_RELATIVE
	bne	bad_reloc
	ld	%r11, 0(%r9)		/* r_offset */
	ld	%r12, 16(%r9)		/* r_addend */
	add	%r12, %r12, %r28
	stdx	%r12, %r11, %r28
3:	addi	%r9, %r9, 24
	b	2b

	/* Clear bss (8-byte aligned by the linker script). */
4:	LOAD_PCREL(%r9, %r29, __bss_start, 1b)
	LOAD_PCREL(%r10, %r29, __bss_end, 1b)
	li	%r0, 0
5:	cmpld	%r9, %r10
	bge	6f
	std	%r0, 0(%r9)
	addi	%r9, %r9, 8
	b	5b

	/* TOC and stack, then C. */
6:	LOAD_PCREL(%r2, %r29, .TOC., 1b)
	LOAD_PCREL(%r1, %r29, boot_stack_top, 1b)
	addi	%r1, %r1, -STACK_FRAME_MIN
	li	%r0, 0
	std	%r0, 0(%r1)		/* terminate the back chain */
	mr	%r3, %r31
	mr	%r4, %r28
	mr	%r5, %r30
	bl	start_wrapper
	nop
	/* start_wrapper never returns; if it does, say so. */
	LOAD_PCREL(%r3, %r29, msg_returned, 1b)
	li	%r4, BW_FATAL_RETURNED
	b	stop

bad_reloc:
	LOAD_PCREL(%r3, %r29, msg_bad_reloc, 1b)
	li	%r4, BW_FATAL_RELOC
	b	stop

/*
 * bw_stop(message, code): the wrapper's end on a fatal error.  The trap is
 * what the emulator (and a debugger) recognise; r3 points at the message,
 * r4 holds the BW_FATAL_* code (guest_abi.h).
 */
FUNC_START(bw_stop)
stop:	tw	31, 0, 0
	b	stop
FUNC_END(bw_stop)

/*
 * bw_enter_kernel(dtb, kernel, entry): the hand-off, with the convention we
 * were entered with: r3 = device tree, r4 = kernel address, r5 = 0.
 */
FUNC_START(bw_enter_kernel)
	mtctr	%r5
	li	%r5, 0
	bctr
FUNC_END(bw_enter_kernel)

	.section ".rodata", "a"
msg_bad_reloc:
	.asciz	"FATAL: unsupported relocation type in .rela.dyn"
msg_returned:
	.asciz	"FATAL: start_wrapper returned"

	/* The stack need not be zeroed: its own section, after bss. */
	.section ".stack", "aw", @nobits
	.balign	16
boot_stack:
	.space	0x8000
boot_stack_top:
