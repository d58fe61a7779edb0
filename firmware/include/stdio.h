/* printf family for the wrapper (lib/printf.c); output goes to the console. */
#ifndef BW_STDIO_H
#define BW_STDIO_H

#include <stdarg.h>
#include "types.h"

/*
 * Supported conversions: %d %i %u %x %X %o %c %s %p %%, with flags '-', '0',
 * a field width (number or '*'), precision for %s, and length modifiers
 * h, hh, l, ll, z.  %p prints 0x followed by 16 hex digits.
 * Returns the length the full output would have had (C99 semantics);
 * the buffer is always NUL-terminated when size > 0.
 */
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int snprintf(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int sprintf(char *buf, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Formats to the console (console.c); returns the number of characters. */
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
