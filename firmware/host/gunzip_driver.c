/*
 * Host driver for inflate.c, used by tests/test_gunzip.py.
 *
 *   gunzip_driver FILE SKIP LEN   output bytes [SKIP, SKIP+LEN) to stdout
 *   gunzip_driver --verified ...  the same through gunzip_range_verified()
 *                                 (before FILE SKIP LEN or --batch)
 *   gunzip_driver --size FILE     print gunzip_size()
 *   gunzip_driver --is-gzip FILE  print gunzip_is_gzip()
 *   gunzip_driver --strerror N    print gunzip_strerror(N)
 *   gunzip_driver --batch         for each "FILE SKIP LEN" line on stdin,
 *                                 print "RC N\n" and the N output bytes
 *                                 (N = LEN on success, 0 on an error)
 *
 * On a decoder error the message goes to stderr and the exit status is the
 * error code (positive).  The input is read into a buffer of exactly the
 * file's size and the output buffer is exactly LEN bytes, so AddressSanitizer
 * catches any access past either.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "read_file.h"

#include "gunzip.h"

static int verified;	/* --verified: gunzip_range_verified() */

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

/* Decodes one request; returns 0 or the positive error code. */
static int decode_file(const char *path, unsigned long long skip,
		       unsigned long long len, unsigned char **out)
{
	unsigned char *src, *dst;
	size_t srclen;
	long long ret;

	src = read_file(path, &srclen);
	dst = malloc(len ? len : 1);
	if (!dst)
		exit(101);
	if (verified)
		ret = gunzip_range_verified(src, srclen, dst, skip, len);
	else
		ret = gunzip_range(src, srclen, dst, skip, len);
	free(src);
	if (ret >= 0 && ret != (long long)len) {
		fprintf(stderr, "gunzip_range returned %lld, not %llu\n", ret, len);
		exit(104);
	}
	if (ret < 0) {
		free(dst);
		*out = NULL;
		return (int)-ret;
	}
	*out = dst;
	return 0;
}

/* Many requests in one process: the sanitizer start-up cost is paid once. */
static int batch(void)
{
	char path[4096];
	unsigned long long skip, len;
	unsigned char *out;
	int rc;

	while (scanf("%4095s %llu %llu", path, &skip, &len) == 3) {
		rc = decode_file(path, skip, len, &out);
		printf("%d %llu\n", rc, rc ? 0ULL : len);
		if (!rc) {
			fwrite(out, 1, len, stdout);
			free(out);
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	unsigned char *src, *dst;
	size_t srclen;
	unsigned long long skip, len;
	long long ret;
	int rc;

	if (argc >= 2 && !strcmp(argv[1], "--verified")) {
		verified = 1;
		argc--;
		argv++;
	}
	if (argc == 2 && !strcmp(argv[1], "--batch"))
		return batch();
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
		fprintf(stderr, "usage: gunzip_driver [--verified] FILE SKIP LEN\n");
		return 103;
	}
	skip = parse_u64(argv[2]);
	len = parse_u64(argv[3]);
	rc = decode_file(argv[1], skip, len, &dst);
	if (rc) {
		fprintf(stderr, "gunzip: %s\n", gunzip_strerror(-rc));
		return rc;
	}
	fwrite(dst, 1, len, stdout);
	free(dst);
	return 0;
}
