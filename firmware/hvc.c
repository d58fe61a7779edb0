/*
 * The PAPR virtual terminal ("vty" node, compatible "hvterm1") as the
 * console: bytes go to the hypervisor with the H_PUT_TERM_CHAR hypercall,
 * up to 16 of them a call.
 *
 * Only the raw hvterm1 protocol is spoken.  "hvterm-protocol" nodes carry
 * HVSI, which frames all data in packets after a handshake; raw bytes sent
 * there would not appear as text, so such nodes are not matched.
 */
#include "types.h"
#include "fdt.h"
#include "ops.h"

#define H_PUT_TERM_CHAR		0x58
#define H_SUCCESS		0
#define H_BUSY			1
#define H_LONG_BUSY_FIRST	9900	/* 9900..9905: busy, retry later */
#define H_LONG_BUSY_LAST	9905

#define HVC_MAX_CHUNK		16	/* bytes one hypercall carries */
#define HVC_MAX_RETRIES		64	/* busy answers before giving up */

static u64 hvc_termno;

/*
 * One H_PUT_TERM_CHAR: r4 terminal, r5 count, r6/r7 the bytes packed
 * big-endian from the most significant end.  The hypervisor preserves the
 * non-volatile GPRs; everything else, the whole CR and LR included, is
 * declared clobbered so no assumption about it is needed.
 */
static s64 hcall_put_term_char(u64 termno, u64 len, u64 hi, u64 lo)
{
	register u64 r3 __asm__("r3") = H_PUT_TERM_CHAR;
	register u64 r4 __asm__("r4") = termno;
	register u64 r5 __asm__("r5") = len;
	register u64 r6 __asm__("r6") = hi;
	register u64 r7 __asm__("r7") = lo;

	__asm__ __volatile__("sc 1"
			     : "+r"(r3), "+r"(r4), "+r"(r5), "+r"(r6),
			       "+r"(r7)
			     :
			     : "r0", "r8", "r9", "r10", "r11", "r12",
			       "cr0", "cr1", "cr2", "cr3", "cr4", "cr5", "cr6",
			       "cr7", "ctr", "lr", "xer", "memory");
	return (s64)r3;
}

static int is_busy(s64 rc)
{
	return rc == H_BUSY ||
	       (rc >= H_LONG_BUSY_FIRST && rc <= H_LONG_BUSY_LAST);
}

/* Sends up to 16 bytes, retrying a bounded number of times while busy. */
static void hvc_put_chunk(const char *buf, size_t len)
{
	u64 word[2] = { 0, 0 };
	size_t i;
	int tries;

	for (i = 0; i < len; i++)
		word[i / 8] |= (u64)(u8)buf[i] << (56 - 8 * (i % 8));
	for (tries = 0; tries < HVC_MAX_RETRIES; tries++) {
		if (!is_busy(hcall_put_term_char(hvc_termno, len, word[0],
						 word[1])))
			return;
	}
}

static void hvc_write(const char *buf, size_t len)
{
	while (len) {
		size_t n = len < HVC_MAX_CHUNK ? len : HVC_MAX_CHUNK;

		hvc_put_chunk(buf, n);
		buf += n;
		len -= n;
	}
}

static void hvc_putc(char c)
{
	hvc_put_chunk(&c, 1);
}

/* The terminal number is the node's "reg": one cell under /vdevice. */
static int hvc_open(const void *fdt, int node)
{
	int len;
	const void *reg = fdt_getprop(fdt, node, "reg", &len);

	if (!reg)
		return len;
	if (len != 4)
		return -FDT_ERR_BADVALUE;
	return fdt_read_cells(reg, 1, &hvc_termno);
}

const struct serial_ops hvc_ops = {
	.name = "hvc",
	.open = hvc_open,
	.putc = hvc_putc,
	.write = hvc_write,
};
