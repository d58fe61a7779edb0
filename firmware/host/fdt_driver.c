/*
 * Host driver for fdt.c / fdt_rw.c: loads a .dtb and runs operations given
 * on the command line, printing one result line per operation.
 *
 *   fdt_driver FILE OP ARGS... [OP ARGS...]...
 *   fdt_driver --probe FILE...        one line per file: probe result
 *   fdt_driver --full FILE...         one line per file: fdt_check_full
 *   fdt_driver FILE mutate            probe every single-byte corruption
 *   fdt_driver FILE mutatefull        fdt_check_full of every one, and the
 *                                     probe of each that passes
 *   fdt_driver FILE errcodes          fdt.h's FDT_ERR_* codes, NAME=NUMBER
 *   fdt_driver FILE bwerrcodes        fdt.h's BW_FDT_ERR_* codes, likewise
 *
 * A NODE argument is a path ("/chosen") or a raw offset ("@12").  Integer
 * results print as numbers; any error prints as "err N" with N negative.
 * The tree lives in a buffer of exactly its size, so that AddressSanitizer
 * catches any read past it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "read_file.h"
#include "fdt.h"

static unsigned char *tree;
static size_t tree_len;

static void die(const char *msg)
{
	fprintf(stderr, "fdt_driver: %s\n", msg);
	exit(2);
}

/*
 * What a caller holding a buffer of 'len' bytes must check before giving it
 * to the library, which trusts totalsize as the blob's extent.
 */
static int usable(const unsigned char *buf, size_t len)
{
	if (len < sizeof(struct fdt_header))
		return -FDT_ERR_TRUNCATED;
	if (fdt_check_header(buf) == 0 && fdt_totalsize(buf) > len)
		return -FDT_ERR_TRUNCATED;
	return fdt_check_header(buf);
}

static int print_int(int v)
{
	if (v < 0)
		printf("err %d\n", v);
	else
		printf("%d\n", v);
	return v;
}

/*
 * The node a NODE argument names.  A raw offset goes to the library as is,
 * even a negative one, so that the library's own checks are what the tests
 * see; only a failed path lookup is reported by the driver (node_err).
 */
static int node_err;

static int node_arg(const char *arg)
{
	char *end;
	long v;
	int node;

	node_err = 0;
	if (arg[0] == '@') {
		v = strtol(arg + 1, &end, 0);
		if (*end)
			die("bad raw offset");
		return (int)v;
	}
	node = fdt_path_offset(tree, arg);
	if (node < 0)
		node_err = node;
	return node;
}

static void print_hex(const unsigned char *p, int len)
{
	for (int i = 0; i < len; i++)
		printf("%02x", p[i]);
}

static int parse_hex(const char *s, unsigned char **out)
{
	size_t n = strlen(s);
	unsigned char *b;

	if (n % 2)
		die("odd hex length");
	b = malloc(n / 2 ? n / 2 : 1);
	for (size_t i = 0; i < n / 2; i++) {
		unsigned int v;

		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			die("bad hex");
		b[i] = (unsigned char)v;
	}
	*out = b;
	return (int)(n / 2);
}

/* Replaces the tree buffer with an exact-size copy of buf[0..len). */
static void adopt(const unsigned char *buf, size_t len)
{
	unsigned char *copy = malloc(len);

	if (!copy)
		die("out of memory");
	memcpy(copy, buf, len);
	free(tree);
	tree = copy;
	tree_len = len;
}

/* fdt_open_into with source and destination in one allocation. */
static int open_shifted(int size, long shift)
{
	size_t s0 = shift < 0 ? (size_t)-shift : 0;
	size_t d0 = shift > 0 ? (size_t)shift : 0;
	size_t span = s0 + tree_len > d0 + size ? s0 + tree_len : d0 + size;
	unsigned char *big = calloc(1, span);
	int err;

	memcpy(big + s0, tree, tree_len);
	err = fdt_open_into(big + s0, big + d0, size);
	if (!err)
		adopt(big + d0, size);
	free(big);
	return err;
}

