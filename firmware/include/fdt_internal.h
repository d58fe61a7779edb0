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

/* Byte-wise, so the same code is right on the little-endian host too. */
static inline u32 be32(const void *p)
{
	const u8 *b = p;

	return ((u32)b[0] << 24) | ((u32)b[1] << 16) | ((u32)b[2] << 8) | b[3];
}

static inline void put_be32(void *p, u32 v)
{
	u8 *b = p;

	b[0] = v >> 24;
	b[1] = v >> 16;
	b[2] = v >> 8;
	b[3] = v;
}

static inline u32 hdr(const void *fdt, int field)
{
	return be32((const u8 *)fdt + field);
}

int fdt__next_tag(const void *fdt, int off, int *next);
int fdt__node_body(const void *fdt, int node);
int fdt__node_end(const void *fdt, int node);
int fdt__subnode_namelen(const void *fdt, int parent, const char *name,
			 int len);
const char *fdt__string(const void *fdt, u32 nameoff);
int fdt__find_prop(const void *fdt, int node, const char *name, int len,
		   int *endp);

#endif
