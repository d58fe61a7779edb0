/*
 * An ns16550-compatible UART as the console.  The firmware (or the
 * emulator) has already set the line up, so this only transmits: wait for
 * room in the transmitter, store the byte.
 *
 * The wrapper runs in real mode, so the register address is the physical
 * one: the node's "reg" translated up through each parent bus's "ranges"
 * (a "virtual-reg" property names a mapped address and is no use here).
 * Only an address read exactly is taken (docs/guest-abi.md, "Console"):
 * 1 or 2 address and size cells on every node from the root down, reg and
 * ranges whole entries.  Anything else is no UART, never a guess: a store
 * to an address the tree did not mean may fault or hit memory.
 *
 * Registers are bytes, or 32-bit words with "reg-io-width" = 4; those are
 * little-endian unless the node says "big-endian" or "native-endian" (the
 * 8250 binding's default), so on this big-endian CPU the register's byte
 * sits at the word's lowest address.
 */
#include "types.h"
#include "fdt.h"
#include "ops.h"

#define UART_THR	0	/* transmit holding register (write) */
#define UART_LSR	5	/* line status register */
#define LSR_THRE	0x20	/* transmit holding register empty */

/*
 * How long to wait for THRE.  A real UART frees the register within one
 * character time; a device that never does is missing or wedged, and a
 * console must never hang the wrapper, so after one timeout we stop
 * waiting altogether.
 */
#define THRE_SPINS	100000

#define MAX_DEPTH	16	/* device tree nesting this driver follows */

static struct {
	uintptr_t base;
	unsigned int shift;	/* register i is at base + (i << shift) */
	unsigned int width;	/* access size in bytes: 1 or 4 */
	int big_endian;		/* 4-byte registers are big-endian */
	int stuck;		/* THRE timed out once: don't wait again */
} uart;

static u8 uart_read(unsigned int reg)
{
	uintptr_t a = uart.base + ((uintptr_t)reg << uart.shift);

	u32 v;

	if (uart.width == 1)
		return *(volatile u8 *)a;
	v = *(volatile u32 *)a;
	return uart.big_endian ? (u8)v : (u8)(v >> 24);
}

static void uart_write(unsigned int reg, u8 val)
{
	uintptr_t a = uart.base + ((uintptr_t)reg << uart.shift);

	if (uart.width == 1)
		*(volatile u8 *)a = val;
	else
		*(volatile u32 *)a = uart.big_endian ? val : (u32)val << 24;
	/* Let the store reach the device before the next status read. */
	__asm__ __volatile__("sync" : : : "memory");
}

static void ns16550_putc(char c)
{
	int spins;

	if (!uart.stuck) {
		for (spins = 0; !(uart_read(UART_LSR) & LSR_THRE); spins++) {
			if (spins == THRE_SPINS) {
				uart.stuck = 1;
				break;
			}
		}
	}
	uart_write(UART_THR, (u8)c);
}

/*
 * Fills chain[] with the offsets of the nodes from the root down to node
 * and returns how many there are.  fdt.h has no parent lookup, but offsets
 * grow in tree order: a node lies inside the subtree of the last child
 * whose offset does not exceed its own.
 */
static int node_chain(const void *fdt, int node, int *chain)
{
	int depth = 0, cur = 0, child, next;

	for (;;) {
		if (depth == MAX_DEPTH)
			return -FDT_ERR_BADSTRUCTURE;
		chain[depth++] = cur;
		if (cur == node)
			return depth;
		next = -FDT_ERR_NOTFOUND;
		for (child = fdt_first_subnode(fdt, cur);
		     child >= 0 && child <= node;
		     child = fdt_next_subnode(fdt, child))
			next = child;
		if (child < 0 && child != -FDT_ERR_NOTFOUND)
			return child;
		if (next < 0)
			return next;
		cur = next;
	}
}

static int has_prop(const void *fdt, int node, const char *name)
{
	int len;

	return fdt_getprop(fdt, node, name, &len) != NULL;
}

/* A u32 property, or dflt when the node lacks it. */
static int prop_u32(const void *fdt, int node, const char *name, u32 dflt,
		    u32 *val)
{
	int len;
	const u8 *p = fdt_getprop(fdt, node, name, &len);
	u64 v;

	if (!p) {
		if (len != -FDT_ERR_NOTFOUND)
			return len;
		*val = dflt;
		return 0;
	}
	if (len != 4)
		return -FDT_ERR_BADVALUE;
	fdt_read_cells(p, 1, &v);
	*val = (u32)v;
	return 0;
}

