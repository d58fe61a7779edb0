/*
 * The boot sequence, platform-independent: console, platform set-up
 * (memory, ranges, heap, working device tree), kernel placement and
 * inflation, initrd, final device tree, hand-off.
 */
#include <stdarg.h>
#include "types.h"
#include "string.h"
#include "stdio.h"
#include "fdt.h"
#include "elf.h"
#include "gunzip.h"
#include "simple_alloc.h"
#include "ops.h"
#include "kernel_image.h"

/* From the linker script: the payload and the end of the image. */
extern char _start_image[], _end[];
extern char _vmlinux_start[], _vmlinux_end[];
extern char _initrd_start[], _initrd_end[];

extern const struct platform_ops kexec_platform;
const struct platform_ops *platform = &kexec_platform;

static char fatal_message[256];

void fatal(int code, const char *fmt, ...)
{
	va_list ap;
	int n;

	strcpy(fatal_message, "FATAL: ");
	n = strlen(fatal_message);
	va_start(ap, fmt);
	vsnprintf(fatal_message + n, sizeof(fatal_message) - n, fmt, ap);
	va_end(ap);
	console_write(fatal_message, strlen(fatal_message));
	console_write("\n", 1);
	bw_stop(fatal_message, code);
}

void kernel_image_get(struct kernel_image *ki)
{
	ki->data = (const u8 *)_vmlinux_start;
	ki->size = _vmlinux_end - _vmlinux_start;
	ki->gzipped = gunzip_is_gzip(ki->data, ki->size);
}

/*
 * Copies payload bytes [skip, skip + len) to dst, inflating if needed.
 * With verify, a gzip stream is decoded to its end and its trailer checked
 * (CRC-32 and ISIZE of all the data, whatever part of it is copied).
 */
static void kernel_image_read(const struct kernel_image *ki, void *dst,
			      u64 skip, u64 len, int verify)
{
	s64 got;

	if (!ki->gzipped) {
		if (skip > ki->size || len > ki->size - skip)
			fatal(BW_FATAL_KERNEL_SHORT,
			      "kernel image: bytes 0x%llx..0x%llx past its end "
			      "(0x%llx)", skip, skip + len, (u64)ki->size);
		memcpy(dst, ki->data + skip, len);
		return;
	}
	if (verify)
		got = gunzip_range_verified(ki->data, ki->size, dst, skip, len);
	else
		got = gunzip_range(ki->data, ki->size, dst, skip, len);
	if (got < 0)
		fatal(BW_FATAL_KERNEL_GZIP, "kernel image: %s",
		      gunzip_strerror((int)got));
}

void kernel_image_probe(const struct kernel_image *ki, struct elf_info *ei)
{
	/* The ELF header and program headers sit at the start of the file. */
	static u8 hdr[1024];
	u64 len = sizeof(hdr);
	int err;

	if (ki->size == 0)
		fatal(BW_FATAL_NO_KERNEL, "no kernel in the image");
	if (ki->gzipped) {
		s64 total = gunzip_size(ki->data, ki->size);

		if (total < 0)
			fatal(BW_FATAL_KERNEL_GZIP, "kernel image: %s",
			      gunzip_strerror((int)total));
		/* All of it, then: gunzip_range checks the trailer too. */
		if ((u64)total < len)
			len = total;
	} else if (ki->size < len) {
		len = ki->size;
	}
	kernel_image_read(ki, hdr, 0, len, 0);
	err = elf_parse(hdr, len, ei);
	if (err)
		fatal(BW_FATAL_KERNEL_ELF, "kernel image: %s", elf_strerror(err));
}

/*
 * Inflates every PT_LOAD segment to addr and zeroes what follows each.
 * Each segment is decoded from the stream's start, so the one that ends
 * furthest into the file is decoded on to the stream's end, which checks
 * its trailer (CRC-32 and ISIZE) over all of the data: the wrapper hands
 * on no kernel whose stream does not match its trailer.
 */
