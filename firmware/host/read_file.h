/*
 * For the host drivers: a whole file in a buffer of exactly its size, so
 * that AddressSanitizer catches any read past its end.  A file that cannot
 * be read ends the driver with status 100 and the reason on stderr.
 */
#ifndef BW_HOST_READ_FILE_H
#define BW_HOST_READ_FILE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL, *exact;
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
	/* A fresh block of the exact size (realloc may shrink in place). */
	exact = malloc(n ? n : 1);
	if (!exact)
		exit(101);
	memcpy(exact, buf, n);
	free(buf);
	*len = n;
	return exact;
}

#endif
