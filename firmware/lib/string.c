/*
 * Freestanding string and memory routines for the wrapper and the test
 * kernel.  Clarity beats speed here: the wrapper copies a few megabytes at
 * most, so only memcpy and memset bother with whole 8-byte words.
 */
#include "types.h"
#include "string.h"

/*
 * GCC recognises a byte loop as "a memset" or "a memcpy" and replaces it
 * with a call to that very function, even with -fno-builtin; inside these
 * functions that call would recurse forever.  Turning the pattern
 * recognition off for this file keeps every loop a loop.
 */
#define NO_LIBCALLS __attribute__((optimize("no-tree-loop-distribute-patterns")))

/* Word accesses may alias whatever type the caller's buffer holds. */
typedef u64 __attribute__((may_alias)) word_t;

#define WORD		sizeof(word_t)
#define IS_ALIGNED(p)	(((uintptr_t)(p) & (WORD - 1)) == 0)

NO_LIBCALLS void *memset(void *s, int c, size_t n)
{
	u8 *p = s;
	u8 b = (u8)c;
	u64 w = b * 0x0101010101010101ULL;

	/* Bytes up to the first word boundary, then whole words. */
	for (; n && !IS_ALIGNED(p); n--)
		*p++ = b;
	for (; n >= WORD; n -= WORD, p += WORD)
		*(word_t *)p = w;
	while (n--)
		*p++ = b;
	return s;
}

NO_LIBCALLS void *memcpy(void *dst, const void *src, size_t n)
{
	u8 *d = dst;
	const u8 *s = src;

	/* Words when both can reach a word boundary together. */
	if (((uintptr_t)d & (WORD - 1)) == ((uintptr_t)s & (WORD - 1))) {
		for (; n && !IS_ALIGNED(d); n--)
			*d++ = *s++;
		for (; n >= WORD; n -= WORD, d += WORD, s += WORD)
			*(word_t *)d = *(const word_t *)s;
	}
	while (n--)
		*d++ = *s++;
	return dst;
}

/* Overlap-safe: copies backwards when the destination is above the source. */
NO_LIBCALLS void *memmove(void *dst, const void *src, size_t n)
{
	u8 *d = dst;
	const u8 *s = src;

	if (d == s || n == 0)
		return dst;
	if (d < s || d >= s + n) {
		while (n--)
			*d++ = *s++;
	} else {
		d += n;
		s += n;
		while (n--)
			*--d = *--s;
	}
	return dst;
}

NO_LIBCALLS int memcmp(const void *a, const void *b, size_t n)
{
	const u8 *x = a, *y = b;

	for (; n; n--, x++, y++) {
		if (*x != *y)
			return *x < *y ? -1 : 1;
	}
	return 0;
}

NO_LIBCALLS void *memchr(const void *s, int c, size_t n)
{
	const u8 *p = s;

	for (; n; n--, p++) {
		if (*p == (u8)c)
			return (void *)p;
	}
	return NULL;
}

NO_LIBCALLS size_t strlen(const char *s)
{
	const char *p = s;

	while (*p)
		p++;
	return p - s;
}

NO_LIBCALLS size_t strnlen(const char *s, size_t max)
{
	size_t n = 0;

	while (n < max && s[n])
		n++;
	return n;
}

/* Compares as unsigned char, as C requires. */
NO_LIBCALLS int strcmp(const char *a, const char *b)
{
	const u8 *x = (const u8 *)a, *y = (const u8 *)b;

	while (*x && *x == *y) {
		x++;
		y++;
	}
	return *x == *y ? 0 : (*x < *y ? -1 : 1);
}

NO_LIBCALLS int strncmp(const char *a, const char *b, size_t n)
{
	const u8 *x = (const u8 *)a, *y = (const u8 *)b;

	for (; n; n--, x++, y++) {
		if (*x != *y)
			return *x < *y ? -1 : 1;
		if (!*x)
			break;
	}
	return 0;
}

/* Finds the terminating NUL too when c is 0, as C requires. */
NO_LIBCALLS char *strchr(const char *s, int c)
{
	for (;; s++) {
		if (*s == (char)c)
			return (char *)s;
		if (!*s)
			return NULL;
	}
}

NO_LIBCALLS char *strcpy(char *dst, const char *src)
{
	char *d = dst;

	while ((*d++ = *src++))
		;
	return dst;
}

/* Pads with NULs up to n and, like C's, leaves dst unterminated if src is
 * n bytes or longer. */
NO_LIBCALLS char *strncpy(char *dst, const char *src, size_t n)
{
	size_t i = 0;

	for (; i < n && src[i]; i++)
		dst[i] = src[i];
	for (; i < n; i++)
		dst[i] = '\0';
	return dst;
}
