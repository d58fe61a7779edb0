/*
 * Reading a flattened device tree (Devicetree Specification v0.4, ch. 5).
 *
 * The blob may come from anywhere (firmware, a test, a fuzzer), so nothing
 * in it is trusted: every public entry point re-validates the header first,
 * every offset is checked before use, and every read is bounded by the
 * block it belongs to.  Walks only ever move forward by at least one token,
 * so a corrupt tree ends in an error code, never in a loop or a stray read.
 *
 * Values are read byte by byte in big-endian order, which makes the same
 * code correct on the (little-endian) host that tests it.
 */
#include "types.h"
#include "string.h"
#include "fdt.h"
#include "fdt_internal.h"

/* Indexed by the code; libfdt's codes we do not use have no text. */
static const char *const fdt_errtext[] = {
	[0]			= "no error",
	[FDT_ERR_NOTFOUND]	= "no such node or property",
	[FDT_ERR_EXISTS]	= "node already exists",
	[FDT_ERR_NOSPACE]	= "not enough room in the tree's buffer",
	[FDT_ERR_BADOFFSET]	= "offset is not a node or property",
	[FDT_ERR_BADPATH]	= "malformed path or name",
	[FDT_ERR_TRUNCATED]	= "tree runs past the end of its block",
	[FDT_ERR_BADMAGIC]	= "bad magic: not a device tree",
	[FDT_ERR_BADVERSION]	= "device tree version not understood",
	[FDT_ERR_BADSTRUCTURE]	= "structure block tokens out of order",
	[FDT_ERR_BADLAYOUT]	= "device tree blocks misplaced or overlapping",
	[FDT_ERR_BADNCELLS]	= "bad #address-cells or #size-cells",
	[FDT_ERR_BADVALUE]	= "property value of the wrong size",
};

const char *fdt_strerror(int err)
{
	/* Codes are negative; accept 0 too.  Anything else is unknown. */
	if (err <= 0 && err > -(int)ARRAY_SIZE(fdt_errtext) &&
	    fdt_errtext[-err])
		return fdt_errtext[-err];
	return "unknown device tree error";
}

u32 fdt_totalsize(const void *fdt)
{
	return hdr(fdt, HDR_TOTALSIZE);
}

/*
 * Size of the structure block.  Version 16 headers do not record it, so
 * there it is bounded by whichever comes first after the block: the strings
 * block or the end of the tree.
 */
static u32 struct_size(const void *fdt)
{
	u32 off = hdr(fdt, HDR_OFF_STRUCT);
	u32 strings = hdr(fdt, HDR_OFF_STRINGS);

	if (hdr(fdt, HDR_VERSION) >= 17)
		return hdr(fdt, HDR_SIZE_STRUCT);
	if (strings >= off)
		return strings - off;
	return fdt_totalsize(fdt) - off;
}

/* Does [off, off + size) lie inside [start, end)?  64-bit: no overflow. */
static int inside(u64 off, u64 size, u64 start, u64 end)
{
	return off >= start && off + size <= end;
}

static int disjoint(u64 a, u64 alen, u64 b, u64 blen)
{
	return a + alen <= b || b + blen <= a;
}

int fdt_check_header(const void *fdt)
{
	u32 total, hsize, rsv, st, stsize, str, strsize;

	if (hdr(fdt, HDR_MAGIC) != FDT_MAGIC)
		return -FDT_ERR_BADMAGIC;
	if (hdr(fdt, HDR_VERSION) < FDT_FIRST_VERSION ||
	    hdr(fdt, HDR_LAST_COMP) > FDT_LAST_VERSION ||
	    hdr(fdt, HDR_LAST_COMP) > hdr(fdt, HDR_VERSION))
		return -FDT_ERR_BADVERSION;

	hsize = hdr(fdt, HDR_VERSION) >= 17 ? HDR_SIZE_V17 : HDR_SIZE_V16;
	total = fdt_totalsize(fdt);
	if (total < hsize)
		return -FDT_ERR_TRUNCATED;
	/* Keep every offset representable as a positive int. */
	if (total > 0x7fffffffU)
		return -FDT_ERR_BADLAYOUT;

	rsv = hdr(fdt, HDR_OFF_RSVMAP);
	st = hdr(fdt, HDR_OFF_STRUCT);
	str = hdr(fdt, HDR_OFF_STRINGS);
	strsize = hdr(fdt, HDR_SIZE_STRINGS);

	/* The spec's alignment: 8 for the reserve map, 4 for tokens. */
	if (rsv % 8 || st % TOKEN_SIZE)
		return -FDT_ERR_BADLAYOUT;
	if (rsv < hsize || st < hsize || str < hsize)
		return -FDT_ERR_BADLAYOUT;
	if (!inside(rsv, RSV_ENTRY_SIZE, 0, total) || st > total ||
	    !inside(str, strsize, 0, total))
		return -FDT_ERR_TRUNCATED;

	stsize = struct_size(fdt);
	if (!inside(st, stsize, 0, total))
		return -FDT_ERR_TRUNCATED;
	/* At least a root BEGIN_NODE, its empty name, END_NODE and END. */
	if (stsize % TOKEN_SIZE || stsize < 4 * TOKEN_SIZE)
		return -FDT_ERR_BADLAYOUT;
	if (!disjoint(st, stsize, str, strsize))
		return -FDT_ERR_BADLAYOUT;
	return 0;
}

