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

/*
 * Our own codes: the rule of docs/kexec.md's structural check each names,
 * in that page's words, and the libfdt code it refines.
 */
#define BW(code)	[BW_FDT_ERR_##code - BW_FDT_ERR_FIRST]
static const struct {
	const char *text;
	int libfdt;
} bw_errs[BW_FDT_ERR_LAST - BW_FDT_ERR_FIRST + 1] = {
	BW(TOTALSIZE_SMALL) = { "header totalsize is smaller than the header",
				FDT_ERR_TRUNCATED },
	BW(TOTALSIZE_LARGE) = { "header totalsize is 2 GiB or more",
				FDT_ERR_BADLAYOUT },
	BW(RSVMAP_MISPLACED) = { "header off_mem_rsvmap is misaligned or "
				 "inside the header", FDT_ERR_BADLAYOUT },
	BW(STRUCT_MISPLACED) = { "header off_dt_struct is misaligned or "
				 "inside the header", FDT_ERR_BADLAYOUT },
	BW(STRINGS_MISPLACED) = { "header off_dt_strings is inside the header",
				  FDT_ERR_BADLAYOUT },
	BW(RSVMAP_PAST_END) = { "header off_mem_rsvmap leaves no room for the "
				"reserve map", FDT_ERR_TRUNCATED },
	BW(STRUCT_PAST_END) = { "structure block runs past totalsize",
				FDT_ERR_TRUNCATED },
	BW(STRINGS_PAST_END) = { "strings block runs past totalsize",
				 FDT_ERR_TRUNCATED },
	BW(STRUCT_SIZE) = { "structure block size is not a multiple of 4 or "
			    "too small for a root node", FDT_ERR_BADLAYOUT },
	BW(BLOCKS_OVERLAP) = { "structure and strings blocks overlap",
			       FDT_ERR_BADLAYOUT },
	BW(RSVMAP_UNTERMINATED) = { "memory reserve map has no (0, 0) entry "
				    "before the next block or totalsize",
				    FDT_ERR_TRUNCATED },
	BW(NO_END) = { "structure block ends without FDT_END",
		       FDT_ERR_TRUNCATED },
	BW(BAD_TOKEN) = { "unknown token in the structure block",
			  FDT_ERR_BADSTRUCTURE },
	BW(NODE_NAME) = { "a node name runs past the structure block",
			  FDT_ERR_TRUNCATED },
	BW(ROOT_NAME) = { "the root node has a name", FDT_ERR_BADSTRUCTURE },
	BW(SECOND_ROOT) = { "a second root node", FDT_ERR_BADSTRUCTURE },
	BW(PROP_OUTSIDE) = { "a property outside every node",
			     FDT_ERR_BADSTRUCTURE },
	BW(PROP_PAST_END) = { "a property runs past the structure block",
			      FDT_ERR_TRUNCATED },
	BW(NAME_OFFSET) = { "a property name offset lies past the strings "
			    "block", FDT_ERR_TRUNCATED },
	BW(NAME_UNTERMINATED) = { "a property name has no NUL inside the "
				  "strings block", FDT_ERR_TRUNCATED },
	BW(END_NODE_OUTSIDE) = { "FDT_END_NODE with no node open",
				 FDT_ERR_BADSTRUCTURE },
	BW(NODE_OPEN) = { "FDT_END inside an open node",
			  FDT_ERR_BADSTRUCTURE },
	BW(NO_ROOT) = { "no root node", FDT_ERR_BADSTRUCTURE },
	BW(AFTER_END) = { "tokens after FDT_END", FDT_ERR_BADSTRUCTURE },
};
#undef BW

static int is_bw_code(int err)
{
	return err <= -BW_FDT_ERR_FIRST && err >= -BW_FDT_ERR_LAST;
}

const char *fdt_strerror(int err)
{
	/* Codes are negative; accept 0 too.  Anything else is unknown. */
	if (err <= 0 && err > -(int)ARRAY_SIZE(fdt_errtext) &&
	    fdt_errtext[-err])
		return fdt_errtext[-err];
	if (is_bw_code(err))
		return bw_errs[-err - BW_FDT_ERR_FIRST].text;
	return "unknown device tree error";
}

int fdt_errclass(int err)
{
	return is_bw_code(err) ? -bw_errs[-err - BW_FDT_ERR_FIRST].libfdt : err;
}

u32 fdt_totalsize(const void *fdt)
{
	return hdr(fdt, HDR_TOTALSIZE);
}

