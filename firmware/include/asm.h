/*
 * Assembler helpers.  A C-callable function needs an ELFv1 function
 * descriptor in .opd (entry, TOC, environment); ELFv2 has plain entry
 * points.  FUNC_START/FUNC_END hide the difference.
 */
#ifndef BW_ASM_H
#define BW_ASM_H

#if defined(_CALL_ELF) && _CALL_ELF == 2
#define FUNC_START(name)			\
	.globl name;				\
	.type name, @function;			\
name:
#define FUNC_END(name)	.size name, . - name
#else
#define FUNC_START(name)			\
	.section ".opd", "aw";			\
	.balign 8;				\
	.globl name;				\
name:	.quad .L.name, .TOC.@tocbase, 0;	\
	.previous;				\
	.type name, @function;			\
.L.name:
#define FUNC_END(name)	.size name, . - .L.name
#endif

/* Loads the run-time address of sym into rd, given rb = run-time of lbl. */
#define LOAD_PCREL(rd, rb, sym, lbl)		\
	addis	rd, rb, (sym - lbl)@ha;		\
	addi	rd, rd, (sym - lbl)@l

#define MSR_SF_BIT	63	/* 64-bit mode, as a big-endian bit number 0 */
#define R_PPC64_NONE		0
#define R_PPC64_RELATIVE	22
#define STACK_FRAME_MIN		112	/* ELFv1 minimum frame (ELFv2: 32) */

#endif
