/*
 * gzip (RFC 1952) container + DEFLATE (RFC 1951) decoder, written for this
 * project (inflate.c).  It decodes from the start of the stream each call
 * and keeps only output bytes [skip, skip + len): that lets the wrapper read
 * a kernel's ELF header first and then inflate each segment straight to its
 * final address, without a buffer for the whole kernel.
 */
#ifndef BW_GUNZIP_H
#define BW_GUNZIP_H

#include "types.h"

#define GUNZIP_ERR_TRUNCATED	1	/* input ended inside the stream */
#define GUNZIP_ERR_BADHEADER	2	/* not gzip, or unsupported flags */
#define GUNZIP_ERR_BADBLOCK	3	/* reserved block type 3 */
#define GUNZIP_ERR_BADSTORED	4	/* stored block LEN/NLEN mismatch */
#define GUNZIP_ERR_BADCODES	5	/* invalid Huffman code lengths */
#define GUNZIP_ERR_BADSYMBOL	6	/* undecodable or invalid symbol */
#define GUNZIP_ERR_BADDISTANCE	7	/* distance before start of output */
#define GUNZIP_ERR_BADCRC	8	/* CRC-32 of the data does not match */
#define GUNZIP_ERR_BADLENGTH	9	/* ISIZE does not match */
#define GUNZIP_ERR_SHORT	10	/* stream ended before skip + len */
#define GUNZIP_ERR_MAX		10

/* True when buf starts with the gzip magic 1f 8b. */
int gunzip_is_gzip(const void *buf, size_t len);

/*
 * Decodes the gzip stream src[0, srclen) and writes output bytes
 * [skip, skip + len) to dst.  Returns the number of bytes written (len), or
 * a negative -GUNZIP_ERR_*.  When the stream is decoded to its end (which
 * happens when skip + len reaches the end of the data), the CRC-32 and
 * ISIZE trailer are checked.
 */
s64 gunzip_range(const void *src, size_t srclen, void *dst, u64 skip,
		 u64 len);

/*
 * As gunzip_range, but the whole stream is decoded whatever the range, and
 * its trailer checked: -GUNZIP_ERR_BADCRC when the CRC-32 of all the data
 * differs from the trailer's, -GUNZIP_ERR_BADLENGTH when ISIZE differs
 * from its length (mod 2^32).  Output bytes [skip, skip + len) are written
 * to dst on the way, as gunzip_range writes them.
 */
s64 gunzip_range_verified(const void *src, size_t srclen, void *dst,
			  u64 skip, u64 len);

/* Total decompressed size, read from the ISIZE trailer (mod 2^32). */
s64 gunzip_size(const void *src, size_t srclen);

const char *gunzip_strerror(int err);

#endif
