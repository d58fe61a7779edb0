/*
 * The test kernel proper: checks the device tree it was handed, finds the
 * initrd through /chosen and checksums it, and reports all of it to the
 * emulator with one hypercall (docs/guest-abi.md).  It carries a tiny
 * read-only walk of the tree of its own rather than the wrapper's fdt.c,
 * so that a bug there cannot hide itself here.
 */
#include "types.h"
#include "guest_abi.h"

long kernel_hcall(u64 nr, u64 a1, u64 a2, u64 a3, u64 a4, u64 a5, u64 a6,
		  u64 a7);

static u32 be32(const u8 *p)
{
	return (u32)p[0] << 24 | (u32)p[1] << 16 | (u32)p[2] << 8 | p[3];
}

static u64 read_number(const u8 *p, u32 len)
{
	u64 v = 0;
	u32 i;

	for (i = 0; i < len; i++)
		v = v << 8 | p[i];
	return v;
}

static int streq(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

/* Finds /chosen's initrd properties; returns BWK_INITRD when both exist. */
static u64 find_initrd(const u8 *fdt, u64 *start, u64 *end)
{
	u32 off_struct = be32(fdt + 8), off_strings = be32(fdt + 12);
	u32 size_struct = be32(fdt + 36);
	const u8 *p = fdt + off_struct, *limit = p + size_struct;
	int depth = 0, in_chosen = 0, found = 0;

	while (p + 4 <= limit) {
		u32 tag = be32(p);

		p += 4;
		if (tag == 1) {			/* FDT_BEGIN_NODE */
			const char *name = (const char *)p;

			depth++;
			if (depth == 2 && streq(name, "chosen"))
				in_chosen = 1;
			while (*p)
				p++;
			p = (const u8 *)(((u64)p + 4) & ~3ULL);
		} else if (tag == 2) {		/* FDT_END_NODE */
			if (depth == 2)
				in_chosen = 0;
			depth--;
		} else if (tag == 3) {		/* FDT_PROP */
			u32 len = be32(p), nameoff = be32(p + 4);
			const char *name = (const char *)fdt + off_strings +
					   nameoff;

			if (in_chosen && len <= 8) {
				if (streq(name, "linux,initrd-start")) {
					*start = read_number(p + 8, len);
					found |= 1;
				} else if (streq(name, "linux,initrd-end")) {
					*end = read_number(p + 8, len);
					found |= 2;
				}
			}
			p += 8 + ((len + 3) & ~3U);
		} else if (tag == 9) {		/* FDT_END */
			break;
		}
	}
	return found == 3 ? BWK_INITRD : 0;
}

void kernel_main(const u8 *fdt, u64 placed_at, u64 ran_from)
{
	u64 status = BWK_RELOCATED, start = 0, end = 0, sum = 0;

	if (ran_from == 0)
		status = 0;
	if (be32(fdt) == 0xd00dfeed) {
		status |= BWK_DTB_MAGIC;
		status |= find_initrd(fdt, &start, &end);
		if ((status & BWK_INITRD) && end > start)
			sum = bwk_checksum((const u8 *)start, end - start);
	}
	kernel_hcall(H_BWEMU_KERNEL_REPORT, (u64)fdt, placed_at, status,
		     start, end, sum, ran_from);
	for (;;)
		;
}
