/*
 * Checks the wrapper's memory routines (lib/string.c, built with their
 * names prefixed bw_) against the host C library over every alignment of
 * source and destination and lengths around the word size.  Prints the
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

int main(void)
{
	long cases = 0;

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