/*
 * Walks every node below 'node' with the read API, touching the calls a
 * boot wrapper makes.  Returns the node count or the first error.
 */
static int walk(const void *fdt, int node, int depth)
{
	static const char *const props[] = {
		"compatible", "reg", "#address-cells", "name", "bootargs",
	};
	int count = 1, child, len, r;
	const char *name;
	u64 v;

	if (depth > 64)
		return -FDT_ERR_BADSTRUCTURE;
	name = fdt_get_name(fdt, node, &len);
	if (!name)
		return len;
	for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++) {
		const unsigned char *p = fdt_getprop(fdt, node, props[i], &len);

		if (!p && len != -FDT_ERR_NOTFOUND)
			return len;
		/* Touch every byte so ASan sees the whole value. */
		for (int j = 0; p && j < len; j++)
			count += p[j] & 0;
		if (p && len >= 8)
			fdt_read_cells(p, 2, &v);
	}
	r = fdt_address_cells(fdt, node);
	if (r < 0 && r != -FDT_ERR_BADNCELLS)
		return r;
	r = fdt_size_cells(fdt, node);
	if (r < 0 && r != -FDT_ERR_BADNCELLS)
		return r;
	for (child = fdt_first_subnode(fdt, node); child >= 0;
	     child = fdt_next_subnode(fdt, child)) {
		r = walk(fdt, child, depth + 1);
		if (r < 0)
			return r;
		count += r;
	}
	return child == -FDT_ERR_NOTFOUND ? count : child;
}

static int probe(const unsigned char *buf, size_t len)
{
	int err = usable(buf, len), n, nodes;
	u64 a, s;

	if (err)
		return err;
	n = fdt_num_mem_rsv(buf);
	if (n < 0)
		return n;
	for (int i = 0; i < n; i++) {
		err = fdt_get_mem_rsv(buf, i, &a, &s);
		if (err)
			return err;
	}
	nodes = walk(buf, 0, 0);
	if (nodes < 0)
		return nodes;
	err = fdt_path_offset(buf, "/chosen");
	if (err < 0 && err != -FDT_ERR_NOTFOUND)
		return err;
	err = fdt_path_offset(buf, "/memory/none");
	if (err < 0 && err != -FDT_ERR_NOTFOUND)
		return err;
	return nodes;
}

/*
 * Opens a probed tree into a larger buffer and edits it: the write side
 * on whatever a corrupt tree let through the checks.
 */
static int probe_write(const unsigned char *buf, size_t len)
{
	int size = (int)len + 256, err, node;
	unsigned char *big = malloc(size);

	err = fdt_open_into(buf, big, size);
	if (!err) {
		node = fdt_add_subnode(big, 0, "probe");
		if (node >= 0)
			err = fdt_setprop_u32(big, node, "x", 1);
		else if (node != -FDT_ERR_EXISTS)
			err = node;
	}
	if (!err)
		err = fdt_setprop_string(big, 0, "model", "probe");
	if (!err)
		err = fdt_pack(big);
	if (!err)
		err = probe(big, fdt_totalsize(big));
	free(big);
	return err < 0 ? err : 0;
}

static void print_probe(int r)
{
	if (r < 0)
		printf("err %d", r);
	else
		printf("ok %d", r);
}

/* What the read and write probes make of a tree: "read [write]". */
static void judge_probe(const unsigned char *buf, size_t len)
{
	int r = probe(buf, len);

	print_probe(r);
	if (r >= 0) {
		printf(" ");
		print_probe(probe_write(buf, len));
	}
}

/* fdt_check_full's verdict, then the probes of a tree that passed it. */
static void judge_full(const unsigned char *buf, size_t len)
{
	int r = fdt_check_full(buf, len);

	print_probe(r);
	if (r == 0) {
		printf(" ");
		judge_probe(buf, len);
	}
}

/*
 * Every byte, set to a few values, each corrupt copy judged in a buffer
 * of the tree's size: prints "pos value " and the judge's line.
 */
