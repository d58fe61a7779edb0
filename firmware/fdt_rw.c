/*
 * Changing a flattened device tree in place.
 *
 * fdt_open_into() lays a tree out as header, reserve map, structure block,
 * strings block, in that order, in a buffer whose whole size becomes the
 * tree's totalsize; the free room is at the end.  Every edit then splices
 * the structure block: everything from the edit point to the end of the
 * strings block moves up or down in one memmove, so the order stays and the
 * free room stays at the end.  fdt_pack() gives the free room back.
 *
 * Edits move the bytes after them, so node and property offsets taken
 * before an edit are stale after it (except those before the edit point),
 * and a value passed to fdt_setprop() must not point into the tree itself.
 */
#include "types.h"
#include "string.h"
#include "fdt.h"
#include "fdt_internal.h"

#define PROP_HDR_SIZE	(3 * TOKEN_SIZE)	/* token, len, nameoff */

static void set_hdr(void *fdt, int field, u32 v)
{
	put_be32((u8 *)fdt + field, v);
}

static u8 *struct_base(void *fdt)
{
	return (u8 *)fdt + hdr(fdt, HDR_OFF_STRUCT);
}

/*
 * A tree we may edit: sound header, version 17 (it records the structure
 * block's size), and the blocks in the order fdt_open_into() writes them.
 */
static int check_rw(const void *fdt)
{
	int err = fdt_check_header(fdt);

	if (err)
		return err;
	if (hdr(fdt, HDR_VERSION) < 17)
		return -FDT_ERR_BADVERSION;
	if (hdr(fdt, HDR_OFF_RSVMAP) > hdr(fdt, HDR_OFF_STRUCT) ||
	    (u64)hdr(fdt, HDR_OFF_STRUCT) + hdr(fdt, HDR_SIZE_STRUCT) >
	    hdr(fdt, HDR_OFF_STRINGS))
		return -FDT_ERR_BADLAYOUT;
	return 0;
}

/* End of the used part: the strings block is last in an editable tree. */
static u32 used_end(const void *fdt)
{
	return hdr(fdt, HDR_OFF_STRINGS) + hdr(fdt, HDR_SIZE_STRINGS);
}

static u32 free_space(const void *fdt)
{
	return fdt_totalsize(fdt) - used_end(fdt);
}

/*
 * Replaces 'oldlen' bytes at structure offset 'off' by 'newlen' bytes of
 * room (left for the caller to fill), moving the rest of the structure
 * block and the strings block along.  The caller has checked the space.
 * Free room is kept zeroed, so that a tree's bytes depend only on its
 * contents and the edits made, not on what the buffer held before.
 */
static void splice_struct(void *fdt, int off, u32 oldlen, u32 newlen)
{
	u8 *p = struct_base(fdt) + off;
	u32 tail = used_end(fdt) - (hdr(fdt, HDR_OFF_STRUCT) + off + oldlen);

	memmove(p + newlen, p + oldlen, tail);
	if (oldlen > newlen)
		memset(p + newlen + tail, 0, oldlen - newlen);
	set_hdr(fdt, HDR_SIZE_STRUCT,
		hdr(fdt, HDR_SIZE_STRUCT) + newlen - oldlen);
	set_hdr(fdt, HDR_OFF_STRINGS,
		hdr(fdt, HDR_OFF_STRINGS) + newlen - oldlen);
}

/*
 * Offset of 'name' (with its NUL) in the strings block, or -1.  Any match
 * will do, including the tail of a longer string: a property's name offset
 * may point anywhere in the block.
 */
static int find_string(const void *fdt, const char *name, u32 len)
{
	const char *strs = (const char *)fdt + hdr(fdt, HDR_OFF_STRINGS);
	u32 size = hdr(fdt, HDR_SIZE_STRINGS);
	u32 i;

	for (i = 0; i + len + 1 <= size; i++)
		if (!memcmp(strs + i, name, len + 1))
			return (int)i;
	return -1;
}

/* Appends 'name' to the strings block; the caller has checked the space. */
static u32 add_string(void *fdt, const char *name, u32 len)
{
	u32 size = hdr(fdt, HDR_SIZE_STRINGS);

	memcpy((u8 *)fdt + used_end(fdt), name, len + 1);
	set_hdr(fdt, HDR_SIZE_STRINGS, size + len + 1);
	return size;
}

static u32 padded(u32 len)
{
	return (u32)ALIGN_UP(len, TOKEN_SIZE);
}

