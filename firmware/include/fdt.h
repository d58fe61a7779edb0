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
 * pylibfdt; libfdt's codes this code never returns are left out.  Codes of
 * our own are named BW_FDT_ERR_* and numbered from BW_FDT_ERR_FIRST (below),
 * clear of libfdt's numbers (1..19 today) and of those it may add.
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

/*
 * bwemu's own codes, returned (negated) by fdt_check_full() only: each names
 * one rule of the structural check (docs/kexec.md, "The structural check"),
 * where libfdt would say only TRUNCATED, BADLAYOUT or BADSTRUCTURE.
 * fdt_errclass() gives that libfdt code for each.
 */
#define BW_FDT_ERR_FIRST		64
#define BW_FDT_ERR_TOTALSIZE_SMALL	64	/* totalsize < header size */
#define BW_FDT_ERR_TOTALSIZE_LARGE	65	/* totalsize >= 2 GiB */
#define BW_FDT_ERR_RSVMAP_MISPLACED	66	/* off_mem_rsvmap: alignment, header */
#define BW_FDT_ERR_STRUCT_MISPLACED	67	/* off_dt_struct: alignment, header */
#define BW_FDT_ERR_STRINGS_MISPLACED	68	/* off_dt_strings inside the header */
#define BW_FDT_ERR_RSVMAP_PAST_END	69	/* no room for one reserve entry */
#define BW_FDT_ERR_STRUCT_PAST_END	70	/* structure block past totalsize */
#define BW_FDT_ERR_STRINGS_PAST_END	71	/* strings block past totalsize */
#define BW_FDT_ERR_STRUCT_SIZE		72	/* not a multiple of 4, under 16 */
#define BW_FDT_ERR_BLOCKS_OVERLAP	73	/* structure and strings overlap */
#define BW_FDT_ERR_RSVMAP_UNTERMINATED	74	/* no (0, 0) entry in its room */
#define BW_FDT_ERR_NO_END		75	/* block ends without FDT_END */
#define BW_FDT_ERR_BAD_TOKEN		76	/* not one of the five tokens */
#define BW_FDT_ERR_NODE_NAME		77	/* node name without its NUL */
#define BW_FDT_ERR_ROOT_NAME		78	/* the root node has a name */
#define BW_FDT_ERR_SECOND_ROOT		79	/* a node after the root closed */
#define BW_FDT_ERR_PROP_OUTSIDE		80	/* a property at depth 0 */
#define BW_FDT_ERR_PROP_PAST_END	81	/* a property past the block */
#define BW_FDT_ERR_NAME_OFFSET		82	/* name offset past the strings */
#define BW_FDT_ERR_NAME_UNTERMINATED	83	/* name without NUL in strings */
#define BW_FDT_ERR_END_NODE_OUTSIDE	84	/* END_NODE with no node open */
#define BW_FDT_ERR_NODE_OPEN		85	/* FDT_END inside an open node */
#define BW_FDT_ERR_NO_ROOT		86	/* FDT_END before any root */
#define BW_FDT_ERR_AFTER_END		87	/* v17: tokens after FDT_END */
#define BW_FDT_ERR_LAST			87

/* A buffer size for fdt_check_full() when none is known: trust totalsize. */
#define FDT_SIZE_UNKNOWN	0x7fffffffU

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
/* The libfdt code a (negated) code refines; libfdt's own map to themselves. */
int fdt_errclass(int err);

/* Header checks: magic, version, block offsets and sizes inside totalsize. */
int fdt_check_header(const void *fdt);
/*
 * The whole tree, as docs/kexec.md's structural check: the header, then the
 * reserve map, then every token of the structure block, in one pass.  0, or
 * the first rule broken as a BW_FDT_ERR_* (a libfdt code for the magic and
 * the version, and FDT_ERR_TRUNCATED when totalsize exceeds bufsize).  On
 * a tree that passes, the read functions here meet no structural error:
 * what they can still return is about values and arguments (NOTFOUND,
 * BADNCELLS, BADPATH, BADOFFSET for an offset that is not a node).
 */
int fdt_check_full(const void *fdt, u64 bufsize);
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

/*
 * Write: a tree copied into a buffer with room to grow.  The structure
 * block is copied as it is, so every node offset of the tree is the same
 * node's offset in the copy.
 */
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