static void mutate_each(void (*judge)(const unsigned char *, size_t))
{
	static const int kinds[] = { 0x00, 0xff, -1, -2 };
	unsigned char *copy = malloc(tree_len);

	for (size_t i = 0; i < tree_len; i++) {
		for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
			int v = kinds[k] >= 0 ? kinds[k] :
				tree[i] ^ (kinds[k] == -1 ? 0x01 : 0x80);

			memcpy(copy, tree, tree_len);
			copy[i] = (unsigned char)v;
			printf("%zu %02x ", i, v);
			judge(copy, tree_len);
			printf("\n");
		}
	}
	free(copy);
}

/* The error codes fdt.h defines, by name, for comparison with libfdt's. */
struct errcode {
	const char *name;
	int code;
};

#define ERRCODE(name)	{ "FDT_ERR_" #name, FDT_ERR_##name }
static const struct errcode errcodes[] = {
	ERRCODE(NOTFOUND), ERRCODE(EXISTS), ERRCODE(NOSPACE),
	ERRCODE(BADOFFSET), ERRCODE(BADPATH), ERRCODE(TRUNCATED),
	ERRCODE(BADMAGIC), ERRCODE(BADVERSION), ERRCODE(BADSTRUCTURE),
	ERRCODE(BADLAYOUT), ERRCODE(BADNCELLS), ERRCODE(BADVALUE),
};

/* Ours, which must not collide with libfdt's. */
#define BWCODE(name)	{ "BW_FDT_ERR_" #name, BW_FDT_ERR_##name }
static const struct errcode bwerrcodes[] = {
	BWCODE(TOTALSIZE_SMALL), BWCODE(TOTALSIZE_LARGE),
	BWCODE(RSVMAP_MISPLACED), BWCODE(STRUCT_MISPLACED),
	BWCODE(STRINGS_MISPLACED), BWCODE(RSVMAP_PAST_END),
	BWCODE(STRUCT_PAST_END), BWCODE(STRINGS_PAST_END),
	BWCODE(STRUCT_SIZE), BWCODE(BLOCKS_OVERLAP),
	BWCODE(RSVMAP_UNTERMINATED), BWCODE(NO_END), BWCODE(BAD_TOKEN),
	BWCODE(NODE_NAME), BWCODE(ROOT_NAME), BWCODE(SECOND_ROOT),
	BWCODE(PROP_OUTSIDE), BWCODE(PROP_PAST_END), BWCODE(NAME_OFFSET),
	BWCODE(NAME_UNTERMINATED), BWCODE(END_NODE_OUTSIDE),
	BWCODE(NODE_OPEN), BWCODE(NO_ROOT), BWCODE(AFTER_END),
};

static void print_codes(const struct errcode *codes, size_t n)
{
	for (size_t k = 0; k < n; k++)
		printf("%s=%d\n", codes[k].name, codes[k].code);
}

static int need(int argc, int i, int n)
{
	if (i + n >= argc)
		die("missing operand");
	return i + n + 1;
}

