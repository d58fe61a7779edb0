/*
 * Runs the wrapper's vsnprintf (lib/printf.c, built with its public names
 * renamed to bw_* by -D so they do not clash with libc's) next to the host
 * libc's snprintf, one case a line, for tests/test_printf.py.
 *
 * Input line (fields separated by one space):
 *   SIZE MODE FMT ARGS REF_FMT REF_ARGS
 * FMT and REF_FMT are 'x' followed by the bytes in hex (so an empty one
 * is still a field); ARGS and REF_ARGS are
 * comma-separated KIND:VALUE items or "-" for none, KIND one of
 *   i int, u unsigned int, l long, L unsigned long, q long long,
 *   Q unsigned long long, p pointer, s string (VALUE 'x' and hex bytes),
 * integer VALUEs in decimal.  FMT/ARGS go to ours, REF_FMT/REF_ARGS to
 * libc's snprintf (the test rewrites the few conversions where the two are
 * meant to differ, such as %p).  MODE 0 passes a buffer of SIZE bytes,
 * 1 a NULL buffer (with SIZE 0), 2 calls our sprintf instead of snprintf.
 *
 * Output line: "RET HEX CANARY REFRET REFHEX REFCANARY" where HEX is the
 * part of the buffer that must have been written, min(RET + 1, SIZE) bytes
 * (or "-" for none), and CANARY is "ok" when no byte at or past SIZE was
 * touched.
 */

/* The -D renames must not reach libc's headers: we call libc's own too. */
#undef snprintf
#undef vsnprintf
#undef sprintf

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int bw_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int bw_snprintf(char *buf, size_t size, const char *fmt, ...);
int bw_sprintf(char *buf, const char *fmt, ...);

#define MAX_ARGS	3
#define MAX_TEXT	4096
#define SLACK		32
#define CANARY		0xa5

struct arg {
	char kind;
	unsigned long long v;
	char s[MAX_TEXT];
};

typedef int (*fmt_fn)(char *, size_t, const char *, ...);

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decodes "x" followed by hex digits into a NUL-terminated string. */
static int unhex(const char *h, char *out, size_t max)
{
	size_t i, hn;

	if (*h++ != 'x')
		return -1;
	hn = strlen(h);
	if (hn % 2 || hn / 2 >= max)
		return -1;
	for (i = 0; i < hn / 2; i++) {
		int a = hexval(h[2 * i]), b = hexval(h[2 * i + 1]);

		if (a < 0 || b < 0)
			return -1;
		out[i] = (char)(a * 16 + b);
	}
	out[i] = '\0';
	return 0;
}

static int parse_args(char *text, struct arg *a)
{
	int n = 0;
	char *item, *save;

	if (strcmp(text, "-") == 0)
		return 0;
	for (item = strtok_r(text, ",", &save); item;
	     item = strtok_r(NULL, ",", &save)) {
		if (n == MAX_ARGS || strlen(item) < 2 || item[1] != ':')
			return -1;
		a[n].kind = item[0];
		if (a[n].kind == 's') {
			if (unhex(item + 2, a[n].s, MAX_TEXT))
				return -1;
		} else {
			a[n].v = item[2] == '-' ?
				(unsigned long long)strtoll(item + 2, NULL, 10) :
				strtoull(item + 2, NULL, 10);
		}
		n++;
	}
	return n;
}

/*
 * Calls f with each argument as its own C type, so both implementations
 * see exactly what a real caller would pass.  Each argument position has
 * its own copy of the switch because a macro cannot expand inside itself.
 */
#define TYPED1(x, NEXT, ...)						\
	switch ((x).kind) {						\
	case 'i': NEXT(__VA_ARGS__, (int)(x).v); break;			\
	case 'u': NEXT(__VA_ARGS__, (unsigned int)(x).v); break;	\
	case 'l': NEXT(__VA_ARGS__, (long)(x).v); break;		\
	case 'L': NEXT(__VA_ARGS__, (unsigned long)(x).v); break;	\
	case 'q': NEXT(__VA_ARGS__, (long long)(x).v); break;		\
	case 'Q': NEXT(__VA_ARGS__, (unsigned long long)(x).v); break;	\
	case 's': NEXT(__VA_ARGS__, (const char *)(x).s); break;	\
	case 'p': NEXT(__VA_ARGS__, (void *)(unsigned long)(x).v); break; \
	default: abort();						\
	}