int fdt_setprop(void *fdt, int node, const char *name, const void *val,
		int len)
{
	u32 namelen, oldlen, newlen, need;
	int err = check_rw(fdt);
	int off, end, stroff;
	u8 *p;

	if (err)
		return err;
	namelen = strlen(name);
	if (namelen == 0)
		return -FDT_ERR_BADPATH;
	if (len < 0)
		return -FDT_ERR_BADVALUE;

	off = fdt__find_prop(fdt, node, name, (int)namelen, &end);
	if (off < 0 && off != -FDT_ERR_NOTFOUND)
		return off;

	newlen = PROP_HDR_SIZE + padded(len);
	if (off >= 0) {
		oldlen = PROP_HDR_SIZE + padded(be32(struct_base(fdt) + off +
						     TOKEN_SIZE));
		stroff = (int)be32(struct_base(fdt) + off + 2 * TOKEN_SIZE);
	} else {
		off = end;
		oldlen = 0;
		stroff = find_string(fdt, name, namelen);
	}

	/* Check all the room first, so that a failure changes nothing. */
	need = stroff < 0 ? namelen + 1 : 0;
	if (newlen > oldlen)
		need += newlen - oldlen;
	if ((u64)need > free_space(fdt))
		return -FDT_ERR_NOSPACE;

	if (stroff < 0)
		stroff = (int)add_string(fdt, name, namelen);
	splice_struct(fdt, off, oldlen, newlen);

	p = struct_base(fdt) + off;
	put_be32(p, FDT_PROP);
	put_be32(p + TOKEN_SIZE, (u32)len);
	put_be32(p + 2 * TOKEN_SIZE, (u32)stroff);
	if (len)
		memcpy(p + PROP_HDR_SIZE, val, len);
	memset(p + PROP_HDR_SIZE + len, 0, padded(len) - len);
	return 0;
}

int fdt_setprop_u32(void *fdt, int node, const char *name, u32 val)
{
	u8 buf[4];

	put_be32(buf, val);
	return fdt_setprop(fdt, node, name, buf, sizeof(buf));
}

int fdt_setprop_u64(void *fdt, int node, const char *name, u64 val)
{
	u8 buf[8];

	put_be32(buf, (u32)(val >> 32));
	put_be32(buf + 4, (u32)val);
	return fdt_setprop(fdt, node, name, buf, sizeof(buf));
}

int fdt_setprop_string(void *fdt, int node, const char *name,
		       const char *str)
{
	return fdt_setprop(fdt, node, name, str, (int)strlen(str) + 1);
}

int fdt_delprop(void *fdt, int node, const char *name)
{
	int err = check_rw(fdt);
	int off;

	if (err)
		return err;
	off = fdt__find_prop(fdt, node, name, (int)strlen(name), NULL);
	if (off < 0)
		return off;
	/* The name stays in the strings block: harmless, and maybe shared. */
	splice_struct(fdt, off, PROP_HDR_SIZE +
		      padded(be32(struct_base(fdt) + off + TOKEN_SIZE)), 0);
	return 0;
}

int fdt_add_subnode(void *fdt, int parent, const char *name)
{
	u32 namelen, reclen;
	int err = check_rw(fdt);
	int off;
	u8 *p;

	if (err)
		return err;
	namelen = strlen(name);
	if (namelen == 0 || memchr(name, '/', namelen))
		return -FDT_ERR_BADPATH;

	/* "memory" and "memory@0" are different nodes: compare exactly. */
	for (off = fdt_first_subnode(fdt, parent); off >= 0;
	     off = fdt_next_subnode(fdt, off))
		if (!strcmp((const char *)struct_base(fdt) + off + TOKEN_SIZE,
			    name))
			return -FDT_ERR_EXISTS;
	if (off != -FDT_ERR_NOTFOUND)
		return off;

	/* The new child goes last, just before the parent's END_NODE. */
	off = fdt__node_end(fdt, parent);
	if (off < 0)
		return off;
	off -= TOKEN_SIZE;

	reclen = TOKEN_SIZE + padded(namelen + 1) + TOKEN_SIZE;
	if (reclen > free_space(fdt))
		return -FDT_ERR_NOSPACE;
	splice_struct(fdt, off, 0, reclen);

	p = struct_base(fdt) + off;
	put_be32(p, FDT_BEGIN_NODE);
	memset(p + TOKEN_SIZE, 0, padded(namelen + 1));
	memcpy(p + TOKEN_SIZE, name, namelen);
	put_be32(p + reclen - TOKEN_SIZE, FDT_END_NODE);
	return off;
}

