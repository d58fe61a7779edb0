/*
 * Drive memranges.c and simple_alloc.c on the host, one operation a line,
 * so Python can run long sequences in one process (tests/native.py).
 *
 * Numbers are hexadecimal both ways (an optional 0x is accepted on input);
 * return codes are printed as signed decimal, the same digits for -5..5.
 * Every command answers exactly one line:
 *
 *   init RMA             ok
 *   add START SIZE       RET
 *   span START END       RET
 *   isfree START SIZE    RET
 *   gap [PRESET]         RET START END     ranges_largest_gap
 *   after [PRESET]       RET START END     ranges_gap_after_last
 *   initmalloc           RET
 *   vmlinux SIZE [PRESET] RET ADDR
 *   heapinit BASE SIZE   ok                simple_alloc_init
 *   malloc N             P
 *   free P               ok
 *   realloc P N          Q
 *   poke ADDR HEXBYTES   ok                write into the host-backed heap
 *   peek ADDR LEN        HEXBYTES
 *   strerror ERR         TEXT              ERR in decimal
 *   dump                 RANGES_HEX HEAP_HEX
 *   quit
 *
 * Out-parameters start as PRESET (default 5a5a5a5a5a5a5a5a), so an answer
 * shows whether the operation wrote them.  Errors in a request answer
 * "error TEXT".
 *
 * dump prints `ranges` and `heap` as the guest stores them: the same
 * struct layout (checked below) with every field big-endian.
 *
 * realloc copies the old block with memcpy, so the heap's addresses must
 * be real memory here too: when the heap is (re)initialised the driver
 * maps anonymous memory at exactly those addresses if it can (x86_64's
 * low memory is free under ASan).  Where it cannot, realloc and
 * peek/poke answer "error unbacked" instead of touching memory.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "types.h"
#include "memranges.h"
#include "simple_alloc.h"

#define SENTINEL 0x5a5a5a5a5a5a5a5aULL

/* The guest's layout is the natural one; dump relies on the host's matching. */
_Static_assert(sizeof(u64) == 8 && sizeof(u32) == 4, "field widths");
_Static_assert(sizeof(void *) == 8, "64-bit host");
_Static_assert(offsetof(struct mem_range, start) == 0, "mem_range");
_Static_assert(offsetof(struct mem_range, end) == 8, "mem_range");
_Static_assert(sizeof(struct mem_range) == 16, "mem_range");
_Static_assert(offsetof(struct range_table, rma_end) == 0, "range_table");
_Static_assert(offsetof(struct range_table, heap_start) == 8, "range_table");
_Static_assert(offsetof(struct range_table, heap_end) == 16, "range_table");
_Static_assert(offsetof(struct range_table, count) == 24, "range_table");
_Static_assert(offsetof(struct range_table, refused) == 28, "range_table");
_Static_assert(offsetof(struct range_table, entry) == 32, "range_table");
_Static_assert(sizeof(struct range_table) == 32 + 16 * RANGES_MAX, "range_table");
_Static_assert(offsetof(struct alloc_record, base) == 0, "alloc_record");
_Static_assert(offsetof(struct alloc_record, size) == 8, "alloc_record");
_Static_assert(offsetof(struct alloc_record, state) == 16, "alloc_record");
_Static_assert(sizeof(struct alloc_record) == 24, "alloc_record");
_Static_assert(offsetof(struct alloc_heap, base) == 0, "alloc_heap");
_Static_assert(offsetof(struct alloc_heap, end) == 8, "alloc_heap");
_Static_assert(offsetof(struct alloc_heap, next) == 16, "alloc_heap");
_Static_assert(offsetof(struct alloc_heap, nrecords) == 24, "alloc_heap");
_Static_assert(offsetof(struct alloc_heap, pad) == 28, "alloc_heap");
_Static_assert(offsetof(struct alloc_heap, rec) == 32, "alloc_heap");
_Static_assert(sizeof(struct alloc_heap) == 32 + 24 * ALLOC_MAX_RECORDS, "alloc_heap");

/* The host memory standing in for the heap, if any. */
static void *backing;
static size_t backing_len;

static void unback(void)
{
	if (backing)
		munmap(backing, backing_len);
	backing = NULL;
	backing_len = 0;
}

