/*
 * vsnprintf and friends for the wrapper: integers, characters, strings and
 * pointers; no floating point (the wrapper is built -msoft-float and has no
 * use for it).
 *
 * Grammar: %[flags][width][.precision][length]conversion with flags '-' and
 * '0', width and precision as digits or '*', lengths hh h l ll z, and
 * conversions d i u x X o c s p %.  Precision on an integer is C's minimum
 * digit count (and turns the '0' flag off), on %s the maximum length.
 * A conversion outside the grammar is copied to the output as written, so a
 * typo in a message shows up instead of eating arguments.
 */
#include <stdarg.h>
#include "types.h"
#include "string.h"
#include "stdio.h"

/* Where the output goes: bytes past size - 1 are counted but not stored. */
struct out {
	char *buf;
	size_t size;
	size_t len;
};

static void put(struct out *o, char c)
{
	if (o->len + 1 < o->size)
		o->buf[o->len] = c;
	o->len++;
}

static void put_n(struct out *o, char c, int n)
{
	while (n-- > 0)
		put(o, c);
}

static void put_str(struct out *o, const char *s, size_t n)
{
	while (n--)
		put(o, *s++);
}

/* One parsed conversion specification. */
struct spec {
	int left;		/* '-': pad on the right */
	int zero;		/* '0': pad numbers with zeros */
	int width;		/* minimum field width, 0 if none */
	int prec;		/* precision, -1 if none */
	int length;		/* LEN_* */
};

enum { LEN_HH, LEN_H, LEN_INT, LEN_L, LEN_LL, LEN_Z };

/* Pads a finished piece of text of n characters to the field width. */
static void put_padded(struct out *o, const struct spec *sp, const char *s,
		       size_t n)
{
	int pad = sp->width > (int)n ? sp->width - (int)n : 0;

	if (!sp->left)
		put_n(o, ' ', pad);
	put_str(o, s, n);
	if (sp->left)
		put_n(o, ' ', pad);
}

/*
 * Prints a number given as magnitude and sign.  The layout is
 * [spaces][sign][zeros][digits][spaces]; zeros come from the precision, or
 * from the '0' flag when there is neither a precision nor a '-' flag.
 */
static void put_number(struct out *o, const struct spec *sp, u64 mag,
		       int negative, unsigned int base, int upper)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char tmp[24];		/* 22 octal digits hold 64 bits */
	int n = 0, zeros = 0, spaces, total;

	/* C: a zero printed with precision 0 has no digits at all. */
	if (!(mag == 0 && sp->prec == 0)) {
		do {
			tmp[n++] = digits[mag % base];
			mag /= base;
		} while (mag);
	}
	if (sp->prec > n)
		zeros = sp->prec - n;
	total = n + zeros + negative;
	if (sp->zero && !sp->left && sp->prec < 0 && sp->width > total) {
		zeros += sp->width - total;
		total = sp->width;
	}
	spaces = sp->width > total ? sp->width - total : 0;

	if (!sp->left)
		put_n(o, ' ', spaces);
	if (negative)
		put(o, '-');
	put_n(o, '0', zeros);
	while (n)
		put(o, tmp[--n]);
	if (sp->left)
		put_n(o, ' ', spaces);
}

/* Reads digits at *p into a non-negative int, saturating rather than
 * overflowing on absurd widths. */
static int parse_int(const char **p)
{
	int v = 0;

	while (**p >= '0' && **p <= '9') {
		if (v < 100000000)
			v = v * 10 + (**p - '0');
		(*p)++;
	}
	return v;
}

static const char *parse_length(const char *p, int *length)
{
	*length = LEN_INT;
	if (*p == 'h') {
		p++;
		*length = LEN_H;
		if (*p == 'h') {
			p++;
			*length = LEN_HH;
		}
	} else if (*p == 'l') {
		p++;
		*length = LEN_L;
		if (*p == 'l') {
			p++;
			*length = LEN_LL;
		}
	} else if (*p == 'z') {
		p++;
		*length = LEN_Z;
	}
	return p;
}

/* Narrows a promoted argument to the type its length modifier names. */
static s64 narrow_signed(s64 v, int length)
{
	switch (length) {
	case LEN_HH:
		return (s8)v;
	case LEN_H:
		return (s16)v;
	case LEN_INT:
		return (s32)v;
	default:
		return v;
	}
}