/* A node's #address-cells and #size-cells, when both are 1 or 2. */
static int bus_cells(const void *fdt, int node, int *ac, int *sc)
{
	*ac = fdt_address_cells(fdt, node);
	*sc = fdt_size_cells(fdt, node);
	if (*ac < 1 || *ac > 2 || *sc < 1 || *sc > 2)
		return -FDT_ERR_BADNCELLS;
	return 0;
}

/*
 * Maps *addr from the address space of bus's children to that of its
 * parent through bus's "ranges": an empty one is the identity, a missing
 * one means the children are not in the parent's address space at all.
 * Every entry is child address, parent address and size, in cells the
 * caller has checked (1 or 2 each, so every read fits 64 bits).
 */
static int translate_one(const void *fdt, int bus, int parent, u64 *addr)
{
	int len, child_ac, parent_ac, sc, entry;
	const u8 *r = fdt_getprop(fdt, bus, "ranges", &len);

	if (!r)
		return len;
	if (len == 0)
		return 0;
	bus_cells(fdt, bus, &child_ac, &sc);
	parent_ac = fdt_address_cells(fdt, parent);
	entry = 4 * (child_ac + parent_ac + sc);
	if (len % entry)
		return -FDT_ERR_BADVALUE;	/* written for other cells */
	for (; len > 0; len -= entry, r += entry) {
		u64 cbase, pbase, size;

		fdt_read_cells(r, child_ac, &cbase);
		fdt_read_cells(r + 4 * child_ac, parent_ac, &pbase);
		fdt_read_cells(r + 4 * (child_ac + parent_ac), sc, &size);
		if (*addr >= cbase && *addr - cbase < size) {
			/* past 2^64: no address the CPU can use */
			if (*addr - cbase > U64_MAX - pbase)
				return -FDT_ERR_BADVALUE;
			*addr = pbase + (*addr - cbase);
			return 0;
		}
	}
	return -FDT_ERR_NOTFOUND;
}

/* The physical address of the first "reg" entry of chain[n - 1]. */
static int reg_address(const void *fdt, const int *chain, int n, u64 *addr)
{
	int len, ac, sc, i, err;
	const void *reg;

	if (n < 2)
		return -FDT_ERR_BADOFFSET;	/* the root has no registers */
	/* Every cell count the way up reads, the root's included. */
	for (i = 0; i <= n - 2; i++) {
		err = bus_cells(fdt, chain[i], &ac, &sc);
		if (err)
			return err;
	}
	reg = fdt_getprop(fdt, chain[n - 1], "reg", &len);
	if (!reg)
		return len;
	/* ac and sc are the UART's parent's, from the last round above. */
	if (len < 4 * (ac + sc) || len % (4 * (ac + sc)))
		return -FDT_ERR_BADVALUE;
	fdt_read_cells(reg, ac, addr);
	/* Up from the UART's own bus to the root's children. */
	for (i = n - 2, err = 0; !err && i > 0; i--)
		err = translate_one(fdt, chain[i], chain[i - 1], addr);
	return err;
}

static int ns16550_open(const void *fdt, int node)
{
	int chain[MAX_DEPTH];
	int n = node_chain(fdt, node, chain), err;
	u32 shift, width;
	u64 addr;

	if (n < 0)
		return n;
	err = reg_address(fdt, chain, n, &addr);
	if (!err)
		err = prop_u32(fdt, node, "reg-shift", 0, &shift);
	if (!err)
		err = prop_u32(fdt, node, "reg-io-width", 1, &width);
	if (err)
		return err;
	if (shift > 8 || (width != 1 && width != 4))
		return -FDT_ERR_BADVALUE;
	uart.base = (uintptr_t)addr;
	uart.shift = shift;
	uart.width = width;
	uart.big_endian = has_prop(fdt, node, "big-endian") ||
			  has_prop(fdt, node, "native-endian");
	uart.stuck = 0;
	return 0;
}

const struct serial_ops ns16550_ops = {
	.name = "ns16550",
	.open = ns16550_open,
	.putc = ns16550_putc,
};
