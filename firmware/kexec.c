/*
 * The kexec platform: a generic chain-load platform for flattened device
 * trees.  We are entered with the convention we hand on (r3 = tree), run
 * where we were loaded, and know only the tree and ourselves.  So we build
 * the sorted table of what memory is in use (memranges.c), put the heap in
 * a gap, and place the kernel where it will not clobber anything it needs.
 *
 * Two heap policies, chosen at build time (docs/kexec.md):
 *  seed   the original order: the heap is set up before the kernel's size
 *         is known.  A ppc64 kernel copies itself to 0 when it starts, so
 *         anything left in [0, kernel size) -- the final device tree, an
 *         initrd -- can be overwritten then: the known hole.
 *  fixed  the kernel's ELF header is read first and [0, kernel size) is
 *         kept out of the heap; an initrd lying there is moved.
 */
#include "types.h"
#include "string.h"
#include "stdio.h"
#include "fdt.h"
#include "memranges.h"
#include "simple_alloc.h"
#include "ops.h"

#if !defined(KEXEC_POLICY_seed) && !defined(KEXEC_POLICY_fixed)
#error "build with -DKEXEC_POLICY_seed or -DKEXEC_POLICY_fixed"
#endif

#define DTB_ROOM	0x1000	/* growth allowed for /chosen updates */

/* For the fixed policy: decided in init, before the heap exists. */
static int kernel_placed;
static u64 kernel_placed_at;

/* An fdt error the tree should not give once step 0 passed: it changed. */
static void __attribute__((noreturn)) tree_fatal(const char *what, int err)
{
	fatal(BW_FATAL_TREE, "device tree: %s: %s", what, fdt_strerror(err));
}

/*
 * A memory node: device_type is exactly "memory" with its NUL, compared
 * by length as libfdt's fdt_node_offset_by_prop_value does (a value with
 * no NUL must not be read past its end), or the node is named memory.
 */
static int is_memory_node(const void *fdt, int node, const char *name)
{
	static const char memory[] = "memory";
	int len;
	const char *type = fdt_getprop(fdt, node, "device_type", &len);

	if (type && len == (int)sizeof(memory) &&
	    memcmp(type, memory, sizeof(memory)) == 0)
		return 1;
	return strcmp(name, "memory") == 0 || strncmp(name, "memory@", 7) == 0;
}

/*
 * The root's #address-cells or #size-cells as fdt_*_cells read it: a
 * count, or an error, which is named as such, never shown as a count.
 */
static int root_cells(const char *prop, int cells)
{
	if (cells == -FDT_ERR_BADNCELLS)
		fatal(BW_FATAL_ROOT_CELLS, "device tree: root %s: %s (one "
		      "32-bit cell of 0..4)", prop, fdt_strerror(cells));
	if (cells < 0)
		tree_fatal(prop, cells);
	return cells;
}

/* The root's cell counts, checked by find_rma_end (1 or 2 each). */
static int root_ac, root_sc;

/*
 * The memory blocks, one at a time: every reg entry of every memory node
 * (a child of the root), in tree order, read with the root's cell counts.
 */
struct memory_blocks {
	const void *fdt;
	int node;		/* the memory node being read; < 0 before one */
	const u8 *reg;
	int len, at;		/* its reg's length, the next entry's offset */
};

static void memory_blocks_start(struct memory_blocks *it, const void *fdt)
{
	it->fdt = fdt;
	it->node = -FDT_ERR_NOTFOUND;
	it->reg = NULL;
	it->len = it->at = 0;
}

/* The next block into *base, *size: 1, or 0 when there are no more. */
static int memory_blocks_next(struct memory_blocks *it, u64 *base, u64 *size)
{
	int stride = 4 * (root_ac + root_sc), len;

	while (it->at + stride > it->len) {
		const char *name;

		it->node = it->node < 0 ? fdt_first_subnode(it->fdt, 0)
					: fdt_next_subnode(it->fdt, it->node);
		if (it->node == -FDT_ERR_NOTFOUND)
			return 0;
		if (it->node < 0)
			tree_fatal("reading the root's children", it->node);
		name = fdt_get_name(it->fdt, it->node, &len);
		if (!name)
			tree_fatal("reading a node's name", len);
		it->reg = NULL;
		it->len = it->at = 0;
		if (!is_memory_node(it->fdt, it->node, name))
			continue;
		it->reg = fdt_getprop(it->fdt, it->node, "reg", &it->len);
		if (!it->reg)
			it->len = 0;
	}
	fdt_read_cells(it->reg + it->at, root_ac, base);
	fdt_read_cells(it->reg + it->at + 4 * root_ac, root_sc, size);
	it->at += stride;
	return 1;
}

/*
 * The real-mode area: the memory block that starts at address 0.  One
 * pass over the root's children, up to the first such block, so the work
 * is linear in the tree's size wherever the memory nodes are.
 */