static u32 header_size(const void *fdt)
{
	return hdr(fdt, HDR_VERSION) >= 17 ? HDR_SIZE_V17 : HDR_SIZE_V16;
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

/* Do two blocks share a byte?  An empty block shares none. */
static int share(u64 a, u64 alen, u64 b, u64 blen)
{
	return alen && blen && a < b + blen && b < a + alen;
}

/*
 * Rules 1-12 of docs/kexec.md's structural check, in order: the first one
 * broken, as libfdt's code (magic, version) or ours.
 */
static int header_rules(const void *fdt)
{
	u32 total, hsize, rsv, st, stsize, str, strsize;

	if (hdr(fdt, HDR_MAGIC) != FDT_MAGIC)
		return -FDT_ERR_BADMAGIC;
	if (hdr(fdt, HDR_VERSION) < FDT_FIRST_VERSION ||
	    hdr(fdt, HDR_LAST_COMP) > FDT_LAST_VERSION ||
	    hdr(fdt, HDR_LAST_COMP) > hdr(fdt, HDR_VERSION))
		return -FDT_ERR_BADVERSION;

	hsize = header_size(fdt);
	total = fdt_totalsize(fdt);
	if (total < hsize)
		return -BW_FDT_ERR_TOTALSIZE_SMALL;
	/* Keep every offset representable as a positive int. */
	if (total > 0x7fffffffU)
		return -BW_FDT_ERR_TOTALSIZE_LARGE;

	rsv = hdr(fdt, HDR_OFF_RSVMAP);
	st = hdr(fdt, HDR_OFF_STRUCT);
	str = hdr(fdt, HDR_OFF_STRINGS);
	strsize = hdr(fdt, HDR_SIZE_STRINGS);

	/* The spec's alignment: 8 for the reserve map, 4 for tokens. */
	if (rsv % 8 || rsv < hsize)
		return -BW_FDT_ERR_RSVMAP_MISPLACED;
	if (st % TOKEN_SIZE || st < hsize)
		return -BW_FDT_ERR_STRUCT_MISPLACED;
	if (str < hsize)
		return -BW_FDT_ERR_STRINGS_MISPLACED;
	stsize = struct_size(fdt);
#ifndef FAULT_NO_TOTALSIZE_CHECK
	/*
	 * (make FAULT=NO_TOTALSIZE_CHECK leaves these three out: a validation
	 * removed, for the fuzz campaign's test to catch.)
	 */
	if (!inside(rsv, RSV_ENTRY_SIZE, 0, total))
		return -BW_FDT_ERR_RSVMAP_PAST_END;
	if (st > total)
		return -BW_FDT_ERR_STRUCT_PAST_END;
	if (!inside(st, stsize, 0, total))
		return -BW_FDT_ERR_STRUCT_PAST_END;
	if (!inside(str, strsize, 0, total))
		return -BW_FDT_ERR_STRINGS_PAST_END;
#endif
	/* At least a root BEGIN_NODE, its empty name, END_NODE and END. */
	if (stsize % TOKEN_SIZE || stsize < 4 * TOKEN_SIZE)
		return -BW_FDT_ERR_STRUCT_SIZE;
	if (share(st, stsize, str, strsize))
		return -BW_FDT_ERR_BLOCKS_OVERLAP;
	return 0;
}

int fdt_check_header(const void *fdt)
{
	return fdt_errclass(header_rules(fdt));
}

/*
 * Where a public entry point finds the blocks, read from the header once
 * per call rather than once per token.
 */
struct view {
	const u8 *st;		/* the structure block */
	u32 st_size;
	const char *str;	/* the strings block */
	u32 str_size;
};

static void view_fill(const void *fdt, struct view *v)
{
	v->st = (const u8 *)fdt + hdr(fdt, HDR_OFF_STRUCT);
	v->st_size = struct_size(fdt);
	v->str = (const char *)fdt + hdr(fdt, HDR_OFF_STRINGS);
	v->str_size = hdr(fdt, HDR_SIZE_STRINGS);
}

/* The header check every public entry point starts with, and the view. */
static int view_of(const void *fdt, struct view *v)
{
	int err = fdt_check_header(fdt);

	if (!err)
		view_fill(fdt, v);
	return err;
}

/*
 * Reads the token at 'off' and finds where the next one starts.  Returns
 * the token, or a negative error when 'off' is misaligned or the token (with
 * its name or value) runs past the structure block.
 */
static int next_tag(const struct view *v, int off, int *next)
{
	const u8 *base = v->st, *nul;
	u32 size = v->st_size, tag, len;
	u64 end;

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

/* Is 'node' the offset of a BEGIN_NODE token?  0 or -FDT_ERR_BADOFFSET. */
static int check_node(const struct view *v, int node)
{
	if (node < 0 || node % TOKEN_SIZE ||
	    (u32)node + TOKEN_SIZE > v->st_size)
		return -FDT_ERR_BADOFFSET;
	/* Not a node at all is the caller's error; a node cut short is not. */
	if (be32(v->st + node) != FDT_BEGIN_NODE)
		return -FDT_ERR_BADOFFSET;
	return 0;
}

/*
 * Checks that 'node' is the offset of a BEGIN_NODE token; returns the
 * offset just past the node's name, or an error.
 */
static int node_body(const struct view *v, int node)
{
	int next, tag = check_node(v, node);

	if (tag)
		return tag;
	tag = next_tag(v, node, &next);
	return tag < 0 ? tag : next;
}

/*
 * From 'off' inside a node (after its name or after one of its children),
 * skips properties and NOPs.  Returns the offset of the next BEGIN_NODE or
 * END_NODE token, with *tagp set to which one it is.
 */
static int skip_props(const struct view *v, int off, int *tagp)
{
	int next, tag;

	for (;;) {
		tag = next_tag(v, off, &next);
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
static int node_end(const struct view *v, int node)
{
	int depth = 0, off = node, next, tag;

	do {
		tag = next_tag(v, off, &next);
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

int fdt__node_end(const void *fdt, int node)
{
	struct view v;

	view_fill(fdt, &v);
	return node_end(&v, node);
}

/* Offset of the first child (BEGIN_NODE) at or after 'off', or an error. */
static int child_at(const struct view *v, int off)
{
	int tag;

	off = skip_props(v, off, &tag);
	if (off < 0)
		return off;
	return tag == FDT_BEGIN_NODE ? off : -FDT_ERR_NOTFOUND;
}

/* The sibling after 'node', a node already checked. */
static int next_sibling(const struct view *v, int node)
{
	int end = node_end(v, node);

	return end < 0 ? end : child_at(v, end);
}

int fdt_first_subnode(const void *fdt, int node)
{
	struct view v;
	int body = view_of(fdt, &v);

	if (!body)
		body = node_body(&v, node);
	if (body < 0)
		return body;
	return child_at(&v, body);
}

int fdt_next_subnode(const void *fdt, int node)
{
	struct view v;
	int err = view_of(fdt, &v);

	if (!err)
		err = check_node(&v, node);
	/* node_end reads the node's own token (and name) first. */
	return err ? err : next_sibling(&v, node);
}

const char *fdt_get_name(const void *fdt, int node, int *lenp)
{
	struct view v;
	int err = view_of(fdt, &v);
	const char *name = NULL, *nul = NULL;

	if (!err)
		err = check_node(&v, node);
	if (!err) {
		name = (const char *)v.st + node + TOKEN_SIZE;
		nul = memchr(name, 0, v.st_size - node - TOKEN_SIZE);
		if (!nul)
			err = -FDT_ERR_TRUNCATED;
	}
	if (lenp)
		*lenp = err ? err : (int)(nul - name);
	return err ? NULL : name;
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

/* One pass over the children of 'parent' for the first that matches. */
static int subnode_namelen(const struct view *v, int parent,
			   const char *name, int len)
{
	int child = node_body(v, parent);

	if (child < 0)
		return child;
	for (child = child_at(v, child); child >= 0;
	     child = next_sibling(v, child))
		if (name_matches((const char *)v->st + child + TOKEN_SIZE,
				 name, len))
			return child;
	return child;
}

int fdt_subnode_offset(const void *fdt, int parent, const char *name)
{
	struct view v;
	int err = view_of(fdt, &v);

	return err ? err : subnode_namelen(&v, parent, name,
					   (int)strlen(name));
}

int fdt_path_offset(const void *fdt, const char *path)
{
	struct view v;
	int err = view_of(fdt, &v);
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
		node = subnode_namelen(&v, node, path, len);
		if (node < 0)
			return node;
		path += len;
	}
}

/*
 * The property name at 'nameoff' in the strings block, or NULL when the
 * offset or the string's terminator falls outside the block.
 */
static const char *string_at(const struct view *v, u32 nameoff)
{
	if (nameoff >= v->str_size ||
	    !memchr(v->str + nameoff, 0, v->str_size - nameoff))
		return NULL;
	return v->str + nameoff;
}

/*
 * Finds property 'name' (len bytes) in 'node'.  Returns the offset of its
 * PROP token, or -FDT_ERR_NOTFOUND, or another error.  Also reports, via
 * *endp when given, where the node's property list ends (where a new
 * property would be appended).
 */
static int find_prop(const struct view *v, int node, const char *name,
		     int len, int *endp)
{
	const char *pname;
	int off = node_body(v, node);
	int next, tag;

	if (off < 0)
		return off;
	for (;; off = next) {
		tag = next_tag(v, off, &next);
		if (tag < 0)
			return tag;
		if (tag == FDT_NOP)
			continue;
		if (tag == FDT_END)
			return -FDT_ERR_BADSTRUCTURE;
		if (tag != FDT_PROP)
			break;
		pname = string_at(v, be32(v->st + off + 2 * TOKEN_SIZE));
		if (!pname)
			return -FDT_ERR_TRUNCATED;
		if (!strncmp(pname, name, len) && pname[len] == '\0')
			return off;
	}
	if (endp)
		*endp = off;
	return -FDT_ERR_NOTFOUND;
}

int fdt__find_prop(const void *fdt, int node, const char *name, int len,
		   int *endp)
{
	struct view v;
	int err = view_of(fdt, &v);

	return err ? err : find_prop(&v, node, name, len, endp);
}

const void *fdt_getprop(const void *fdt, int node, const char *name,
			int *lenp)
{
	struct view v;
	int off = view_of(fdt, &v);
	const u8 *p;

	if (!off)
		off = find_prop(&v, node, name, (int)strlen(name), NULL);
	if (off < 0) {
		if (lenp)
			*lenp = off;
		return NULL;
	}
	p = v.st + off;
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
 * must come before totalsize and before any block that follows the map,
 * and no block that starts before the map may reach into it (docs/kexec.md,
 * rule 13).  Returns where the map's room ends.
 */
static u32 rsvmap_limit(const void *fdt)
{
	u32 rsv = hdr(fdt, HDR_OFF_RSVMAP);
	u32 limit = fdt_totalsize(fdt);
	u32 off[2] = { hdr(fdt, HDR_OFF_STRUCT), hdr(fdt, HDR_OFF_STRINGS) };
	u32 size[2] = { struct_size(fdt), hdr(fdt, HDR_SIZE_STRINGS) };
	int i;

	for (i = 0; i < 2; i++) {
		if (!size[i])
			continue;
		if (off[i] >= rsv) {
			if (off[i] < limit)
				limit = off[i];
		} else if ((u64)off[i] + size[i] > rsv) {
			return rsv;	/* the block covers the map's start */
		}
	}
	return limit;
}

/* Entry n, when it lies inside the map's room (which ends at 'limit'). */
static int rsv_entry(const void *fdt, u32 limit, int n, u64 *address,
		     u64 *size)
{
	u64 off = hdr(fdt, HDR_OFF_RSVMAP) + (u64)n * RSV_ENTRY_SIZE;
	const u8 *p = (const u8 *)fdt + off;

	if (!inside(off, RSV_ENTRY_SIZE, 0, limit))
		return -FDT_ERR_TRUNCATED;
	fdt_read_cells(p, 2, address);
	fdt_read_cells(p + 8, 2, size);
	return 0;
}

int fdt_num_mem_rsv(const void *fdt)
{
	int err = fdt_check_header(fdt);
	u64 addr, size;
	u32 limit;
	int n;

	if (err)
		return err;
	limit = rsvmap_limit(fdt);
	for (n = 0;; n++) {
		err = rsv_entry(fdt, limit, n, &addr, &size);
		if (err)
			return err;
		if (!addr && !size)
			return n;
	}
}

/*
 * In constant time, so that reading a map of n entries is linear: entry n
 * is checked to lie inside the map's room and not to be the terminator,
 * but not that no earlier entry is one.  Take n below fdt_num_mem_rsv().
 */
int fdt_get_mem_rsv(const void *fdt, int n, u64 *address, u64 *size)
{
	int err = fdt_check_header(fdt);
	u64 a, s;

	if (err)
		return err;
	if (n < 0)
		return -FDT_ERR_NOTFOUND;
	err = rsv_entry(fdt, rsvmap_limit(fdt), n, &a, &s);
	if (err)
		return err;
	if (!a && !s)
		return -FDT_ERR_NOTFOUND;
	*address = a;
	*size = s;
	return 0;
}

/*
 * docs/kexec.md's structural check, rules 1-26, in one pass: the header,
 * the reserve map, then every token of the structure block with its
 * nesting and its property names.
 */
int fdt_check_full(const void *fdt, u64 bufsize)
{
	struct view v;
	const u8 *name, *nul;
	int err, depth = 0, root = 0;
	u32 off = 0, next, len, nameoff;

	/* Enough of the buffer to read the header's fields at all. */
	if (bufsize < HDR_SIZE_V16 ||
	    (hdr(fdt, HDR_VERSION) >= 17 && bufsize < HDR_SIZE_V17))
		return -FDT_ERR_TRUNCATED;
	err = header_rules(fdt);
	if (err)
		return err;
	if (fdt_totalsize(fdt) > bufsize)
		return -FDT_ERR_TRUNCATED;
	if (fdt_num_mem_rsv(fdt) < 0)
		return -BW_FDT_ERR_RSVMAP_UNTERMINATED;

	/*
	 * The block's size is a multiple of 4 and every step keeps 'off' one,
	 * so a token's word is whole whenever off < v.st_size.
	 */
	view_fill(fdt, &v);
	for (;; off = next) {
		if (off >= v.st_size)
			return -BW_FDT_ERR_NO_END;
		switch (be32(v.st + off)) {
		case FDT_BEGIN_NODE:
			name = v.st + off + TOKEN_SIZE;
			nul = memchr(name, 0, v.st_size - off - TOKEN_SIZE);
			if (!nul)
				return -BW_FDT_ERR_NODE_NAME;
			if (depth == 0) {
				if (root)
					return -BW_FDT_ERR_SECOND_ROOT;
				if (nul != name)
					return -BW_FDT_ERR_ROOT_NAME;
				root = 1;
			}
			depth++;
			next = (u32)ALIGN_UP((u64)(nul - v.st) + 1, TOKEN_SIZE);
			break;
		case FDT_PROP:
			if (depth == 0)
				return -BW_FDT_ERR_PROP_OUTSIDE;
			if (!inside(off, 3 * TOKEN_SIZE, 0, v.st_size))
				return -BW_FDT_ERR_PROP_PAST_END;
			len = be32(v.st + off + TOKEN_SIZE);
			if (!inside((u64)off + 3 * TOKEN_SIZE, len, 0, v.st_size))
				return -BW_FDT_ERR_PROP_PAST_END;
			nameoff = be32(v.st + off + 2 * TOKEN_SIZE);
			if (nameoff >= v.str_size)
				return -BW_FDT_ERR_NAME_OFFSET;
			if (!memchr(v.str + nameoff, 0, v.str_size - nameoff))
				return -BW_FDT_ERR_NAME_UNTERMINATED;
			next = (u32)ALIGN_UP((u64)off + 3 * TOKEN_SIZE + len,
					     TOKEN_SIZE);
			break;
		case FDT_END_NODE:
			if (depth == 0)
				return -BW_FDT_ERR_END_NODE_OUTSIDE;
			depth--;
			next = off + TOKEN_SIZE;
			break;
		case FDT_NOP:
			next = off + TOKEN_SIZE;
			break;
		case FDT_END:
			if (depth)
				return -BW_FDT_ERR_NODE_OPEN;
			if (!root)
				return -BW_FDT_ERR_NO_ROOT;
			/* Version 16: the block is taken to end here. */
			if (hdr(fdt, HDR_VERSION) >= 17 &&
			    off + TOKEN_SIZE != v.st_size)
				return -BW_FDT_ERR_AFTER_END;
			return 0;
		default:
			return -BW_FDT_ERR_BAD_TOKEN;
		}
	}
}

/*
 * Offset just past the structure block's END token: the part a copy of
 * the tree needs.  A version 16 header does not record the block's size,
 * and a version 17 block may carry slack after END (fdt_check_full refuses
 * it, fdt_open_into drops it); either way the walk is bounded by the block.
 */
int fdt__struct_used(const void *fdt)
{
	struct view v;
	int off = 0, next, tag;

	view_fill(fdt, &v);
	do {
		tag = next_tag(&v, off, &next);
		if (tag < 0)
			return tag;
		off = next;
	} while (tag != FDT_END);
	return off;
}