/* The structure block's start and size, for a tree already checked. */
static const u8 *struct_base(const void *fdt)
{
	return (const u8 *)fdt + hdr(fdt, HDR_OFF_STRUCT);
}

/*
 * Reads the token at 'off' and finds where the next one starts.  Returns
 * the token, or a negative error when 'off' is misaligned or the token (with
 * its name or value) runs past the structure block.
 */
int fdt__next_tag(const void *fdt, int off, int *next)
{
	const u8 *base = struct_base(fdt);
	u32 size = struct_size(fdt);
	u32 tag, len;
	u64 end;
	const u8 *nul;

	if (off < 0 || off % TOKEN_SIZE)
		return -FDT_ERR_BADOFFSET;
	if (!inside(off, TOKEN_SIZE, 0, size))
		return -FDT_ERR_TRUNCATED;
	tag = be32(base + off);
	switch (tag) {
	case FDT_BEGIN_NODE:
		nul = memchr(base + off + TOKEN_SIZE, 0,
			     size - off - TOKEN_SIZE);
		if (!nul)
			return -FDT_ERR_TRUNCATED;
		end = ALIGN_UP((u64)(nul - base) + 1, TOKEN_SIZE);
		break;
	case FDT_PROP:
		if (!inside(off, 3 * TOKEN_SIZE, 0, size))
			return -FDT_ERR_TRUNCATED;
		len = be32(base + off + TOKEN_SIZE);
		end = ALIGN_UP((u64)off + 3 * TOKEN_SIZE + len, TOKEN_SIZE);
		break;
	case FDT_END_NODE:
	case FDT_NOP:
	case FDT_END:
		end = (u64)off + TOKEN_SIZE;
		break;
	default:
		return -FDT_ERR_BADSTRUCTURE;
	}
	if (end > size)
		return -FDT_ERR_TRUNCATED;
	*next = (int)end;
	return (int)tag;
}

/*
 * Checks that 'node' is the offset of a BEGIN_NODE token in a tree with a
 * sound header; returns the offset just past the node's name, or an error.
 */
int fdt__node_body(const void *fdt, int node)
{
	int err = fdt_check_header(fdt);
	int next, tag;

	if (err)
		return err;
	if (node < 0 || node % TOKEN_SIZE ||
	    (u32)node + TOKEN_SIZE > struct_size(fdt))
		return -FDT_ERR_BADOFFSET;
	/* Not a node at all is the caller's error; a node cut short is not. */
	if (be32(struct_base(fdt) + node) != FDT_BEGIN_NODE)
		return -FDT_ERR_BADOFFSET;
	tag = fdt__next_tag(fdt, node, &next);
	return tag < 0 ? tag : next;
}

/*
 * From 'off' inside a node (after its name or after one of its children),
 * skips properties and NOPs.  Returns the offset of the next BEGIN_NODE or
 * END_NODE token, with *tagp set to which one it is.
 */
static int skip_props(const void *fdt, int off, int *tagp)
{
	int next, tag;

	for (;;) {
		tag = fdt__next_tag(fdt, off, &next);
		if (tag < 0)
			return tag;
		if (tag == FDT_BEGIN_NODE || tag == FDT_END_NODE) {
			*tagp = tag;
			return off;
		}
		if (tag == FDT_END)
			return -FDT_ERR_BADSTRUCTURE;
		off = next;
	}
}