static u64 find_rma_end(const void *fdt)
{
	struct memory_blocks it;
	u64 base, size;

	root_ac = root_cells("#address-cells", fdt_address_cells(fdt, 0));
	root_sc = root_cells("#size-cells", fdt_size_cells(fdt, 0));
	if (root_ac < 1 || root_sc < 1 || root_ac > 2 || root_sc > 2)
		fatal(BW_FATAL_ROOT_CELLS, "device tree: root #address-cells %d "
		      "/ #size-cells %d not supported", root_ac, root_sc);
	memory_blocks_start(&it, fdt);
	while (memory_blocks_next(&it, &base, &size))
		if (base == 0 && size != 0)
			return size;
	fatal(BW_FATAL_NO_RMA, "device tree: no /memory block starts at "
	      "address 0 (cannot find the real-mode area)");
}

/*
 * The first byte of [start, end) that no memory block holds, or end when
 * they hold all of it.  `at` is the first byte not yet found in a block;
 * each block holding it moves it on to the block's end.  Blocks in address
 * order take one pass over the tree; a pass that moves nothing ends the
 * search.  A block reaching 2^64 ends at 2^64 - 1 here, which is past
 * every initrd's last byte.
 */
static u64 memory_gap(const void *fdt, u64 start, u64 end)
{
	struct memory_blocks it;
	u64 at = start, base, size;
	int moved;

	do {
		moved = 0;
		memory_blocks_start(&it, fdt);
		while (memory_blocks_next(&it, &base, &size)) {
			if (base > at || at - base >= size)
				continue;
			at = size > U64_MAX - base ? U64_MAX : base + size;
			if (at >= end)
				return end;
			moved = 1;
		}
	} while (moved);
	return at;
}

static u64 read_chosen_addr(const void *fdt, int chosen, const char *name,
			    int *found)
{
	int len;
	const void *p = fdt_getprop(fdt, chosen, name, &len);
	u64 val = 0;

	*found = 0;
	if (!p && len != -FDT_ERR_NOTFOUND)
		tree_fatal(name, len);
	if (!p)
		return 0;
	if (len != 4 && len != 8)
		fatal(BW_FATAL_CHOSEN_PROP_SIZE,
		      "device tree: /chosen %s is %d bytes, not 4 or 8", name,
		      len);
	fdt_read_cells(p, len / 4, &val);
	*found = 1;
	return val;
}

/* Records a range in use; code is the fatal stop should that fail. */
static void mark(const char *what, u64 start, u64 size, int code)
{
	int err = ranges_add(start, size);

	printf("  occupied: 0x%016llx..0x%016llx %s\n", start, start + size,
	       what);
	if (err)
		fatal(code, "cannot record %s at 0x%llx: %s", what, start,
		      ranges_strerror(err));
}

/* Do [a, a_end) and [b, b_end) share a byte? */
static int overlaps(u64 a, u64 a_end, u64 b, u64 b_end)
{
	return a < b_end && b < a_end;
}

/* Everything already in memory that must survive until the hand-off. */
static void add_known_ranges(struct boot_info *bi)
{
	const void *fdt = bi->dtb_in;
	int chosen = bi->chosen;
	u64 tree = (u64)fdt, tree_end = tree + fdt_totalsize(fdt);
	int n, i, err, f1 = 0, f2 = 0;

	mark("wrapper", bi->load_addr, bi->image_end - bi->load_addr,
	     BW_FATAL_KNOWN_RANGE);
	mark("device tree", tree, tree_end - tree, BW_FATAL_KNOWN_RANGE);
	if (chosen >= 0) {
		u64 s = read_chosen_addr(fdt, chosen, "linux,initrd-start", &f1);
		u64 e = read_chosen_addr(fdt, chosen, "linux,initrd-end", &f2);

		if (f1 != f2)
			fatal(BW_FATAL_INITRD_HALF, "device tree: /chosen has "
			      "only one of linux,initrd-start and "
			      "linux,initrd-end");
		if (f1 && e < s)
			fatal(BW_FATAL_INITRD_INVERTED, "device tree: initrd "
			      "ends (0x%llx) before it starts (0x%llx)", e, s);
		/* e == s: no initrd, nothing to check or record. */
		if (f1 && e > s) {
			u64 gap;

			if (overlaps(s, e, bi->load_addr, bi->image_end))
				fatal(BW_FATAL_INITRD_OVERLAP, "device tree: "
				      "initrd 0x%llx..0x%llx overlaps the wrapper "
				      "image 0x%llx..0x%llx", s, e,
				      bi->load_addr, bi->image_end);
			if (overlaps(s, e, tree, tree_end))
				fatal(BW_FATAL_INITRD_OVERLAP, "device tree: "
				      "initrd 0x%llx..0x%llx overlaps the device "
				      "tree 0x%llx..0x%llx", s, e, tree,
				      tree_end);
			gap = memory_gap(fdt, s, e);
			if (gap != e)
				fatal(BW_FATAL_INITRD_OUTSIDE, "device tree: "
				      "initrd 0x%llx..0x%llx does not lie in "
				      "memory: no /memory block holds 0x%llx",
				      s, e, gap);
			bi->initrd_start = s;
			bi->initrd_end = e;
			mark("initrd", s, e - s, BW_FATAL_KNOWN_RANGE);
		}
	}
	n = fdt_num_mem_rsv(fdt);
	if (n < 0)
		fatal(BW_FATAL_RESERVE_MAP, "device tree: reserve map: %s",
		      fdt_strerror(n));
	for (i = 0; i < n; i++) {
		u64 addr, size;

		err = fdt_get_mem_rsv(fdt, i, &addr, &size);
		if (err)
			fatal(BW_FATAL_RESERVE_MAP, "device tree: reserve map: "
			      "%s", fdt_strerror(err));
		mark("reserved", addr, size, BW_FATAL_KNOWN_RANGE);
	}
}

