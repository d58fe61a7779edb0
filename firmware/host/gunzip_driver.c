/*
 * Host driver for inflate.c, used by tests/test_gunzip.py.
 *
 *   gunzip_driver FILE SKIP LEN   output bytes [SKIP, SKIP+LEN) to stdout
 *   gunzip_driver --size FILE     print gunzip_size()
 *   gunzip_driver --is-gzip FILE  print gunzip_is_gzip()
 *   gunzip_driver --strerror N    print gunzip_strerror(N)
 *
 * On a decoder error the message goes to stderr and the exit status is the
 * error code (positive).  The input is read into a buffer of exactly the
 * file's size and the output buffer is exactly LEN bytes, so AddressSanitizer
 * catches any access past either.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gunzip.h"

static unsigned char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	size_t cap = 0, n = 0, got;

	if (!f) {
		perror(path);
		exit(100);
	}
	for (;;) {
		if (n == cap) {
			cap = cap ? cap * 2 : 4096;
			buf = realloc(buf, cap);
			if (!buf)
				exit(101);
		}
		got = fread(buf + n, 1, cap - n, f);
		if (got == 0)
			break;
		n += got;
	}
	fclose(f);
	/* shrink to the exact size so over-reads hit the redzone */
	buf = realloc(buf, n ? n : 1);
	*len = n;
	return buf;
}

static unsigned long long parse_u64(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 0);

	if (*s == '\0' || *end != '\0') {
		fprintf(stderr, "bad number: %s\n", s);
		exit(102);
	}
	return v;
}

static int fail(long long ret)
{
	fprintf(stderr, "gunzip: %s\n", gunzip_strerror((int)ret));
	return (int)-ret;
}

int main(int argc, char **argv)
{
	unsigned char *src, *dst;
	size_t srclen;
	unsigned long long skip, len;
	long long ret;

	if (argc == 3 && !strcmp(argv[1], "--strerror")) {
		printf("%s\n", gunzip_strerror(atoi(argv[2])));
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "--size")) {
		src = read_file(argv[2], &srclen);
		ret = gunzip_size(src, srclen);
		free(src);
		if (ret < 0)
			return fail(ret);
		printf("%lld\n", ret);
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "--is-gzip")) {
		src = read_file(argv[2], &srclen);
		printf("%d\n", gunzip_is_gzip(src, srclen));
		free(src);
		return 0;
	}
	if (argc != 4) {
		fprintf(stderr, "usage: %s FILE SKIP LEN\n", argv[0]);
		return 103;
	}
	src = read_file(argv[1], &srclen);
	skip = parse_u64(argv[2]);
	len = parse_u64(argv[3]);
	dst = malloc(len ? len : 1);
	if (!dst)
		return 101;
	ret = gunzip_range(src, srclen, dst, skip, len);
	if (ret < 0) {
		free(src);
		free(dst);
		return fail(ret);
	}
	if (ret != (long long)len) {
		fprintf(stderr, "gunzip_range returned %lld, not %llu\n", ret, len);
		return 104;
	}
	fwrite(dst, 1, len, stdout);
	free(src);
	free(dst);
	return 0;
}
