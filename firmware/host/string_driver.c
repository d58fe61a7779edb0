/*
 * Checks the wrapper's memory routines (lib/string.c, built with their
 * names prefixed bw_) against the host C library over every alignment of
 * source and destination and lengths around the word size, and its string
 * routines on strings that differ, share prefixes or end early.  Prints the
 * number of cases checked, or the first difference and exits 1.
 *
 * The build renames memset etc. to bw_* in every file, this one included,
 * so the reference calls go through __builtin_* (the C library's).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define SPAN 96

static unsigned char want[SPAN], got[SPAN], src[SPAN];

static void fill(unsigned char *b, unsigned seed)
{
	for (int i = 0; i < SPAN; i++)
		b[i] = (unsigned char)(seed * 31 + i * 7);
}

static int differ(const char *what, int a, int b, int n)
{
	if (!__builtin_memcmp(want, got, SPAN))
		return 0;
	printf("%s differs: offsets %d %d length %d\n", what, a, b, n);
	return 1;
}

static int sign(int v)
{
	return (v > 0) - (v < 0);
}

/*
 * The string routines against the C library on pairs of strings that
 * share a prefix, differ in one byte (above 0x7f too: compared unsigned),
 * or end early, with n around each length, bytes after the NUL differing.
 * Returns the cases checked, or -1 after printing the first difference.
 */
static long check_strings(void)
{
	static const char *const words[] = {
		"", "a", "ab", "abc", "abd", "ab\0x", "ab\0y", "abc\xff", "abc\x01",
		"memory", "memory@0", "chosen", "\x80", "\x7f",
	};
	const int nw = sizeof(words) / sizeof(words[0]);
	char a[16], b[16], want[16], got[16];
	long cases = 0;

	for (int i = 0; i < nw; i++) {
		for (int j = 0; j < nw; j++) {
			/* Fixed 16-byte buffers: what follows the NUL is compared too. */
			memset(a, 'q', sizeof(a));
			memset(b, 'r', sizeof(b));
			memcpy(a, words[i], __builtin_strlen(words[i]) + 1);
			memcpy(b, words[j], __builtin_strlen(words[j]) + 1);
			if (sign(strcmp(a, b)) != sign(__builtin_strcmp(a, b))) {
				printf("strcmp differs: %d %d\n", i, j);
				return -1;
			}
			for (size_t n = 0; n <= 10; n++) {
				if (sign(strncmp(a, b, n)) != sign(__builtin_strncmp(a, b, n)) ||
				    sign(memcmp(a, b, n)) != sign(__builtin_memcmp(a, b, n))) {
					printf("strncmp/memcmp differs: %d %d n=%zu\n", i, j, n);
					return -1;
				}
				memset(want, 'z', sizeof(want));
				memset(got, 'z', sizeof(got));
				__builtin_strncpy(want, a, n);
				if (strncpy(got, a, n) != got || __builtin_memcmp(want, got, 16)) {
					printf("strncpy differs: %d n=%zu\n", i, n);
					return -1;
				}
				if (strnlen(a, n) != __builtin_strnlen(a, n)) {
					printf("strnlen differs: %d n=%zu\n", i, n);
					return -1;
				}
				cases += 4;
			}
			cases++;
		}
		for (int c = 0; c < 256; c += 1) {
			if (strchr(a, c) != __builtin_strchr(a, c) ||
			    memchr(a, c, sizeof(a)) != __builtin_memchr(a, c, sizeof(a))) {
				printf("strchr/memchr differs: %d c=%d\n", i, c);
				return -1;
			}
			cases += 2;
		}
		memset(got, 'z', sizeof(got));
		if (strlen(a) != __builtin_strlen(a) || strcpy(got, a) != got ||
		    __builtin_strcmp(got, a)) {
			printf("strlen/strcpy differs: %d\n", i);
			return -1;
		}
	}
	return cases;
}

int main(void)
{
	long cases = 0, strings = check_strings();

	if (strings < 0)
		return 1;
	cases += strings;

	for (int a = 0; a < 16; a++)
		for (int n = 0; n <= 40; n++) {
			fill(want, a + n);
			fill(got, a + n);
			__builtin_memset(want + a, 0xa5, n);
			if (bw_memset(got + a, 0xa5, n) != got + a ||
			    differ("memset", a, 0, n))
				return 1;
			cases++;
			for (int b = 0; b < 16; b++) {
				fill(src, b);
				fill(want, n);
				fill(got, n);
				__builtin_memcpy(want + a, src + b, n);
				if (bw_memcpy(got + a, src + b, n) != got + a ||
				    differ("memcpy", a, b, n))
					return 1;
				/* Overlapping moves inside one buffer, both ways. */
				fill(want, n + 1);
				fill(got, n + 1);
				__builtin_memmove(want + a, want + b + 20, n);
				bw_memmove(got + a, got + b + 20, n);
				if (differ("memmove", a, b + 20, n))
					return 1;
				cases += 2;
			}
		}
	printf("ok %ld\n", cases);
	return 0;
}