static u64 narrow_unsigned(u64 v, int length)
{
	switch (length) {
	case LEN_HH:
		return (u8)v;
	case LEN_H:
		return (u16)v;
	case LEN_INT:
		return (u32)v;
	default:
		return v;
	}
}

/* Fetches each argument as the exact type the caller passed it as. */
#define FETCH(ap, length, itype, ltype, lltype, ztype)			\
	((length) == LEN_LL ? (lltype)va_arg(ap, lltype) :		\
	 (length) == LEN_L ? (lltype)va_arg(ap, ltype) :			\
	 (length) == LEN_Z ? (lltype)va_arg(ap, ztype) :			\
	 (lltype)va_arg(ap, itype))

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct out o = { buf, size, 0 };
	const char *p = fmt;

	while (*p) {
		const char *start = p;
		struct spec sp = { 0, 0, 0, -1, LEN_INT };
		unsigned int base = 10;
		int upper = 0;

		if (*p != '%') {
			put(&o, *p++);
			continue;
		}
		p++;
		for (;; p++) {
			if (*p == '-')
				sp.left = 1;
			else if (*p == '0')
				sp.zero = 1;
			else
				break;
		}
		if (*p == '*') {
			/* C: a negative '*' width means '-' and its magnitude. */
			int w = va_arg(ap, int);

			p++;
			if (w < 0) {
				sp.left = 1;
				/* Clamped: negating INT_MIN would overflow. */
				w = w < -100000000 ? 100000000 : -w;
			}
			sp.width = w;
		} else {
			sp.width = parse_int(&p);
		}
		if (*p == '.') {
			p++;
			if (*p == '*') {
				int pr = va_arg(ap, int);

				p++;
				sp.prec = pr < 0 ? -1 : pr;	/* as if omitted */
			} else {
				sp.prec = parse_int(&p);
			}
		}
		p = parse_length(p, &sp.length);

		switch (*p) {
		case 'd':
		case 'i': {
			s64 v = FETCH(ap, sp.length, int, long, long long,
				      ssize_t);

			v = narrow_signed(v, sp.length);
			/* Negate as unsigned: -INT64_MIN overflows s64. */
			put_number(&o, &sp, v < 0 ? -(u64)v : (u64)v, v < 0,
				   10, 0);
			break;
		}
		case 'X':
			upper = 1;
			/* fall through */
		case 'x':
			base = 16;
			goto unsigned_conv;
		case 'o':
			base = 8;
			/* fall through */
		case 'u':
unsigned_conv: {
			u64 v = FETCH(ap, sp.length, unsigned int,
				      unsigned long, unsigned long long,
				      size_t);

			put_number(&o, &sp, narrow_unsigned(v, sp.length), 0,
				   base, upper);
			break;
		}
		case 'c': {
			char c = (char)va_arg(ap, int);

			put_padded(&o, &sp, &c, 1);
			break;
		}
		case 's': {
			const char *s = va_arg(ap, const char *);
			size_t n;

			if (!s)
				s = "(null)";
			n = sp.prec >= 0 ? strnlen(s, sp.prec) : strlen(s);
			put_padded(&o, &sp, s, n);
			break;
		}
		case 'p': {
			/* Always all 16 digits: addresses line up in logs. */
			struct spec hex = { 0, 0, 16, -1, LEN_LL };
			uintptr_t v = (uintptr_t)va_arg(ap, void *);
			struct out tmp;
			char text[19];

			tmp = (struct out){ text, sizeof(text), 0 };
			put(&tmp, '0');
			put(&tmp, 'x');
			hex.zero = 1;
			put_number(&tmp, &hex, v, 0, 16, 0);
			put_padded(&o, &sp, text, tmp.len);
			break;
		}
		case '%':
			put(&o, '%');
			break;
		default:
			/* Not ours: show the text; a NUL ends the format. */
			put_str(&o, start, p - start);
			if (!*p)
				continue;
			put(&o, *p);
			break;
		}
		p++;
	}

	if (size)
		buf[o.len < size ? o.len : size - 1] = '\0';
	return o.len > 0x7fffffff ? 0x7fffffff : (int)o.len;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

/* Unbounded, as C's: only for callers that know their buffer is big enough. */
int sprintf(char *buf, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, ~(size_t)0 >> 1, fmt, ap);
	va_end(ap);
	return n;
}