/* Map [heap.base, heap.end) at the same host addresses, if possible. */
static void back_heap(void)
{
	long page = sysconf(_SC_PAGESIZE);
	u64 lo = heap.base & ~(u64)(page - 1);
	u64 hi = heap.end;
	void *p;

	unback();
	/* Only low memory, far from anything ASan or the loader use. */
	if (hi <= lo || lo < 0x10000 || hi > 0x40000000)
		return;
	hi = (hi + page - 1) & ~(u64)(page - 1);
	p = mmap((void *)(uintptr_t)lo, hi - lo, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE,
		 -1, 0);
	if (p == MAP_FAILED)
		return;
	if (p != (void *)(uintptr_t)lo) {
		/* an old kernel took the address as a hint only */
		munmap(p, hi - lo);
		return;
	}
	backing = p;
	backing_len = hi - lo;
}

static int backed(u64 addr, u64 len)
{
	u64 lo = (u64)(uintptr_t)backing;

	return backing && addr >= lo && len <= backing_len &&
	       addr - lo <= backing_len - len;
}

/* Is every block realloc might copy from or to host memory? */
static int heap_backed(void)
{
	return backed(heap.base, heap.end - heap.base);
}

/* Big-endian serialisation of the guest structs, field by field. */
static unsigned char *put_be(unsigned char *out, u64 v, int bytes)
{
	int i;

	for (i = bytes - 1; i >= 0; i--) {
		out[i] = (unsigned char)v;
		v >>= 8;
	}
	return out + bytes;
}

static void print_hex(const unsigned char *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		printf("%02x", b[i]);
}

static void dump(void)
{
	unsigned char rb[sizeof(struct range_table)];
	unsigned char hb[sizeof(struct alloc_heap)];
	unsigned char *p;
	int i;

	p = put_be(rb, ranges.rma_end, 8);
	p = put_be(p, ranges.heap_start, 8);
	p = put_be(p, ranges.heap_end, 8);
	p = put_be(p, ranges.count, 4);
	p = put_be(p, ranges.refused, 4);
	for (i = 0; i < RANGES_MAX; i++) {
		p = put_be(p, ranges.entry[i].start, 8);
		p = put_be(p, ranges.entry[i].end, 8);
	}

	p = put_be(hb, heap.base, 8);
	p = put_be(p, heap.end, 8);
	p = put_be(p, heap.next, 8);
	p = put_be(p, heap.nrecords, 4);
	p = put_be(p, heap.pad, 4);
	for (i = 0; i < ALLOC_MAX_RECORDS; i++) {
		p = put_be(p, heap.rec[i].base, 8);
		p = put_be(p, heap.rec[i].size, 8);
		p = put_be(p, heap.rec[i].state, 8);
	}

	print_hex(rb, sizeof(rb));
	putchar(' ');
	print_hex(hb, sizeof(hb));
	putchar('\n');
}

/* Parse the next hex number from the line; 0 on success. */
static int arg(char **cursor, u64 *v)
{
	char *tok = strtok_r(NULL, " \t\n", cursor);
	char *end;

	if (!tok)
		return -1;
	errno = 0;
	*v = strtoull(tok, &end, 16);
	return (errno || *end) ? -1 : 0;
}

/* An optional trailing hex number, def when absent. */
static int opt_arg(char **cursor, u64 *v, u64 def)
{
	char *save = *cursor;

	if (!strtok_r(NULL, " \t\n", &save)) {
		*v = def;
		return 0;
	}
	return arg(cursor, v);
}

static void *ptr(u64 v)
{
	return (void *)(uintptr_t)v;
}

