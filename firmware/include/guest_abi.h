/*
 * What the guest tells the emulator, beyond the PAPR console hypercall:
 * the kernel's report and the fatal stop codes.  docs/guest-abi.md is the
 * reference.  Included by C and by assembly (crt0.S).
 */
#ifndef BW_GUEST_ABI_H
#define BW_GUEST_ABI_H

#define H_PUT_TERM_CHAR		0x58
/* PAPR leaves 0xF000-0xFFFC to the platform; bwemu takes one. */
#define H_BWEMU_KERNEL_REPORT	0xF0B0

/* Status bits of the kernel report. */
#define BWK_DTB_MAGIC	0x1	/* r3 pointed at a tree with the FDT magic */
#define BWK_INITRD	0x2	/* /chosen names an initrd */
#define BWK_RELOCATED	0x4	/* we were not placed at 0 and copied down */

/*
 * Fatal stop codes.  Every fatal stop ends in bw_stop (crt0.S): the trap
 * tw 31,0,0 with r3 = the message and r4 = one of these, so the emulator
 * knows which check failed without reading the text.  0 is no code.
 *
 * 1-11: the kexec placement steps wrapper_model/placement.py predicts
 * (docs/kexec.md); 12-15 are kept for more of those.  From 16: every other
 * cause, one code each (17, the structural check, is predicted too).  The
 * numbers never change meaning; a new cause takes a new number.
 */
#define BW_FATAL_NO_RMA			1  /* no /memory block starts at 0 */
#define BW_FATAL_INITRD_INVERTED	2  /* /chosen initrd end < start */
#define BW_FATAL_KNOWN_RANGE		3  /* ranges_add of a range in use */
#define BW_FATAL_KERNEL_RESERVE		4  /* fixed: ranges_add(0, kernel size) */
#define BW_FATAL_HEAP			5  /* ranges_init_malloc */
#define BW_FATAL_KERNEL			6  /* ranges_vmlinux_alloc */
#define BW_FATAL_INITRD_MOVE		7  /* fixed: no room to move the initrd */
#define BW_FATAL_INITRD_ALLOC		8  /* no room for the attached initrd */
#define BW_FATAL_DTB			9  /* no room for the final tree */
#define BW_FATAL_INITRD_OVERLAP		10 /* initrd over the wrapper or tree */
#define BW_FATAL_INITRD_OUTSIDE		11 /* initrd not all in memory */

#define BW_FATAL_RELOC			16 /* a relocation not R_PPC64_RELATIVE */
#define BW_FATAL_TREE			17 /* the tree fails the structural check */
#define BW_FATAL_NO_KERNEL		18 /* the image carries no kernel */
#define BW_FATAL_KERNEL_GZIP		19 /* the kernel's gzip stream is bad */
#define BW_FATAL_KERNEL_SHORT		20 /* the kernel file ends too soon */
#define BW_FATAL_KERNEL_ELF		21 /* the kernel is no usable ELF */
#define BW_FATAL_ROOT_CELLS		22 /* root #address/#size-cells not 1-2 */
#define BW_FATAL_CHOSEN_PROP_SIZE	23 /* /chosen initrd value not 4 or 8 */
#define BW_FATAL_INITRD_HALF		24 /* only one of initrd start and end */
#define BW_FATAL_RESERVE_MAP		25 /* the reserve map is unreadable */
#define BW_FATAL_PLATFORM_INIT		26 /* the platform's init failed */
#define BW_FATAL_FINAL_TREE		27 /* editing the final tree failed */
#define BW_FATAL_RETURNED		28 /* start_wrapper returned */

#ifndef __ASSEMBLER__
#include "types.h"

/*
 * Initrd checksum: FNV-1a over 64-bit big-endian words, the last word
 * zero-padded.  Cheap in the guest, easy to recompute in Python.
 */
#define BWK_FNV_OFFSET	0xcbf29ce484222325ULL
#define BWK_FNV_PRIME	0x100000001b3ULL

static inline u64 bwk_checksum(const u8 *p, u64 len)
{
	u64 h = BWK_FNV_OFFSET, i, w;

	for (i = 0; i + 8 <= len; i += 8) {
		w = (u64)p[i] << 56 | (u64)p[i + 1] << 48 |
		    (u64)p[i + 2] << 40 | (u64)p[i + 3] << 32 |
		    (u64)p[i + 4] << 24 | (u64)p[i + 5] << 16 |
		    (u64)p[i + 6] << 8 | p[i + 7];
		h = (h ^ w) * BWK_FNV_PRIME;
	}
	if (i < len) {
		w = 0;
		for (; i < len; i++)
			w |= (u64)p[i] << (56 - 8 * (i % 8));
		h = (h ^ w) * BWK_FNV_PRIME;
	}
	return h;
}
#endif /* !__ASSEMBLER__ */

#endif