/* Offset just past the END_NODE that closes the node at 'node'. */
int fdt__node_end(const void *fdt, int node)
{
	int depth = 0, off = node, next, tag;

	do {
		tag = fdt__next_tag(fdt, off, &next);
		if (tag < 0)
			return tag;
		if (tag == FDT_BEGIN_NODE)
			depth++;
		else if (tag == FDT_END_NODE)
			depth--;
		else if (tag == FDT_END)
			return -FDT_ERR_BADSTRUCTURE;
		off = next;
	} while (depth > 0);
	return off;
}

/* Offset of the first child (BEGIN_NODE) at or after 'off', or an error. */
static int child_at(const void *fdt, int off)
{
	int tag;

	off = skip_props(fdt, off, &tag);
	if (off < 0)
		return off;
	return tag == FDT_BEGIN_NODE ? off : -FDT_ERR_NOTFOUND;
}

int fdt_first_subnode(const void *fdt, int node)
{
	int body = fdt__node_body(fdt, node);

	if (body < 0)
		return body;
	return child_at(fdt, body);
}

int fdt_next_subnode(const void *fdt, int node)
{
	int end = fdt__node_body(fdt, node);

	if (end < 0)
		return end;
	end = fdt__node_end(fdt, node);
	if (end < 0)
		return end;
	return child_at(fdt, end);
}

const char *fdt_get_name(const void *fdt, int node, int *lenp)
{
	int body = fdt__node_body(fdt, node);
	const char *name;

	if (body < 0) {
		if (lenp)
			*lenp = body;
		return NULL;
	}
	/* fdt__next_tag found the terminating NUL inside the block. */
	name = (const char *)struct_base(fdt) + node + TOKEN_SIZE;
	if (lenp)
		*lenp = (int)strlen(name);
	return name;
}

/*
 * Does the node name 'node' match the path component name[0..len)?  Either
 * exactly, or, when the component has no unit address, up to the node's '@'
 * ("memory" matches "memory@0").
 */
static int name_matches(const char *node, const char *name, int len)
{
	if (strncmp(node, name, len))
		return 0;
	if (node[len] == '\0')
		return 1;
	return node[len] == '@' && !memchr(name, '@', len);
}

int fdt__subnode_namelen(const void *fdt, int parent, const char *name,
			 int len)
{
	int child = fdt_first_subnode(fdt, parent);
	const char *cname;

	while (child >= 0) {
		cname = (const char *)struct_base(fdt) + child + TOKEN_SIZE;
		if (name_matches(cname, name, len))
			return child;
		child = fdt_next_subnode(fdt, child);
	}
	return child;
}

int fdt_subnode_offset(const void *fdt, int parent, const char *name)
{
	return fdt__subnode_namelen(fdt, parent, name, (int)strlen(name));
}

int fdt_path_offset(const void *fdt, const char *path)
{
	int err = fdt_check_header(fdt);
	int node = 0, len;

	if (err)
		return err;
	/* Only absolute paths: this code knows no aliases. */
	if (path[0] != '/')
		return -FDT_ERR_BADPATH;
	for (;;) {
		while (*path == '/')
			path++;
		if (*path == '\0')
			return node;
		for (len = 0; path[len] && path[len] != '/'; len++)
			;
		node = fdt__subnode_namelen(fdt, node, path, len);
		if (node < 0)
			return node;
		path += len;
	}
}

/*
 * The property name at 'nameoff' in the strings block, or NULL when the
 * offset or the string's terminator falls outside the block.
 */
const char *fdt__string(const void *fdt, u32 nameoff)
{
	const char *strs = (const char *)fdt + hdr(fdt, HDR_OFF_STRINGS);
	u32 size = hdr(fdt, HDR_SIZE_STRINGS);

	if (nameoff >= size || !memchr(strs + nameoff, 0, size - nameoff))
		return NULL;
	return strs + nameoff;
}

/*
 * Finds property 'name' (len bytes) in 'node'.  Returns the offset of its
 * PROP token, or -FDT_ERR_NOTFOUND, or another error.  Also reports, via
 * *endp when given, where the node's property list ends (where a new
 * property would be appended).
 */
int fdt__find_prop(const void *fdt, int node, const char *name, int len,
		   int *endp)
{
	const u8 *base;
	const char *pname;
	int off = fdt__node_body(fdt, node);
	int next, tag;

	if (off < 0)
		return off;
	base = struct_base(fdt);
	for (;; off = next) {
		tag = fdt__next_tag(fdt, off, &next);
		if (tag < 0)
			return tag;
		if (tag == FDT_NOP)
			continue;
		if (tag == FDT_END)
			return -FDT_ERR_BADSTRUCTURE;
		if (tag != FDT_PROP)
			break;
		pname = fdt__string(fdt, be32(base + off + 2 * TOKEN_SIZE));
		if (!pname)
			return -FDT_ERR_TRUNCATED;
		if (!strncmp(pname, name, len) && pname[len] == '\0')
			return off;
	}
	if (endp)
		*endp = off;
	return -FDT_ERR_NOTFOUND;
}

