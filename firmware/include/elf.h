/* ELF64 big-endian executable header parsing for the kernel payload (elf.c). */
#ifndef BW_ELF_H
#define BW_ELF_H

#include "types.h"

#define ELF_ERR_SHORT		1	/* header or phdrs beyond the buffer */
#define ELF_ERR_BADMAGIC	2	/* not ELF */
#define ELF_ERR_BADCLASS	3	/* not ELFCLASS64 / big-endian / PPC64 */
#define ELF_ERR_NOLOAD		4	/* no PT_LOAD segment */
#define ELF_ERR_TOOMANY		5	/* more than ELF_MAX_SEGMENTS */
#define ELF_ERR_BADSEGMENT	6	/* filesz > memsz, or sizes overflow */
#define ELF_ERR_MAX		6

#define ELF_MAX_SEGMENTS	8

struct elf_segment {
	u64 offset;	/* in the file */
	u64 filesz;
	u64 memsz;
	u64 paddr;	/* relative placement: paddr - elf_info.base */
};

struct elf_info {
	u64 entry;	/* e_entry - base: offset of the entry in the image */
	u64 base;	/* lowest PT_LOAD p_paddr */
	u64 memsize;	/* highest p_paddr + p_memsz, minus base */
	u64 phdrs_end;	/* file offset where the program headers end */
	u32 nsegments;
	struct elf_segment seg[ELF_MAX_SEGMENTS];
};

/*
 * Parses the ELF header and program headers found in hdr[0, len).
 * Returns 0 or -ELF_ERR_*.
 */
int elf_parse(const void *hdr, size_t len, struct elf_info *info);
const char *elf_strerror(int err);

#endif
