/*
 * The wrapper's own flattened-device-tree code (fdt.c reads, fdt_rw.c
 * writes).  One naming scheme, libfdt's conventions: node offsets are byte
 * offsets into the structure block, the root is 0; every function taking an
 * offset checks it first; errors are negative -FDT_ERR_* codes and
 * fdt_strerror() turns one into text.  All multi-byte values in the blob are
 * big-endian, which is also this CPU's byte order.
 */
#ifndef BW_FDT_H
#define BW_FDT_H

#include "types.h"

#define FDT_MAGIC		0xd00dfeedU
#define FDT_BEGIN_NODE		1
#define FDT_END_NODE		2
#define FDT_PROP		3
#define FDT_NOP			4
#define FDT_END			9
#define FDT_FIRST_VERSION	16	/* oldest version read */
#define FDT_LAST_VERSION	17	/* version written */

/*
 * Error codes, returned negated.  The names and numbers are libfdt's
 * (libfdt.h), so a code means the same here, in dtc's tools and in
 * pylibfdt; libfdt's codes this code never returns are left out.
 */
#define FDT_ERR_NOTFOUND	1	/* no such node or property */
#define FDT_ERR_EXISTS		2	/* node already exists */
#define FDT_ERR_NOSPACE		3	/* buffer too small */
#define FDT_ERR_BADOFFSET	4	/* offset is not a node/property */
#define FDT_ERR_BADPATH		5	/* malformed path */
#define FDT_ERR_TRUNCATED	8	/* structure runs past the blob */
#define FDT_ERR_BADMAGIC	9	/* not a device tree */
#define FDT_ERR_BADVERSION	10	/* version not understood */
#define FDT_ERR_BADSTRUCTURE	11	/* tokens out of order */
#define FDT_ERR_BADLAYOUT	12	/* blocks overlap or misordered */
#define FDT_ERR_BADNCELLS	14	/* #address-cells/#size-cells invalid */
#define FDT_ERR_BADVALUE	15	/* property value of the wrong size */

struct fdt_header {
	u32 magic;
	u32 totalsize;
	u32 off_dt_struct;
	u32 off_dt_strings;
	u32 off_mem_rsvmap;
	u32 version;
	u32 last_comp_version;
	u32 boot_cpuid_phys;
	u32 size_dt_strings;
	u32 size_dt_struct;
};

struct fdt_reserve_entry {
	u64 address;
	u64 size;
};

const char *fdt_strerror(int err);

/* Header checks: magic, version, block offsets and sizes inside totalsize. */
int fdt_check_header(const void *fdt);
u32 fdt_totalsize(const void *fdt);

/* Read. */
int fdt_path_offset(const void *fdt, const char *path);
int fdt_subnode_offset(const void *fdt, int parent, const char *name);
int fdt_first_subnode(const void *fdt, int node);
int fdt_next_subnode(const void *fdt, int node);
const char *fdt_get_name(const void *fdt, int node, int *lenp);
const void *fdt_getprop(const void *fdt, int node, const char *name,
			int *lenp);
/* 0..4 from the node's own #address-cells (default 2) / #size-cells (1). */
int fdt_address_cells(const void *fdt, int node);
int fdt_size_cells(const void *fdt, int node);
/* Reads a value of 'cells' 32-bit cells (1 or 2) at p into *val. */
int fdt_read_cells(const void *p, int cells, u64 *val);

int fdt_num_mem_rsv(const void *fdt);
int fdt_get_mem_rsv(const void *fdt, int n, u64 *address, u64 *size);

/* Write: a tree copied into a buffer with room to grow. */
int fdt_open_into(const void *fdt, void *buf, int bufsize);
int fdt_add_subnode(void *fdt, int parent, const char *name);
int fdt_setprop(void *fdt, int node, const char *name, const void *val,
		int len);
int fdt_setprop_u32(void *fdt, int node, const char *name, u32 val);
int fdt_setprop_u64(void *fdt, int node, const char *name, u64 val);
int fdt_setprop_string(void *fdt, int node, const char *name,
		       const char *str);
int fdt_delprop(void *fdt, int node, const char *name);
/* Shrinks totalsize to what the tree uses. */
int fdt_pack(void *fdt);

#endif
