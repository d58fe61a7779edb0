/*
 * What fdt.c (reading) and fdt_rw.c (writing) share and nobody else uses:
 * the header's byte layout, big-endian accessors, and the structure-block
 * walkers fdt.c exports for fdt_rw.c.  (The test kernel links fdt.c alone.)
 */
#ifndef BW_FDT_INTERNAL_H
#define BW_FDT_INTERNAL_H

#include "types.h"

#define HDR_SIZE_V16	36	/* up to and including size_dt_strings */
#define HDR_SIZE_V17	40	/* adds size_dt_struct */
#define HDR_SIZE	HDR_SIZE_V17
#define TOKEN_SIZE	4
#define RSV_ENTRY_SIZE	16

/* Byte offsets of the header fields (struct fdt_header). */
#define HDR_MAGIC		0
#define HDR_TOTALSIZE		4
#define HDR_OFF_STRUCT		8
#define HDR_OFF_STRINGS		12
#define HDR_OFF_RSVMAP		16
#define HDR_VERSION		20
#define HDR_LAST_COMP		24
#define HDR_BOOT_CPUID		28
#define HDR_SIZE_STRINGS	32
#define HDR_SIZE_STRUCT		36

/*
 * One load and, on the little-endian host that tests this code, a byte
 * swap.  Always inlined: the walks call these for every token.
 */
static inline __attribute__((always_inline)) u32 be32(const void *p)
{
	u32 v;

	__builtin_memcpy(&v, p, sizeof(v));
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	v = __builtin_bswap32(v);
#endif
	return v;
}

static inline __attribute__((always_inline)) void put_be32(void *p, u32 v)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	v = __builtin_bswap32(v);
#endif
	__builtin_memcpy(p, &v, sizeof(v));
}

static inline __attribute__((always_inline))
u32 hdr(const void *fdt, int field)
{
	return be32((const u8 *)fdt + field);
}

int fdt__node_end(const void *fdt, int node);
int fdt__find_prop(const void *fdt, int node, const char *name, int len,
		   int *endp);
int fdt__struct_used(const void *fdt);

#endif
