/*
 * ELF64 big-endian header parsing for the kernel payload.
 *
 * Fields are read byte by byte as big-endian, so the same code runs in the
 * guest and, for the tests, on a little-endian host.  Only what the wrapper
 * needs to place the kernel is extracted: the PT_LOAD segments, the image's
 * extent and the entry point's offset in it.
 */
#include "types.h"
#include "elf.h"

#define EHDR_SIZE	64	/* sizeof(Elf64_Ehdr) */
#define PHDR_SIZE	56	/* sizeof(Elf64_Phdr) */

#define EI_CLASS	4
#define EI_DATA		5
#define ELFCLASS64	2
#define ELFDATA2MSB	2
#define EM_PPC64	21
#define PT_LOAD		1

/* Elf64_Ehdr field offsets */
#define E_MACHINE	18
#define E_ENTRY		24
#define E_PHOFF		32
#define E_PHENTSIZE	54
#define E_PHNUM		56

/* Elf64_Phdr field offsets */
#define P_TYPE		0
#define P_OFFSET	8
#define P_VADDR		16
#define P_PADDR		24
#define P_FILESZ	32
#define P_MEMSZ		40

struct load {
	u64 offset, vaddr, paddr, filesz, memsz;
};

static u64 get_be(const u8 *p, u32 n)
{
	u64 v = 0;

	while (n--)
		v = (v << 8) | *p++;
	return v;
}

static int check_ident(const u8 *h, size_t len)
{
	static const u8 magic[4] = { 0x7f, 'E', 'L', 'F' };
	u32 i;

	for (i = 0; i < 4 && i < len; i++)
		if (h[i] != magic[i])
			return -ELF_ERR_BADMAGIC;
	if (len < EHDR_SIZE)
		return -ELF_ERR_SHORT;
	if (h[EI_CLASS] != ELFCLASS64 || h[EI_DATA] != ELFDATA2MSB ||
	    get_be(h + E_MACHINE, 2) != EM_PPC64)
		return -ELF_ERR_BADCLASS;
	return 0;
}

/* Reads one PT_LOAD header and rejects sizes that make no sense. */
static int read_load(const u8 *ph, struct load *l)
{
	l->offset = get_be(ph + P_OFFSET, 8);
	l->vaddr = get_be(ph + P_VADDR, 8);
	l->paddr = get_be(ph + P_PADDR, 8);
	l->filesz = get_be(ph + P_FILESZ, 8);
	l->memsz = get_be(ph + P_MEMSZ, 8);
	if (l->filesz > l->memsz)
		return -ELF_ERR_BADSEGMENT;
	if (l->offset + l->filesz < l->offset ||
	    l->vaddr + l->memsz < l->vaddr ||
	    l->paddr + l->memsz < l->paddr)
		return -ELF_ERR_BADSEGMENT;
	return 0;
}

/*
 * Places the segments relative to the lowest address.  Physical addresses
 * are used unless every one is 0 (linkers that leave p_paddr unset); the
 * entry is a virtual address, so it is taken relative to the lowest
 * p_vaddr, and must fall inside the image.
 */
static int place(const struct load *l, u32 n, u64 e_entry,
		 struct elf_info *info)
{
	u64 base = U64_MAX, vbase = U64_MAX, top = 0, addr;
	int use_paddr = 0;
	u32 i;

	for (i = 0; i < n; i++)
		if (l[i].paddr)
			use_paddr = 1;
	for (i = 0; i < n; i++) {
		addr = use_paddr ? l[i].paddr : l[i].vaddr;
		if (addr < base)
			base = addr;
		if (addr + l[i].memsz > top)
			top = addr + l[i].memsz;
		if (l[i].vaddr < vbase)
			vbase = l[i].vaddr;
	}
	if (e_entry < vbase || e_entry - vbase >= top - base)
		return -ELF_ERR_BADSEGMENT;

	info->base = base;
	info->memsize = top - base;
	info->entry = e_entry - vbase;
	info->nsegments = n;
	for (i = 0; i < n; i++) {
		addr = use_paddr ? l[i].paddr : l[i].vaddr;
		info->seg[i].offset = l[i].offset;
		info->seg[i].filesz = l[i].filesz;
		info->seg[i].memsz = l[i].memsz;
		info->seg[i].paddr = addr - base;
	}
	return 0;
}

int elf_parse(const void *hdr, size_t len, struct elf_info *info)
{
	const u8 *h = hdr;
	struct load load[ELF_MAX_SEGMENTS];
	u64 phoff, phentsize, phnum, end;
	u32 i, n = 0;
	int ret;

	ret = check_ident(h, len);
	if (ret)
		return ret;
	phoff = get_be(h + E_PHOFF, 8);
	phentsize = get_be(h + E_PHENTSIZE, 2);
	phnum = get_be(h + E_PHNUM, 2);
	if (phnum && phentsize < PHDR_SIZE)
		return -ELF_ERR_BADCLASS;
	/* phnum and phentsize are 16-bit: only the addition can overflow */
	end = phoff + phnum * phentsize;
	if (end < phoff || end > len)
		return -ELF_ERR_SHORT;

	for (i = 0; i < phnum; i++) {
		const u8 *ph = h + phoff + i * phentsize;

		if (get_be(ph + P_TYPE, 4) != PT_LOAD)
			continue;
		if (n == ELF_MAX_SEGMENTS)
			return -ELF_ERR_TOOMANY;
		ret = read_load(ph, &load[n]);
		if (ret)
			return ret;
		n++;
	}
	if (!n)
		return -ELF_ERR_NOLOAD;

	ret = place(load, n, get_be(h + E_ENTRY, 8), info);
	if (ret)
		return ret;
	info->phdrs_end = end;
	return 0;
}

/* Accepts the code with either sign, as returned or as defined. */
const char *elf_strerror(int err)
{
	switch (err < 0 ? -(s64)err : err) {
	case 0:
		return "success";
	case ELF_ERR_SHORT:
		return "ELF header or program headers beyond the data";
	case ELF_ERR_BADMAGIC:
		return "not an ELF file";
	case ELF_ERR_BADCLASS:
		return "not a 64-bit big-endian PowerPC ELF";
	case ELF_ERR_NOLOAD:
		return "no PT_LOAD segment";
	case ELF_ERR_TOOMANY:
		return "too many PT_LOAD segments";
	case ELF_ERR_BADSEGMENT:
		return "bad segment sizes or entry point";
	default:
		return "unknown ELF error";
	}
}