static void print_gap(int ret, const struct mem_range *g)
{
	printf("%d %llx %llx\n", ret, g->start, g->end);
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static void poke(char **cursor)
{
	char *hex;
	size_t len, i;
	u64 addr;
	unsigned char *dst;

	if (arg(cursor, &addr) || !(hex = strtok_r(NULL, " \t\n", cursor))) {
		puts("error usage: poke ADDR HEXBYTES");
		return;
	}
	len = strlen(hex);
	if (len % 2) {
		puts("error odd hex length");
		return;
	}
	for (i = 0; i < len; i++) {
		if (hexval(hex[i]) < 0) {
			puts("error bad hex");
			return;
		}
	}
	if (!backed(addr, len / 2)) {
		puts("error unbacked");
		return;
	}
	dst = ptr(addr);
	for (i = 0; i < len / 2; i++)
		dst[i] = (unsigned char)(hexval(hex[2 * i]) << 4 | hexval(hex[2 * i + 1]));
	puts("ok");
}

static void peek(char **cursor)
{
	u64 addr, len;

	if (arg(cursor, &addr) || arg(cursor, &len)) {
		puts("error usage: peek ADDR LEN");
		return;
	}
	if (!backed(addr, len)) {
		puts("error unbacked");
		return;
	}
	print_hex(ptr(addr), len);
	putchar('\n');
}

/* One request line; returns 0 to stop. */
static int command(char *line)
{
	char *cursor;
	char *op = strtok_r(line, " \t\n", &cursor);
	struct mem_range g;
	u64 a, b;

	if (!op)
		puts("error empty request");
	else if (!strcmp(op, "quit"))
		return 0;
	else if (!strcmp(op, "init")) {
		if (arg(&cursor, &a))
			goto usage;
		ranges_init(a);
		puts("ok");
	} else if (!strcmp(op, "add")) {
		if (arg(&cursor, &a) || arg(&cursor, &b))
			goto usage;
		printf("%d\n", ranges_add(a, b));
	} else if (!strcmp(op, "span")) {
		if (arg(&cursor, &a) || arg(&cursor, &b))
			goto usage;
		printf("%d\n", ranges_add_span(a, b));
	} else if (!strcmp(op, "isfree")) {
		if (arg(&cursor, &a) || arg(&cursor, &b))
			goto usage;
		printf("%d\n", ranges_is_free(a, b));
	} else if (!strcmp(op, "gap") || !strcmp(op, "after")) {
		if (opt_arg(&cursor, &a, SENTINEL))
			goto usage;
		g.start = g.end = a;
		if (op[0] == 'g')
			print_gap(ranges_largest_gap(&g), &g);
		else
			print_gap(ranges_gap_after_last(&g), &g);
	} else if (!strcmp(op, "initmalloc")) {
		int ret = ranges_init_malloc();

		if (ret == RANGES_OK)
			back_heap();
		printf("%d\n", ret);
	} else if (!strcmp(op, "vmlinux")) {
		int ret;

		if (arg(&cursor, &a) || opt_arg(&cursor, &b, SENTINEL))
			goto usage;
		ret = ranges_vmlinux_alloc(a, &b);
		printf("%d %llx\n", ret, b);
	} else if (!strcmp(op, "heapinit")) {
		if (arg(&cursor, &a) || arg(&cursor, &b))
			goto usage;
		simple_alloc_init(a, b);
		back_heap();
		puts("ok");
	} else if (!strcmp(op, "malloc")) {
		if (arg(&cursor, &a))
			goto usage;
		printf("%llx\n", (u64)(uintptr_t)malloc(a));
	} else if (!strcmp(op, "free")) {
		if (arg(&cursor, &a))
			goto usage;
		free(ptr(a));
		puts("ok");
	} else if (!strcmp(op, "realloc")) {
		if (arg(&cursor, &a) || arg(&cursor, &b))
			goto usage;
		/* realloc may memcpy between blocks: only on real memory */
		if (!heap_backed()) {
			puts("error unbacked");
			return 1;
		}
		printf("%llx\n", (u64)(uintptr_t)realloc(ptr(a), b));
	} else if (!strcmp(op, "poke")) {
		poke(&cursor);
	} else if (!strcmp(op, "peek")) {
		peek(&cursor);
	} else if (!strcmp(op, "strerror")) {
		char *tok = strtok_r(NULL, " \t\n", &cursor);

		if (!tok)
			goto usage;
		puts(ranges_strerror((int)strtol(tok, NULL, 10)));
	} else if (!strcmp(op, "dump")) {
		dump();
	} else {
		printf("error unknown request %s\n", op);
	}
	return 1;

usage:
	printf("error bad arguments to %s\n", op);
	return 1;
}

int main(void)
{
	char line[4096];

	setvbuf(stdout, NULL, _IOLBF, 0);
	while (fgets(line, sizeof(line), stdin)) {
		if (!command(line))
			break;
	}
	unback();
	return 0;
}
