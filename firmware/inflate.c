/*
 * gzip (RFC 1952) container and DEFLATE (RFC 1951) decoder.
 *
 * gunzip_range() decodes from the start of the stream on every call and
 * keeps only the output bytes [skip, skip + len).  Back-references are
 * served from a 32 KiB sliding window, so the whole output never has to be
 * in memory: the wrapper can read the kernel's ELF header first and then
 * inflate each segment straight to where it belongs.
 *
 * Stopping rule: once skip + len bytes exist, decoding goes on only until
 * the next symbol that would produce output.  If instead the stream ends
 * there (end-of-block of the final block, maybe after empty blocks), the
 * request covered all of the data and the trailer (ISIZE, CRC-32) is
 * checked.  When skip + len is the size the last four bytes of the input
 * announce (the caller asks for everything), the CRC is computed on the
 * way and decoding goes on to the trailer even if more output follows, so
 * that surplus is reported as a length error instead of passing unseen.
 * If the stream ends at skip + len without that announcement (padding
 * after the trailer), it is decoded once more with the CRC on, so a
 * request reaching the end is always verified.  gunzip_range_verified()
 * decodes every request to the trailer with the CRC on: a caller that
 * needs only part of the data can still have all of it checked.
 *
 * Whenever the stream ends, its trailer is checked before the request's
 * length is: a stream whose ISIZE is not its length is reported as such
 * (BADLENGTH), not as too short for the request.
 *
 * Every input read is bounds-checked, every loop consumes input or output
 * that is bounded, so corrupt data yields an error code, never a fault.
 * The state lives in bss: the wrapper is single-threaded.
 */
#include "types.h"
#include "gunzip.h"

#define WSIZE		32768u		/* DEFLATE's maximum distance */
#define WMASK		(WSIZE - 1)
#define MAXBITS		15		/* longest Huffman code */
#define FAST_BITS	9		/* codes this long decode by one lookup */
#define FAST_SIZE	(1u << FAST_BITS)
#define NLITLEN		288		/* 286 usable + 2 only in the fixed code */
#define NDIST		32		/* 30 usable + 2 only in the fixed code */
#define NCLEN		19		/* code length alphabet */

/* gzip FLG bits (RFC 1952 2.3.1) */
#define FHCRC		0x02
#define FEXTRA		0x04
#define FNAME		0x08
#define FCOMMENT	0x10
#define FRESERVED	0xe0

/* Internal results next to the negative -GUNZIP_ERR_* codes. */
#define RUN_DONE	0	/* stream end reached, trailer fine */
#define RUN_STOPPED	1	/* skip + len produced, more data follows */
#define RUN_NEED_CRC	2	/* reached the end without computing the CRC */

struct huff {
	/* (symbol << 4) | length for codes up to FAST_BITS long, else 0 */
	u16 fast[FAST_SIZE];
	u16 count[MAXBITS + 1];		/* codes of each length */
	u16 sym[NLITLEN];		/* symbols by code length, then value */
};

struct inflate {
	const u8 *src;
	size_t srclen;
	size_t pos;		/* next input byte not yet in bitbuf */
	u64 bitbuf;		/* input bits, least significant first */
	u32 bitcnt;
	u8 *dst;
	u64 skip;
	u64 len;
	u64 end;		/* skip + len */
	u64 stop;		/* end, or U64_MAX to decode to the trailer */
	u64 total;		/* output bytes produced so far */
	u32 crc;		/* running CRC-32 register (inverted) */
	int check_crc;		/* also means: decode to the trailer */
	struct huff lit;	/* literal/length code (or code length code) */
	struct huff dist;
	u8 lens[NLITLEN + NDIST];
	u8 window[WSIZE];
};

static struct inflate state;
static u32 crc_table[256];
static int crc_table_ready;

/* RFC 1951 3.2.5: base values and extra bits of length codes 257..285. */
static const u16 len_base[29] = {
	3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31,
	35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258
};
static const u8 len_extra[29] = {
	0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
	3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0
};

/* ... and of distance codes 0..29. */
static const u16 dist_base[30] = {
	1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193,
	257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145,
	8193, 12289, 16385, 24577
};
static const u8 dist_extra[30] = {
	0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6,
	7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13
};

/* Order in which code length code lengths are sent (RFC 1951 3.2.7). */
static const u8 clen_order[NCLEN] = {
	16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15
};