static int rsvmap_size(const void *fdt)
{
	int n = fdt_num_mem_rsv(fdt);

	return n < 0 ? n : (n + 1) * RSV_ENTRY_SIZE;
}

struct block {
	uintptr_t src;
	uintptr_t dst;
	u32 len;
};

/*
 * Moves blocks whose sources lie in increasing address order, without
 * overlap, to contiguous increasing destinations.  Blocks moving down go
 * first, lowest first; then blocks moving up, highest first.  Neither can
 * then overwrite the source of a block not yet moved: a block moving down
 * only writes below its own source end, which is below every later
 * source; a block moving up only writes above the end of every earlier
 * destination, which is past the end of every earlier source.
 */
static void move_blocks(struct block *b, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (b[i].dst <= b[i].src)
			memmove((void *)b[i].dst, (const void *)b[i].src,
				b[i].len);
	for (i = n - 1; i >= 0; i--)
		if (b[i].dst > b[i].src)
			memmove((void *)b[i].dst, (const void *)b[i].src,
				b[i].len);
}

static int ordered(const struct block *b, int n)
{
	int i;

	for (i = 1; i < n; i++)
		if (b[i - 1].src + b[i - 1].len > b[i].src)
			return 0;
	return 1;
}

/*
 * Lays the tree at 'fdt' out canonically at 'buf', with the given
 * totalsize, or with none to spare when 'bufsize' is 0.  When the two areas overlap, the source blocks must already
 * be in canonical order (every tree dtc and libfdt-style writers produce
 * is); otherwise -FDT_ERR_BADLAYOUT, since moving them could overwrite one
 * before it is copied.
 */
static int relayout(const void *fdt, void *buf, u32 bufsize)
{
	int rsvsize = rsvmap_size(fdt);
	int stsize = fdt__struct_used(fdt);
	u32 strsize = hdr(fdt, HDR_SIZE_STRINGS);
	u32 boot_cpuid = hdr(fdt, HDR_BOOT_CPUID);
	uintptr_t src = (uintptr_t)fdt, dst = (uintptr_t)buf;
	struct block b[3];
	u64 need;

	if (rsvsize < 0)
		return rsvsize;
	if (stsize < 0)
		return stsize;
	need = (u64)HDR_SIZE + rsvsize + stsize + strsize;
	if (!bufsize)
		bufsize = (u32)need;
	if (need > bufsize)
		return -FDT_ERR_NOSPACE;

	b[0].src = src + hdr(fdt, HDR_OFF_RSVMAP);
	b[0].len = rsvsize;
	b[1].src = src + hdr(fdt, HDR_OFF_STRUCT);
	b[1].len = stsize;
	b[2].src = src + hdr(fdt, HDR_OFF_STRINGS);
	b[2].len = strsize;
	b[0].dst = dst + HDR_SIZE;
	b[1].dst = b[0].dst + rsvsize;
	b[2].dst = b[1].dst + stsize;

	if (!ordered(b, 3) && src < dst + bufsize &&
	    dst < src + fdt_totalsize(fdt))
		return -FDT_ERR_BADLAYOUT;
	move_blocks(b, 3);
	memset((u8 *)buf + need, 0, bufsize - need);

	/* The header last: the blocks may have been read from under it. */
	set_hdr(buf, HDR_MAGIC, FDT_MAGIC);
	set_hdr(buf, HDR_TOTALSIZE, bufsize);
	set_hdr(buf, HDR_OFF_RSVMAP, HDR_SIZE);
	set_hdr(buf, HDR_OFF_STRUCT, HDR_SIZE + rsvsize);
	set_hdr(buf, HDR_OFF_STRINGS, HDR_SIZE + rsvsize + stsize);
	set_hdr(buf, HDR_VERSION, FDT_LAST_VERSION);
	set_hdr(buf, HDR_LAST_COMP, FDT_FIRST_VERSION);
	set_hdr(buf, HDR_BOOT_CPUID, boot_cpuid);
	set_hdr(buf, HDR_SIZE_STRINGS, strsize);
	set_hdr(buf, HDR_SIZE_STRUCT, stsize);
	return 0;
}

int fdt_open_into(const void *fdt, void *buf, int bufsize)
{
	int err = fdt_check_header(fdt);

	if (err)
		return err;
	if (bufsize <= 0)
		return -FDT_ERR_NOSPACE;
	return relayout(fdt, buf, (u32)bufsize);
}

int fdt_pack(void *fdt)
{
	int err = check_rw(fdt);

	if (err)
		return err;
	/* In place, sizing the tree to its blocks: drops slack and gaps. */
	return relayout(fdt, fdt, 0);
}
