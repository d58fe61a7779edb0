/*
 * The kernel payload (and optionally an initrd), carried inside the image
 * as zImage carries vmlinux.  KERNEL_PAYLOAD and INITRD_PAYLOAD are file
 * names given by the build (firmware/Makefile, emulator/harness/firmware.py).
 */
	.section ".kernel.vmlinux", "a"
	.incbin	KERNEL_PAYLOAD

	.section ".kernel.initrd", "a"
#ifdef INITRD_PAYLOAD
	.incbin	INITRD_PAYLOAD
#endif
