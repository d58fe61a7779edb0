/*
 * Host driver for elf.c, used by tests/test_elf.py.
 *
 *   elf_driver FILE            parse FILE, print elf_info as key=value lines
 *   elf_driver --strerror N    print elf_strerror(N)
 *
 * On an error the message goes to stderr and the exit status is the error
 * code (positive).  The file is held in a buffer of exactly its size so
 * AddressSanitizer catches any read past it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "elf.h"

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
	buf = realloc(buf, n ? n : 1);
	*len = n;
	return buf;
}

int main(int argc, char **argv)
{
	struct elf_info info;
	unsigned char *buf;
	size_t len;
	unsigned int i;
	int ret;

	if (argc == 3 && !strcmp(argv[1], "--strerror")) {
		printf("%s\n", elf_strerror(atoi(argv[2])));
		return 0;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: %s FILE\n", argv[0]);
		return 103;
	}
	buf = read_file(argv[1], &len);
	/* poison, so a field elf_parse forgot to set shows up */
	memset(&info, 0xa5, sizeof(info));
	ret = elf_parse(buf, len, &info);
	free(buf);
	if (ret) {
		fprintf(stderr, "elf: %s\n", elf_strerror(ret));
		return -ret;
	}
	printf("entry=0x%llx\n", info.entry);
	printf("base=0x%llx\n", info.base);
	printf("memsize=0x%llx\n", info.memsize);
	printf("phdrs_end=0x%llx\n", info.phdrs_end);
	printf("nsegments=%u\n", info.nsegments);
	for (i = 0; i < info.nsegments && i < ELF_MAX_SEGMENTS; i++)
		printf("seg%u=0x%llx,0x%llx,0x%llx,0x%llx\n", i,
		       info.seg[i].offset, info.seg[i].filesz,
		       info.seg[i].memsz, info.seg[i].paddr);
	return 0;
}