static int run_op(int argc, char **argv, int i)
{
	const char *op = argv[i];
	int node, len, r, next;
	unsigned char *val;
	u64 a, s;

	if (!strcmp(op, "check")) {
		r = usable(tree, tree_len);
		if (r)
			printf("err %d\n", r);
		else
			printf("ok\n");
		return i + 1;
	}
	if (!strcmp(op, "probe")) {
		print_probe(probe(tree, tree_len));
		printf("\n");
		return i + 1;
	}
	if (!strcmp(op, "strerror")) {
		next = need(argc, i, 1);
		printf("%s\n", fdt_strerror(atoi(argv[i + 1])));
		return next;
	}
	if (!strcmp(op, "errcodes")) {
		print_codes(errcodes, sizeof(errcodes) / sizeof(errcodes[0]));
		return i + 1;
	}
	if (!strcmp(op, "bwerrcodes")) {
		print_codes(bwerrcodes, sizeof(bwerrcodes) / sizeof(bwerrcodes[0]));
		return i + 1;
	}
	if (!strcmp(op, "errclass")) {
		next = need(argc, i, 1);
		printf("%d\n", fdt_errclass(atoi(argv[i + 1])));
		return next;
	}
	if (!strcmp(op, "full")) {
		/* The buffer's real size: ASan sees any read past it. */
		r = fdt_check_full(tree, tree_len);
		printf(r ? "err %d\n" : "ok\n", r);
		return i + 1;
	}
	if (!strcmp(op, "fullsize")) {
		next = need(argc, i, 1);
		r = fdt_check_full(tree, strtoull(argv[i + 1], NULL, 0));
		printf(r ? "err %d\n" : "ok\n", r);
		return next;
	}
	if (!strcmp(op, "mutatefull")) {
		mutate_each(judge_full);
		return i + 1;
	}
	if (!strcmp(op, "readcells")) {
		next = need(argc, i, 2);
		/* Copied to an exact-size buffer: ASan checks the width. */
		len = parse_hex(argv[i + 1], &val);
		r = fdt_read_cells(val, atoi(argv[i + 2]), &a);
		if (r)
			printf("err %d\n", r);
		else
			printf("0x%llx\n", a);
		free(val);
		return next;
	}
	/* Everything below reads the tree: refuse one that is not whole. */
	r = usable(tree, tree_len);
	if (r && strcmp(op, "mutate"))
		die("tree is not usable; run 'check'");
	if (!strcmp(op, "mutate")) {
		mutate_each(judge_probe);
		return i + 1;
	}
	if (!strcmp(op, "path")) {
		next = need(argc, i, 1);
		print_int(fdt_path_offset(tree, argv[i + 1]));
		return next;
	}
	if (!strcmp(op, "subnode")) {
		next = need(argc, i, 2);
		node = node_arg(argv[i + 1]);
		print_int(node_err ? node_err :
			  fdt_subnode_offset(tree, node, argv[i + 2]));
		return next;
	}
	if (!strcmp(op, "name")) {
		const char *name;

		next = need(argc, i, 1);
		node = node_arg(argv[i + 1]);
		name = fdt_get_name(tree, node, &len);
		if (node_err)
			printf("err %d\n", node_err);
		else if (!name)
			printf("err %d\n", len);
		else
			printf("'%.*s'\n", len, name);
		return next;
	}
	if (!strcmp(op, "subnodes")) {
		next = need(argc, i, 1);
		node = node_arg(argv[i + 1]);
		if (node_err) {
			printf("err %d\n", node_err);
			return next;
		}
		for (r = fdt_first_subnode(tree, node); r >= 0;
		     r = fdt_next_subnode(tree, r))
			printf("%s ", fdt_get_name(tree, r, NULL));
		printf(r == -FDT_ERR_NOTFOUND ? "end\n" : "err %d\n", r);
		return next;
	}
	if (!strcmp(op, "getprop")) {
		const unsigned char *p;

		next = need(argc, i, 2);
		node = node_arg(argv[i + 1]);
		p = fdt_getprop(tree, node, argv[i + 2], &len);
		if (node_err)
			printf("err %d\n", node_err);
		else if (!p)
			printf("err %d\n", len);
		else {
			printf("%d ", len);
			print_hex(p, len);
			printf("\n");
		}
		return next;
	}
	if (!strcmp(op, "acells") || !strcmp(op, "scells")) {
		next = need(argc, i, 1);
		node = node_arg(argv[i + 1]);
		print_int(node_err ? node_err : op[0] == 'a' ?
			  fdt_address_cells(tree, node) :
			  fdt_size_cells(tree, node));
		return next;
	}
	if (!strcmp(op, "rsv")) {
		r = print_int(fdt_num_mem_rsv(tree));
		for (int n = 0; n < r; n++) {
			int e = fdt_get_mem_rsv(tree, n, &a, &s);

			if (e)
				printf("err %d\n", e);
			else
				printf("0x%llx 0x%llx\n", a, s);
		}
		return i + 1;
	}
	if (!strcmp(op, "rsvget")) {
		next = need(argc, i, 1);
		r = fdt_get_mem_rsv(tree, atoi(argv[i + 1]), &a, &s);
		if (r)
			printf("err %d\n", r);
		else
			printf("0x%llx 0x%llx\n", a, s);
		return next;
	}
	if (!strcmp(op, "open")) {
		unsigned char *buf;

		next = need(argc, i, 1);
		len = atoi(argv[i + 1]);
		buf = malloc(len > 0 ? len : 1);
		r = fdt_open_into(tree, buf, len);
		if (!r)
			adopt(buf, len);
		free(buf);
		printf(r ? "err %d\n" : "ok\n", r);
		return next;
	}
	if (!strcmp(op, "openshift")) {
		next = need(argc, i, 2);
		r = open_shifted(atoi(argv[i + 1]), atol(argv[i + 2]));
		printf(r ? "err %d\n" : "ok\n", r);
		return next;
	}
	if (!strcmp(op, "pack")) {
		r = fdt_pack(tree);
		printf(r ? "err %d\n" : "ok\n", r);
		return i + 1;
	}
	if (!strcmp(op, "setprop") || !strcmp(op, "setstr") ||
	    !strcmp(op, "setu32") || !strcmp(op, "setu64")) {
		const char *arg;

		next = need(argc, i, 3);
		arg = argv[i + 3];
		node = node_arg(argv[i + 1]);
		if (node_err)
			r = node_err;
		else if (op[3] == 'p') {
			len = parse_hex(arg, &val);
			r = fdt_setprop(tree, node, argv[i + 2], val, len);
			free(val);
		} else if (op[3] == 's')
			r = fdt_setprop_string(tree, node, argv[i + 2], arg);
		else if (op[4] == '3')
			r = fdt_setprop_u32(tree, node, argv[i + 2],
					    (u32)strtoull(arg, NULL, 0));
		else
			r = fdt_setprop_u64(tree, node, argv[i + 2],
					    strtoull(arg, NULL, 0));
		printf(r ? "err %d\n" : "ok\n", r);
		return next;
	}
	if (!strcmp(op, "delprop")) {
		next = need(argc, i, 2);
		node = node_arg(argv[i + 1]);
		r = node_err ? node_err : fdt_delprop(tree, node, argv[i + 2]);
		printf(r ? "err %d\n" : "ok\n", r);
		return next;
	}
	if (!strcmp(op, "addnode")) {
		next = need(argc, i, 2);
		node = node_arg(argv[i + 1]);
		print_int(node_err ? node_err :
			  fdt_add_subnode(tree, node, argv[i + 2]));
		return next;
	}
	if (!strcmp(op, "write")) {
		FILE *f;

		next = need(argc, i, 1);
		f = fopen(argv[i + 1], "wb");
		if (!f || fwrite(tree, 1, fdt_totalsize(tree), f) !=
		    fdt_totalsize(tree))
			die("write failed");
		fclose(f);
		printf("ok\n");
		return next;
	}
	fprintf(stderr, "fdt_driver: unknown op '%s'\n", op);
	exit(2);
}

int main(int argc, char **argv)
{
	int i;

	if (argc < 2)
		die("usage: fdt_driver FILE OP... | --probe FILE...");
	if (!strcmp(argv[1], "--full")) {
		for (i = 2; i < argc; i++) {
			size_t len;
			unsigned char *buf = read_file(argv[i], &len);
			int r = fdt_check_full(buf, len);

			printf(r ? "err %d\n" : "ok\n", r);
			free(buf);
		}
		return 0;
	}
	if (!strcmp(argv[1], "--probe")) {
		for (i = 2; i < argc; i++) {
			size_t len;
			unsigned char *buf = read_file(argv[i], &len);

			print_probe(probe(buf, len));
			printf("\n");
			free(buf);
		}
		return 0;
	}
	tree = read_file(argv[1], &tree_len);
	for (i = 2; i < argc;)
		i = run_op(argc, argv, i);
	free(tree);
	return 0;
}