static void kernel_image_load(const struct kernel_image *ki,
			      const struct elf_info *ei, u64 addr)
{
	u32 i, last = 0;

	for (i = 1; i < ei->nsegments; i++)
		if (ei->seg[i].offset + ei->seg[i].filesz >
		    ei->seg[last].offset + ei->seg[last].filesz)
			last = i;
	for (i = 0; i < ei->nsegments; i++) {
		const struct elf_segment *s = &ei->seg[i];
		u8 *dst = (u8 *)(addr + s->paddr);

		kernel_image_read(ki, dst, s->offset, s->filesz, i == last);
		memset(dst + s->filesz, 0, s->memsz - s->filesz);
	}
}

/* An initrd attached to the image moves to the heap: the image is not kept. */
static void attached_initrd(struct boot_info *bi)
{
	u64 size = _initrd_end - _initrd_start;
	void *p;

	if (size == 0)
		return;
	if (bi->initrd_end > bi->initrd_start)
		printf("initrd attached to the image replaces the one at "
		       "0x%llx..0x%llx\n", bi->initrd_start, bi->initrd_end);
	p = malloc(size);
	if (!p)
		fatal(BW_FATAL_INITRD_ALLOC,
		      "no room for the attached initrd (0x%llx bytes)", size);
	memmove(p, _initrd_start, size);
	bi->initrd_start = (u64)p;
	bi->initrd_end = (u64)p + size;
}

void start_wrapper(void *dtb, u64 base, u64 loader_r4)
{
	struct boot_info bi;
	struct kernel_image ki;
	struct elf_info ei;
	int err;

	memset(&bi, 0, sizeof(bi));
	bi.load_addr = base;
	bi.image_end = (u64)_end;
	bi.dtb_in = dtb;

	/*
	 * The whole tree, before anything reads it (docs/kexec.md step 0).
	 * No buffer size is known: the header's totalsize is the extent.
	 */
	err = fdt_check_full(dtb, FDT_SIZE_UNKNOWN);
	if (err)
		fatal(BW_FATAL_TREE, "device tree at %p: %s", dtb,
		      fdt_strerror(err));
	/* Looked up once: the console, the platform and the final tree. */
	bi.chosen = fdt_path_offset(dtb, "/chosen");
	if (bi.chosen < 0 && bi.chosen != -FDT_ERR_NOTFOUND)
		fatal(BW_FATAL_TREE, "device tree: /chosen: %s",
		      fdt_strerror(bi.chosen));
	console_open(dtb, bi.chosen);
	printf("\nbwemu wrapper: running at 0x%llx..0x%llx (loader said 0x%llx),"
	       " device tree at %p\n", base, bi.image_end, loader_r4, dtb);

	/*
	 * The kernel's ELF header is read once, here; whether the platform
	 * may use its size before setting up the heap is its policy.
	 */
	kernel_image_get(&ki);
	kernel_image_probe(&ki, &ei);
	bi.kernel_size = ei.memsize;
	err = platform->init(&bi);
	if (err)
		fatal(BW_FATAL_PLATFORM_INIT, "platform %s: init failed (%d)",
		      platform->name, err);

	err = platform->kernel_alloc(&bi, ei.memsize, &bi.kernel_addr);
	if (err)
		fatal(BW_FATAL_KERNEL, "no room for the kernel (0x%llx bytes)",
		      ei.memsize);
	printf("kernel: 0x%llx bytes at 0x%llx\n", ei.memsize, bi.kernel_addr);
	kernel_image_load(&ki, &ei, bi.kernel_addr);
	bi.kernel_entry = bi.kernel_addr + ei.entry;

	attached_initrd(&bi);
	err = platform->finalize(&bi);
	if (err)
		fatal(BW_FATAL_FINAL_TREE, "device tree: %s", fdt_strerror(err));

	printf("entering kernel at 0x%llx, device tree at %p\n",
	       bi.kernel_entry, bi.dtb);
	bw_enter_kernel((u64)bi.dtb, bi.kernel_addr, bi.kernel_entry);
}
