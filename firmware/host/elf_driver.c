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

#include "read_file.h"

#include "elf.h"

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