#define TYPED2(x, NEXT, ...)						\
	switch ((x).kind) {						\
	case 'i': NEXT(__VA_ARGS__, (int)(x).v); break;			\
	case 'u': NEXT(__VA_ARGS__, (unsigned int)(x).v); break;	\
	case 'l': NEXT(__VA_ARGS__, (long)(x).v); break;		\
	case 'L': NEXT(__VA_ARGS__, (unsigned long)(x).v); break;	\
	case 'q': NEXT(__VA_ARGS__, (long long)(x).v); break;		\
	case 'Q': NEXT(__VA_ARGS__, (unsigned long long)(x).v); break;	\
	case 's': NEXT(__VA_ARGS__, (const char *)(x).s); break;	\
	case 'p': NEXT(__VA_ARGS__, (void *)(unsigned long)(x).v); break; \
	default: abort();						\
	}
#define TYPED3(x, NEXT, ...)						\
	switch ((x).kind) {						\
	case 'i': NEXT(__VA_ARGS__, (int)(x).v); break;			\
	case 'u': NEXT(__VA_ARGS__, (unsigned int)(x).v); break;	\
	case 'l': NEXT(__VA_ARGS__, (long)(x).v); break;		\
	case 'L': NEXT(__VA_ARGS__, (unsigned long)(x).v); break;	\
	case 'q': NEXT(__VA_ARGS__, (long long)(x).v); break;		\
	case 'Q': NEXT(__VA_ARGS__, (unsigned long long)(x).v); break;	\
	case 's': NEXT(__VA_ARGS__, (const char *)(x).s); break;	\
	case 'p': NEXT(__VA_ARGS__, (void *)(unsigned long)(x).v); break; \
	default: abort();						\
	}

#define CALL(...)	ret = use_sprintf ? bw_sprintf(buf, __VA_ARGS__) \
					    : f(buf, size, __VA_ARGS__)
#define THEN2(...)	TYPED2(a[1], CALL, __VA_ARGS__)
#define THEN2_3(...)	TYPED2(a[1], THEN3, __VA_ARGS__)
#define THEN3(...)	TYPED3(a[2], CALL, __VA_ARGS__)

static int run(fmt_fn f, int use_sprintf, char *buf, size_t size,
	       const char *fmt, const struct arg *a, int n)
{
	int ret = -1;

	switch (n) {
	case 0:
		CALL(fmt);
		break;
	case 1:
		TYPED1(a[0], CALL, fmt)
		break;
	case 2:
		TYPED1(a[0], THEN2, fmt)
		break;
	default:
		TYPED1(a[0], THEN2_3, fmt)
		break;
	}
	return ret;
}

/* Prints the return value, the buffer and whether bytes past it survived. */
static void report(int ret, const unsigned char *area, size_t size, int nullbuf)
{
	size_t i, shown = 0;
	int canary_ok = 1;

	if (!nullbuf && ret >= 0)
		shown = (size_t)ret + 1 < size ? (size_t)ret + 1 : size;
	printf("%d ", ret);
	if (!shown)
		printf("-");
	for (i = 0; i < shown; i++)
		printf("%02x", area[i]);
	for (i = size; i < size + SLACK; i++)
		canary_ok &= area[i] == CANARY;
	printf(" %s", canary_ok ? "ok" : "BAD");
}

static void one(fmt_fn f, int mode, size_t size, const char *fmt,
		const struct arg *args, int n)
{
	static unsigned char area[MAX_TEXT + SLACK];
	int ret;

	memset(area, CANARY, sizeof(area));
	ret = run(f, mode == 2, mode == 1 ? NULL : (char *)area, size, fmt,
		  args, n);
	report(ret, area, size, mode == 1);
}

int main(void)
{
	static char line[8 * MAX_TEXT];
	static struct arg args[MAX_ARGS], ref_args[MAX_ARGS];
	static char fmt[MAX_TEXT], ref_fmt[MAX_TEXT];

	setvbuf(stdout, NULL, _IOLBF, 0);
	while (fgets(line, sizeof(line), stdin)) {
		char *field[6], *save;
		unsigned long size;
		int i, n, rn, mode;

		for (i = 0; i < 6; i++) {
			field[i] = strtok_r(i ? NULL : line, " \n", &save);
			if (!field[i])
				break;
		}
		if (i < 6)
			return 2;
		size = strtoul(field[0], NULL, 10);
		mode = atoi(field[1]);
		n = parse_args(field[3], args);
		rn = parse_args(field[5], ref_args);
		if (size > MAX_TEXT || n < 0 || rn < 0 ||
		    unhex(field[2], fmt, MAX_TEXT) ||
		    unhex(field[4], ref_fmt, MAX_TEXT))
			return 2;
		one(bw_snprintf, mode, size, fmt, args, n);
		printf(" ");
		one(snprintf, mode == 2 ? 0 : mode, size, ref_fmt, ref_args, rn);
		printf("\n");
	}
	return 0;
}