const void *fdt_getprop(const void *fdt, int node, const char *name,
			int *lenp)
{
	int off = fdt__find_prop(fdt, node, name, (int)strlen(name), NULL);
	const u8 *p;

	if (off < 0) {
		if (lenp)
			*lenp = off;
		return NULL;
	}
	p = struct_base(fdt) + off;
	if (lenp)
		*lenp = (int)be32(p + TOKEN_SIZE);
	return p + 3 * TOKEN_SIZE;
}

static int read_ncells(const void *fdt, int node, const char *name, int dflt)
{
	int len;
	const u8 *p = fdt_getprop(fdt, node, name, &len);
	u32 val;

	if (!p)
		return len == -FDT_ERR_NOTFOUND ? dflt : len;
	if (len != 4)
		return -FDT_ERR_BADNCELLS;
	/* 0 is valid (the spec's /cpus has #size-cells = <0>); past 4, not. */
	val = be32(p);
	if (val > 4)
		return -FDT_ERR_BADNCELLS;
	return (int)val;
}

int fdt_address_cells(const void *fdt, int node)
{
	return read_ncells(fdt, node, "#address-cells", 2);
}

int fdt_size_cells(const void *fdt, int node)
{
	return read_ncells(fdt, node, "#size-cells", 1);
}

/*
 * One or two cells give the value directly.  Three or four cells are
 * accepted only when the leading cells are zero, i.e. when the number fits
 * in 64 bits; anything wider (or a cell count outside 1..4) is
 * -FDT_ERR_BADNCELLS, so a caller never silently loses high bits.
 */
int fdt_read_cells(const void *p, int cells, u64 *val)
{
	const u8 *b = p;
	int i;

	if (cells < 1 || cells > 4)
		return -FDT_ERR_BADNCELLS;
	for (i = 0; i < cells - 2; i++)
		if (be32(b + 4 * i))
			return -FDT_ERR_BADNCELLS;
	if (cells > 2)
		b += 4 * (cells - 2);
	if (cells == 1)
		*val = be32(b);
	else
		*val = ((u64)be32(b) << 32) | be32(b + 4);
	return 0;
}

/*
 * The reserve map has no size field: it ends at its {0, 0} entry, which
 * must come before the next block that follows the map (or the tree's end).
 */
static u32 rsvmap_limit(const void *fdt)
{
	u32 rsv = hdr(fdt, HDR_OFF_RSVMAP);
	u32 limit = fdt_totalsize(fdt);
	u32 st = hdr(fdt, HDR_OFF_STRUCT);
	u32 str = hdr(fdt, HDR_OFF_STRINGS);

	if (st > rsv && st < limit)
		limit = st;
	if (str > rsv && str < limit && hdr(fdt, HDR_SIZE_STRINGS))
		limit = str;
	return limit;
}

static int rsv_entry(const void *fdt, int n, u64 *address, u64 *size)
{
	u64 off = hdr(fdt, HDR_OFF_RSVMAP) + (u64)n * RSV_ENTRY_SIZE;
	const u8 *p = (const u8 *)fdt + off;

	if (!inside(off, RSV_ENTRY_SIZE, 0, rsvmap_limit(fdt)))
		return -FDT_ERR_TRUNCATED;
	fdt_read_cells(p, 2, address);
	fdt_read_cells(p + 8, 2, size);
	return 0;
}

int fdt_num_mem_rsv(const void *fdt)
{
	int err = fdt_check_header(fdt);
	u64 addr, size;
	int n;

	if (err)
		return err;
	for (n = 0;; n++) {
		err = rsv_entry(fdt, n, &addr, &size);
		if (err)
			return err;
		if (!addr && !size)
			return n;
	}
}

int fdt_get_mem_rsv(const void *fdt, int n, u64 *address, u64 *size)
{
	int count = fdt_num_mem_rsv(fdt);

	if (count < 0)
		return count;
	if (n < 0 || n >= count)
		return -FDT_ERR_NOTFOUND;
	return rsv_entry(fdt, n, address, size);
}