static void init_heap(void)
{
	int err = ranges_init_malloc();

	if (err)
		fatal(BW_FATAL_HEAP, "no room for the heap: %s",
		      ranges_strerror(err));
	printf("  heap:     0x%016llx..0x%016llx\n", ranges.heap_start,
	       ranges.heap_end);
}

#ifdef KEXEC_POLICY_fixed
/* The kernel will copy itself to 0: keep [0, size) for it alone. */
static void reserve_kernel_footprint(struct boot_info *bi, u64 size)
{
	if (ranges_is_free(0, size)) {
		int err = ranges_vmlinux_alloc(size, &kernel_placed_at);

		/* ranges_vmlinux_alloc failing: docs/kexec.md's kernel step. */
		if (err)
			fatal(BW_FATAL_KERNEL, "cannot record the kernel at 0: %s",
			      ranges_strerror(err));
		kernel_placed = 1;
	} else {
		mark("kernel footprint", 0, size, BW_FATAL_KERNEL_RESERVE);
	}
}

/* An initrd in [0, size) would be overwritten: move it to the heap. */
static void move_initrd_out_of(struct boot_info *bi, u64 size)
{
	u64 len = bi->initrd_end - bi->initrd_start;
	void *p;

	if (len == 0 || bi->initrd_start >= size)
		return;
	p = malloc(len);
	if (!p)
		fatal(BW_FATAL_INITRD_MOVE,
		      "no room to move the initrd out of the kernel's way");
	memmove(p, (void *)bi->initrd_start, len);
	printf("initrd moved from 0x%llx to %p\n", bi->initrd_start, p);
	bi->initrd_start = (u64)p;
	bi->initrd_end = (u64)p + len;
}
#endif

static int kexec_init(struct boot_info *bi)
{
	u64 rma_end = find_rma_end(bi->dtb_in);

	printf("kexec: real-mode area ends at 0x%llx\n", rma_end);
	ranges_init(rma_end);
	add_known_ranges(bi);
#ifdef KEXEC_POLICY_fixed
	/* bi->kernel_size is known: main.c read the ELF header first. */
	reserve_kernel_footprint(bi, bi->kernel_size);
	init_heap();
	move_initrd_out_of(bi, bi->kernel_size);
#else
	init_heap();
#endif
	return 0;
}

static int kexec_kernel_alloc(struct boot_info *bi, u64 size, u64 *addr)
{
	if (kernel_placed) {
		*addr = kernel_placed_at;
		return 0;
	}
	return ranges_vmlinux_alloc(size, addr);
}

/* fdt_delprop, where a property already absent is no error. */
static int drop_prop(void *fdt, int node, const char *name)
{
	int err = fdt_delprop(fdt, node, name);

	return err == -FDT_ERR_NOTFOUND ? 0 : err;
}

/* The final tree: a copy in the heap with /chosen brought up to date. */
static int kexec_finalize(struct boot_info *bi)
{
	u64 size = fdt_totalsize(bi->dtb_in) + DTB_ROOM;
	int chosen, err;

	bi->dtb = malloc(size);
	if (!bi->dtb)
		fatal(BW_FATAL_DTB,
		      "no room for the final device tree (0x%llx bytes)", size);
	bi->dtb_size = size;
	err = fdt_open_into(bi->dtb_in, bi->dtb, size);
	if (err)
		return err;
	/* The copy keeps the input's node offsets (fdt_open_into). */
	chosen = bi->chosen;
	if (chosen == -FDT_ERR_NOTFOUND)
		chosen = fdt_add_subnode(bi->dtb, 0, "chosen");
	if (chosen < 0)
		return chosen;
	if (bi->initrd_end > bi->initrd_start) {
		err = fdt_setprop_u64(bi->dtb, chosen, "linux,initrd-start",
				      bi->initrd_start);
		if (!err)
			err = fdt_setprop_u64(bi->dtb, chosen,
					      "linux,initrd-end", bi->initrd_end);
		if (err)
			return err;
	} else {
		/* No initrd handed on: /chosen names none (a zero-size one). */
		err = drop_prop(bi->dtb, chosen, "linux,initrd-start");
		if (!err)
			err = drop_prop(bi->dtb, chosen, "linux,initrd-end");
		if (err)
			return err;
	}
	return fdt_pack(bi->dtb);
}

const struct platform_ops kexec_platform = {
	.name = "kexec",
	.init = kexec_init,
	.kernel_alloc = kexec_kernel_alloc,
	.finalize = kexec_finalize,
};
