/*
 * What the guest tells the emulator, beyond the PAPR console hypercall.
 * docs/guest-abi.md is the reference; emulator/devices.py the other side.
 */
#ifndef BW_GUEST_ABI_H
#define BW_GUEST_ABI_H

#include "types.h"

#define H_PUT_TERM_CHAR		0x58
/* PAPR leaves 0xF000-0xFFFC to the platform; bwemu takes one. */
#define H_BWEMU_KERNEL_REPORT	0xF0B0

/* Status bits of the kernel report. */
#define BWK_DTB_MAGIC	0x1	/* r3 pointed at a tree with the FDT magic */
#define BWK_INITRD	0x2	/* /chosen names an initrd */
#define BWK_RELOCATED	0x4	/* we were not placed at 0 and copied down */

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

#endif
