/*
 * What differs between platforms and consoles sits behind these tables, so
 * a new platform is a new file that fills one in, not new #ifdefs.
 */
#ifndef BW_OPS_H
#define BW_OPS_H

#include "types.h"
#include "guest_abi.h"

/* Where everything is while the wrapper runs; filled in as boot proceeds. */
struct boot_info {
	u64 load_addr;		/* where the wrapper image starts (r4) */
	u64 image_end;		/* one past the wrapper's last byte (bss, stack) */
	const void *dtb_in;	/* the device tree we were handed (r3) */
	int chosen;		/* /chosen's node offset, in dtb_in and in dtb
				 * (fdt_open_into keeps offsets), or
				 * -FDT_ERR_NOTFOUND */
	void *dtb;		/* the working copy, in the heap */
	u64 dtb_size;		/* its buffer size */
	u64 initrd_start;	/* initrd as it will be handed on, or 0 and 0 */
	u64 initrd_end;
	u64 kernel_addr;	/* where the kernel image was placed */
	u64 kernel_size;	/* its memory size (ELF PT_LOAD span) */
	u64 kernel_entry;	/* address jumped to */
};

/* A platform: how memory is found and where things go. */
struct platform_ops {
	const char *name;
	/*
	 * Memory discovery and the heap; runs once the console is up, with
	 * bi->kernel_size already known (a policy may ignore it).
	 */
	int (*init)(struct boot_info *bi);
	/* Called once the kernel's memory size is known; returns its address. */
	int (*kernel_alloc)(struct boot_info *bi, u64 memsize, u64 *addr);
	/* Last changes to the device tree before hand-off. */
	int (*finalize)(struct boot_info *bi);
};

/* A byte-at-a-time console device. */
struct serial_ops {
	const char *name;
	/* Returns 0 when the device named by the tree node can be used. */
	int (*open)(const void *fdt, int node);
	void (*putc)(char c);
	/* Optional: many bytes at once, for devices that take them in
	 * batches (the PAPR vty takes 16 a hypercall); NULL means putc. */
	void (*write)(const char *buf, size_t len);
};

extern const struct platform_ops *platform;

/* console.c: picks a serial_ops from /chosen stdout-path (chosen: its
 * node offset, or a negative error when there is none). */
int console_open(const void *fdt, int chosen);
void console_write(const char *buf, size_t len);

/*
 * main.c: prints "FATAL: " and the message, then stops with bw_stop.  code
 * is a BW_FATAL_* from guest_abi.h naming the check that failed, never 0.
 */
void __attribute__((noreturn)) fatal(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * crt0.S: never returns.  The emulator sees a trap with r3 = message and
 * r4 = code (a BW_FATAL_*).
 */
void __attribute__((noreturn)) bw_stop(const char *message, int code);
void __attribute__((noreturn)) bw_enter_kernel(u64 dtb, u64 kernel,
					       u64 entry);

#endif