static u32 get_le32(const u8 *p)
{
	return (u32)p[0] | (u32)p[1] << 8 | (u32)p[2] << 16 | (u32)p[3] << 24;
}

/*
 * CRC-32 of ISO 3309 as gzip uses it: reflected polynomial 0xedb88320.
 * crc_table[n] is the register after shifting the byte n through it from
 * 0, eight steps.  Each step is linear over GF(2), so the entry of n ^ m
 * is the entry of n ^ the entry of m: the eight single-bit entries, then
 * each n as one of them ^ an entry already built (255 XORs, not 2048
 * steps).  The entry of bit k is one step on from that of bit k + 1,
 * and the entry of bit 7 is the polynomial itself.
 */
static u32 crc_step(u32 c)
{
	return (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
}

static void crc_init(void)
{
	u32 bit, n, c = 0xedb88320u;

	if (crc_table_ready)
		return;
	crc_table[0] = 0;
	for (bit = 0x80; bit; bit >>= 1, c = crc_step(c))
		for (n = 0; n < 256; n += 2 * bit)
			crc_table[n | bit] = crc_table[n] ^ c;
	crc_table_ready = 1;
}

static u32 crc_update(u32 reg, const u8 *p, size_t n)
{
	while (n--)
		reg = crc_table[(reg ^ *p++) & 0xff] ^ (reg >> 8);
	return reg;
}

/* --- bit input ---------------------------------------------------------- */

/*
 * Tops bitbuf up to 57..64 bits (fewer only at the end of the input).  In
 * locals: a byte load may alias the state, which would otherwise be
 * reloaded and stored again for every byte.
 */
static void refill(struct inflate *s)
{
	const u8 *src = s->src;
	size_t pos = s->pos, end = s->srclen;
	u64 buf = s->bitbuf;
	u32 cnt = s->bitcnt;

	while (cnt <= 56 && pos < end) {
		buf |= (u64)src[pos++] << cnt;
		cnt += 8;
	}
	s->pos = pos;
	s->bitbuf = buf;
	s->bitcnt = cnt;
}

/*
 * take_bits, get_bits and huff_decode run once or more per symbol: they
 * are inlined, which -Os would not do (each call cost more than its work).
 */
static inline __attribute__((always_inline))
u32 take_bits(struct inflate *s, u32 n)
{
	u32 v = (u32)(s->bitbuf & ((1ull << n) - 1));

	s->bitbuf >>= n;
	s->bitcnt -= n;
	return v;
}

/* Reads n <= 16 bits, or returns -GUNZIP_ERR_TRUNCATED. */
static inline __attribute__((always_inline))
int get_bits(struct inflate *s, u32 n)
{
	if (s->bitcnt < n) {
		refill(s);
		if (s->bitcnt < n)
			return -GUNZIP_ERR_TRUNCATED;
	}
	return (int)take_bits(s, n);
}

/*
 * Drops the bits left of the current byte and gives the whole bytes still
 * in bitbuf back to the input, so byte-aligned data (stored blocks, the
 * trailer) can be read from src directly.
 */
static void align_to_byte(struct inflate *s)
{
	take_bits(s, s->bitcnt & 7);
	s->pos -= s->bitcnt >> 3;
	s->bitbuf = 0;
	s->bitcnt = 0;
}

/* --- output ------------------------------------------------------------- */

/*
 * Each output byte goes to the window, to dst when it lies in
 * [skip, skip + len), and into the CRC when that is being computed.
 */
static inline void put_byte(struct inflate *s, u8 b)
{
	u64 t = s->total++;

	s->window[t & WMASK] = b;
	/* unsigned: true only for skip <= t < skip + len */
	if (t - s->skip < s->len)
		s->dst[t - s->skip] = b;
	if (s->check_crc)
		s->crc = crc_table[(s->crc ^ b) & 0xff] ^ (s->crc >> 8);
}

/*
 * The loops over many bytes keep the state in locals: a byte store through
 * dst may alias the state, and the compiler would otherwise reload every
 * field for every byte.
 */
static void put_bytes(struct inflate *s, const u8 *p, u32 n)
{
	u8 *win = s->window, *dst = s->dst;
	u64 t = s->total, skip = s->skip, want = s->len;
	u32 crc = s->crc;
	int check = s->check_crc;
	u8 b;

	while (n--) {
		b = *p++;
		win[t & WMASK] = b;
		if (t - skip < want)
			dst[t - skip] = b;
		if (check)
			crc = crc_table[(crc ^ b) & 0xff] ^ (crc >> 8);
		t++;
	}
	s->total = t;
	s->crc = crc;
}

/* Copies len bytes from dist back; they may overlap what is being written. */
static void put_match(struct inflate *s, u32 len, u32 dist)
{
	u8 *win = s->window, *dst = s->dst;
	u64 t = s->total, skip = s->skip, want = s->len;
	u32 crc = s->crc;
	int check = s->check_crc;
	u8 b;

	while (len--) {
		b = win[(t - dist) & WMASK];
		win[t & WMASK] = b;
		if (t - skip < want)
			dst[t - skip] = b;
		if (check)
			crc = crc_table[(crc ^ b) & 0xff] ^ (crc >> 8);
		t++;
	}
	s->total = t;
	s->crc = crc;
}

/* --- Huffman codes ------------------------------------------------------ */

static u32 reverse_bits(u32 code, u32 n)
{
	u32 r = 0;

	while (n--) {
		r = (r << 1) | (code & 1);
		code >>= 1;
	}
	return r;
}

/*
 * Fills the one-lookup table for codes up to FAST_BITS long.  Codes are
 * sent most significant bit first while bitbuf holds the first bit lowest,
 * so a code's slots are its bit-reversed value plus every multiple of
 * 2^length (whatever bits follow it).
 */
static void huff_fill_fast(struct huff *h)
{
	u32 i, k, len, code = 0, idx = 0;

	for (i = 0; i < FAST_SIZE; i++)
		h->fast[i] = 0;
	for (len = 1; len <= FAST_BITS; len++) {
		for (k = 0; k < h->count[len]; k++, code++) {
			u16 e = (u16)(h->sym[idx + k] << 4 | len);

			for (i = reverse_bits(code, len); i < FAST_SIZE;
			     i += 1u << len)
				h->fast[i] = e;
		}
		idx += h->count[len];
		code <<= 1;
	}
}

/*
 * Builds the canonical code (RFC 1951 3.2.2) for lens[0, n).  An
 * over-subscribed set is always invalid; an incomplete one only passes with
 * `sparse` and then must be empty or a single one-bit code (the cases RFC
 * 1951 3.2.7 describes for distances).  Unused codes then fail to decode.
 */
static int huff_build(struct huff *h, const u8 *lens, u32 n, int sparse)
{
	u16 offs[MAXBITS + 1];
	u32 len, sym, used;
	s32 left = 1;

	for (len = 0; len <= MAXBITS; len++)
		h->count[len] = 0;
	for (sym = 0; sym < n; sym++)
		h->count[lens[sym]]++;
	used = n - h->count[0];
	h->count[0] = 0;

	for (len = 1; len <= MAXBITS; len++) {
		left = (left << 1) - h->count[len];
		if (left < 0)
			return -GUNZIP_ERR_BADCODES;
	}
	if (left > 0 && !(sparse && (used == 0 ||
				     (used == 1 && h->count[1] == 1))))
		return -GUNZIP_ERR_BADCODES;

	offs[1] = 0;
	for (len = 1; len < MAXBITS; len++)
		offs[len + 1] = offs[len] + h->count[len];
	for (sym = 0; sym < n; sym++)
		if (lens[sym])
			h->sym[offs[lens[sym]]++] = (u16)sym;

	huff_fill_fast(h);
	return 0;
}

/*
 * Canonical decoding one bit at a time, for codes longer than FAST_BITS
 * and for bit patterns that are no code at all.  Codes of one length are
 * consecutive numbers starting at `first`.
 */
static int huff_decode_slow(struct inflate *s, const struct huff *h)
{
	u32 len, count, code = 0, first = 0, index = 0;

	for (len = 1; len <= MAXBITS; len++) {
		if (len > s->bitcnt)
			return -GUNZIP_ERR_TRUNCATED;
		code |= (u32)(s->bitbuf >> (len - 1)) & 1;
		count = h->count[len];
		if (code - first < count) {
			take_bits(s, len);
			return h->sym[index + code - first];
		}
		index += count;
		first = (first + count) << 1;
		code <<= 1;
	}
	return -GUNZIP_ERR_BADSYMBOL;
}

/* Returns the next symbol of code h, or a negative error. */
static inline __attribute__((always_inline))
int huff_decode(struct inflate *s, const struct huff *h)
{
	u32 e, len;

	if (s->bitcnt < MAXBITS)
		refill(s);
	e = h->fast[s->bitbuf & (FAST_SIZE - 1)];
	len = e & 15;
	/* near the end of input the missing bits read as 0: check them */
	if (e && len <= s->bitcnt) {
		take_bits(s, len);
		return (int)(e >> 4);
	}
	return huff_decode_slow(s, h);
}

/* --- blocks ------------------------------------------------------------- */

static u64 min3(u64 a, u64 b, u64 c)
{
	u64 m = a < b ? a : b;

	return m < c ? m : c;
}

static int inflate_stored(struct inflate *s)
{
	u32 len, nlen;
	u64 n;

	align_to_byte(s);
	if (s->srclen - s->pos < 4)
		return -GUNZIP_ERR_TRUNCATED;
	len = s->src[s->pos] | (u32)s->src[s->pos + 1] << 8;
	nlen = s->src[s->pos + 2] | (u32)s->src[s->pos + 3] << 8;
	if (len != (~nlen & 0xffff))
		return -GUNZIP_ERR_BADSTORED;
	s->pos += 4;
	while (len) {
		if (s->total >= s->stop)
			return RUN_STOPPED;
		if (s->pos >= s->srclen)
			return -GUNZIP_ERR_TRUNCATED;
		n = min3(len, s->srclen - s->pos, s->stop - s->total);
		put_bytes(s, s->src + s->pos, (u32)n);
		s->pos += n;
		len -= (u32)n;
	}
	return 0;
}

static int copy_match(struct inflate *s, u32 len, u32 dist)
{
	if (dist > s->total)
		return -GUNZIP_ERR_BADDISTANCE;
	if (s->total >= s->stop)
		return RUN_STOPPED;
	put_match(s, len, dist);
	return 0;
}

/* Decodes symbols with the current tables up to the end-of-block code. */
static int inflate_codes(struct inflate *s)
{
	int sym, extra, ret;
	u32 len;

	for (;;) {
		sym = huff_decode(s, &s->lit);
		if (sym < 0)
			return sym;
		if (sym < 256) {
			if (s->total >= s->stop)
				return RUN_STOPPED;
			put_byte(s, (u8)sym);
			continue;
		}
		if (sym == 256)
			return 0;
		sym -= 257;
		if (sym >= 29)
			return -GUNZIP_ERR_BADSYMBOL;
		extra = get_bits(s, len_extra[sym]);
		if (extra < 0)
			return extra;
		len = len_base[sym] + (u32)extra;

		sym = huff_decode(s, &s->dist);
		if (sym < 0)
			return sym;
		if (sym >= 30)
			return -GUNZIP_ERR_BADSYMBOL;
		extra = get_bits(s, dist_extra[sym]);
		if (extra < 0)
			return extra;
		ret = copy_match(s, len, dist_base[sym] + (u32)extra);
		if (ret)
			return ret;
	}
}

static void build_fixed(struct inflate *s)
{
	u32 i;

	for (i = 0; i < 144; i++)
		s->lens[i] = 8;
	for (; i < 256; i++)
		s->lens[i] = 9;
	for (; i < 280; i++)
		s->lens[i] = 7;
	for (; i < NLITLEN; i++)
		s->lens[i] = 8;
	/* a complete code: cannot fail */
	huff_build(&s->lit, s->lens, NLITLEN, 0);
	for (i = 0; i < NDIST; i++)
		s->lens[i] = 5;
	huff_build(&s->dist, s->lens, NDIST, 0);
}

/* Reads the code lengths of a dynamic block (RFC 1951 3.2.7) into lens. */
static int read_lengths(struct inflate *s, u32 n)
{
	u32 i = 0, rep, val;
	int sym, extra;

	while (i < n) {
		sym = huff_decode(s, &s->lit);
		if (sym < 0)
			return sym;
		if (sym < 16) {
			s->lens[i++] = (u8)sym;
			continue;
		}
		if (sym == 16) {
			if (i == 0)
				return -GUNZIP_ERR_BADCODES;
			val = s->lens[i - 1];
			extra = get_bits(s, 2);
			rep = 3;
		} else if (sym == 17) {
			val = 0;
			extra = get_bits(s, 3);
			rep = 3;
		} else {
			val = 0;
			extra = get_bits(s, 7);
			rep = 11;
		}
		if (extra < 0)
			return extra;
		rep += (u32)extra;
		if (rep > n - i)
			return -GUNZIP_ERR_BADCODES;
		while (rep--)
			s->lens[i++] = (u8)val;
	}
	return 0;
}

static int build_dynamic(struct inflate *s)
{
	int nlit, ndist, nclen, v, ret;
	u32 i;

	nlit = get_bits(s, 5);
	ndist = get_bits(s, 5);
	nclen = get_bits(s, 4);
	if (nlit < 0 || ndist < 0 || nclen < 0)
		return -GUNZIP_ERR_TRUNCATED;
	nlit += 257;
	ndist += 1;
	nclen += 4;
	if (nlit > 286 || ndist > 30)
		return -GUNZIP_ERR_BADCODES;

	for (i = 0; i < NCLEN; i++) {
		v = 0;
		if (i < (u32)nclen) {
			v = get_bits(s, 3);
			if (v < 0)
				return v;
		}
		s->lens[clen_order[i]] = (u8)v;
	}
	/* the code length code lives in lit until the real one replaces it */
	ret = huff_build(&s->lit, s->lens, NCLEN, 0);
	if (ret)
		return ret;
	ret = read_lengths(s, (u32)(nlit + ndist));
	if (ret)
		return ret;
	if (s->lens[256] == 0)		/* no end-of-block code */
		return -GUNZIP_ERR_BADCODES;
	ret = huff_build(&s->lit, s->lens, (u32)nlit, 1);
	if (ret)
		return ret;
	return huff_build(&s->dist, s->lens + nlit, (u32)ndist, 1);
}

/* Returns 0 at the end of the final block, RUN_STOPPED, or an error. */
static int inflate_blocks(struct inflate *s)
{
	int final, type, ret;

	do {
		final = get_bits(s, 1);
		type = get_bits(s, 2);
		if (final < 0 || type < 0)
			return -GUNZIP_ERR_TRUNCATED;
		switch (type) {
		case 0:
			ret = inflate_stored(s);
			break;
		case 1:
			build_fixed(s);
			ret = inflate_codes(s);
			break;
		case 2:
			ret = build_dynamic(s);
			if (!ret)
				ret = inflate_codes(s);
			break;
		default:
			return -GUNZIP_ERR_BADBLOCK;
		}
		if (ret)
			return ret;
	} while (!final);
	return 0;
}

/* --- gzip container ----------------------------------------------------- */

/* Skips a zero-terminated header string. */
static int skip_string(struct inflate *s)
{
	while (s->pos < s->srclen && s->src[s->pos])
		s->pos++;
	if (s->pos >= s->srclen)
		return -GUNZIP_ERR_TRUNCATED;
	s->pos++;
	return 0;
}

/* Checks the RFC 1952 member header and leaves pos at the deflate data. */
static int parse_header(struct inflate *s)
{
	static const u8 id[3] = { 0x1f, 0x8b, 8 };	/* ID1 ID2 CM=deflate */
	const u8 *p = s->src;
	u32 i, flg, xlen;
	int ret;

	for (i = 0; i < 3 && i < s->srclen; i++)
		if (p[i] != id[i])
			return -GUNZIP_ERR_BADHEADER;
	if (s->srclen > 3 && (p[3] & FRESERVED))
		return -GUNZIP_ERR_BADHEADER;
	if (s->srclen < 10)
		return -GUNZIP_ERR_TRUNCATED;
	flg = p[3];
	s->pos = 10;	/* past MTIME, XFL and OS */

	if (flg & FEXTRA) {
		if (s->srclen - s->pos < 2)
			return -GUNZIP_ERR_TRUNCATED;
		xlen = p[s->pos] | (u32)p[s->pos + 1] << 8;
		s->pos += 2;
		if (s->srclen - s->pos < xlen)
			return -GUNZIP_ERR_TRUNCATED;
		s->pos += xlen;
	}
	if (flg & FNAME) {
		ret = skip_string(s);
		if (ret)
			return ret;
	}
	if (flg & FCOMMENT) {
		ret = skip_string(s);
		if (ret)
			return ret;
	}
	if (flg & FHCRC) {
		/* the low 16 bits of the CRC-32 of the header so far */
		if (s->srclen - s->pos < 2)
			return -GUNZIP_ERR_TRUNCATED;
		i = ~crc_update(0xffffffffu, p, s->pos) & 0xffff;
		if (i != (p[s->pos] | (u32)p[s->pos + 1] << 8))
			return -GUNZIP_ERR_BADHEADER;
		s->pos += 2;
	}
	return 0;
}

/* Checks ISIZE, then CRC-32, of the trailer after the last block. */
static int check_trailer(struct inflate *s)
{
	const u8 *t;

	align_to_byte(s);
	if (s->srclen - s->pos < 8)
		return -GUNZIP_ERR_TRUNCATED;
	t = s->src + s->pos;
	if (get_le32(t + 4) != (u32)s->total)
		return -GUNZIP_ERR_BADLENGTH;
	/*
	 * Without the CRC: if the request ended exactly here it covered all
	 * of the data, which must then be verified (by decoding again); if a
	 * last match only ran past its end, it stopped early, like any other.
	 */
	if (!s->check_crc)
		return s->total == s->end ? RUN_NEED_CRC : RUN_DONE;
	if (get_le32(t) != ~s->crc)
		return -GUNZIP_ERR_BADCRC;
	return RUN_DONE;
}

static int run(const u8 *src, size_t srclen, u8 *dst, u64 skip, u64 len,
	       int check_crc)
{
	struct inflate *s = &state;
	int ret;

	s->src = src;
	s->srclen = srclen;
	s->pos = 0;
	s->bitbuf = 0;
	s->bitcnt = 0;
	s->dst = dst;
	s->skip = skip;
	s->len = len;
	s->end = skip + len;
	s->stop = check_crc ? U64_MAX : s->end;
	s->total = 0;
	s->crc = 0xffffffffu;
	s->check_crc = check_crc;

	ret = parse_header(s);
	if (ret)
		return ret;
	ret = inflate_blocks(s);
	if (ret)
		return ret;
	ret = check_trailer(s);
	if (ret < 0)
		return ret;
	if (s->total < s->end)
		return -GUNZIP_ERR_SHORT;
	return ret;
}

int gunzip_is_gzip(const void *buf, size_t len)
{
	const u8 *p = buf;

	return len >= 2 && p[0] == 0x1f && p[1] == 0x8b;
}

s64 gunzip_range(const void *src, size_t srclen, void *dst, u64 skip,
		 u64 len)
{
	const u8 *in = src;
	int check, ret;

	if (skip + len < skip)
		return -GUNZIP_ERR_SHORT;
	crc_init();
	/* compute the CRC on the way only if the request seems to be all */
	check = srclen >= 18 && get_le32(in + srclen - 4) == (u32)(skip + len);
	ret = run(in, srclen, dst, skip, len, check);
	if (ret == RUN_NEED_CRC)
		ret = run(in, srclen, dst, skip, len, 1);
	if (ret < 0)
		return ret;
	return (s64)len;
}

s64 gunzip_range_verified(const void *src, size_t srclen, void *dst,
			  u64 skip, u64 len)
{
	int ret;

	if (skip + len < skip)
		return -GUNZIP_ERR_SHORT;
	crc_init();
	ret = run(src, srclen, dst, skip, len, 1);
	if (ret < 0)
		return ret;
	return (s64)len;
}

s64 gunzip_size(const void *src, size_t srclen)
{
	const u8 *p = src;

	if (!gunzip_is_gzip(src, srclen))
		return -GUNZIP_ERR_BADHEADER;
	/* 10-byte header, at least the 2 bytes of an empty block, trailer */
	if (srclen < 18)
		return -GUNZIP_ERR_TRUNCATED;
	return get_le32(p + srclen - 4);
}

/* Accepts the code with either sign, as returned or as defined. */
const char *gunzip_strerror(int err)
{
	switch (err < 0 ? -(s64)err : err) {
	case 0:
		return "success";
	case GUNZIP_ERR_TRUNCATED:
		return "compressed data truncated";
	case GUNZIP_ERR_BADHEADER:
		return "not a gzip stream, or an unsupported header";
	case GUNZIP_ERR_BADBLOCK:
		return "reserved deflate block type";
	case GUNZIP_ERR_BADSTORED:
		return "stored block length check failed";
	case GUNZIP_ERR_BADCODES:
		return "invalid Huffman code lengths";
	case GUNZIP_ERR_BADSYMBOL:
		return "invalid Huffman code or symbol";
	case GUNZIP_ERR_BADDISTANCE:
		return "distance reaches before the start of the data";
	case GUNZIP_ERR_BADCRC:
		return "CRC-32 mismatch";
	case GUNZIP_ERR_BADLENGTH:
		return "uncompressed size (ISIZE) mismatch";
	case GUNZIP_ERR_SHORT:
		return "data ends before the requested range";
	default:
		return "unknown gunzip error";
	}
}
