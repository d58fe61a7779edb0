/* The kernel payload carried in the image (main.c). */
#ifndef BW_KERNEL_IMAGE_H
#define BW_KERNEL_IMAGE_H

#include "types.h"
#include "elf.h"

struct kernel_image {
	const u8 *data;		/* gzip stream or raw ELF */
	u64 size;
	int gzipped;
};

void kernel_image_get(struct kernel_image *ki);
/* Reads the ELF header; a fatal error if it cannot. */
void kernel_image_probe(const struct kernel_image *ki, struct elf_info *ei);

#endif
