/*
 * The console: the device /chosen names as stdout, driven by whichever
 * serial_ops matches its "compatible".  Until console_open has found one
 * (or when it finds none) output is dropped, so printf and fatal are safe
 * to call at any time.
 */
#include <stdarg.h>
#include "types.h"
#include "string.h"
#include "stdio.h"
#include "fdt.h"
#include "ops.h"

extern const struct serial_ops ns16550_ops, hvc_ops;

/* Which driver speaks to which "compatible" string. */
static const struct {
	const char *compatible;
	const struct serial_ops *ops;
} console_drivers[] = {
	{ "ns16550a", &ns16550_ops },
	{ "ns16550", &ns16550_ops },
	{ "ns16450", &ns16550_ops },
	{ "ns8250", &ns16550_ops },
	{ "hvterm1", &hvc_ops },	/* PAPR vty, raw protocol */
};

#define PATH_MAX_LEN	256
#define PRINTF_BUF	512

static const struct serial_ops *console;

/* True when p[0..len) is one or more NUL-terminated strings. */
static int is_strings(const char *p, int len)
{
	return p && len > 0 && p[len - 1] == '\0';
}

/*
 * Copies the stdout-path value into path without its ":options" and with
 * a leading alias (no '/' at the start) replaced by the path /aliases
 * gives for it; whatever follows the alias name is kept.
 */
static int resolve_stdout_path(const void *fdt, const char *val, char *path)
{
	size_t n = strchr(val, ':') ? (size_t)(strchr(val, ':') - val)
				    : strlen(val);
	size_t name_len = 0, alias_len = 0;
	const char *alias = "";
	int len, aliases;

	if (val[0] != '/') {
		char name[PATH_MAX_LEN];

		while (name_len < n && val[name_len] != '/')
			name_len++;
		if (name_len == 0 || name_len >= sizeof(name))
			return -FDT_ERR_BADPATH;
		memcpy(name, val, name_len);
		name[name_len] = '\0';
		aliases = fdt_path_offset(fdt, "/aliases");
		if (aliases < 0)
			return aliases;
		alias = fdt_getprop(fdt, aliases, name, &len);
		if (!alias)
			return len;
		if (!is_strings(alias, len) || alias[0] != '/')
			return -FDT_ERR_BADVALUE;
		alias_len = strlen(alias);
	}
	if (alias_len + (n - name_len) >= PATH_MAX_LEN)
		return -FDT_ERR_BADPATH;
	memcpy(path, alias, alias_len);
	memcpy(path + alias_len, val + name_len, n - name_len);
	path[alias_len + n - name_len] = '\0';
	return 0;
}

/* The node /chosen names as stdout: linux,stdout-path, else stdout-path. */
static int find_stdout(const void *fdt, int chosen)
{
	char path[PATH_MAX_LEN];
	const char *val;
	int len, err;

	if (chosen < 0)
		return chosen;
	val = fdt_getprop(fdt, chosen, "linux,stdout-path", &len);
	if (!val)
		val = fdt_getprop(fdt, chosen, "stdout-path", &len);
	if (!val)
		return len;
	if (!is_strings(val, len))
		return -FDT_ERR_BADVALUE;
	err = resolve_stdout_path(fdt, val, path);
	if (err)
		return err;
	return fdt_path_offset(fdt, path);
}

/*
 * The driver for node: its "compatible" list runs from most to least
 * specific, so the first entry any driver knows wins.
 */
static const struct serial_ops *match_driver(const void *fdt, int node)
{
	const char *compat, *end;
	size_t i;
	int len;

	compat = fdt_getprop(fdt, node, "compatible", &len);
	if (!is_strings(compat, len))
		return NULL;
	for (end = compat + len; compat < end; compat += strlen(compat) + 1) {
		for (i = 0; i < ARRAY_SIZE(console_drivers); i++) {
			if (strcmp(compat, console_drivers[i].compatible) == 0)
				return console_drivers[i].ops;
		}
	}
	return NULL;
}

int console_open(const void *fdt, int chosen)
{
	const struct serial_ops *ops;
	int node, err;

	console = NULL;
	node = find_stdout(fdt, chosen);
	if (node < 0)
		return node;
	ops = match_driver(fdt, node);
	if (!ops)
		return -FDT_ERR_NOTFOUND;
	err = ops->open(fdt, node);
	if (err)
		return err;
	console = ops;
	return 0;
}

static void console_send(const char *buf, size_t len)
{
	if (console->write) {
		console->write(buf, len);
		return;
	}
	while (len--)
		console->putc(*buf++);
}

/* Writes buf with each "\n" sent as "\r\n", as a serial terminal needs. */
void console_write(const char *buf, size_t len)
{
	char out[64];
	size_t n = 0;

	if (!console)
		return;
	while (len--) {
		char c = *buf++;

		if (n + 2 > sizeof(out)) {
			console_send(out, n);
			n = 0;
		}
		if (c == '\n')
			out[n++] = '\r';
		out[n++] = c;
	}
	if (n)
		console_send(out, n);
}

/* Longer output is cut at PRINTF_BUF - 1 characters. */
int printf(const char *fmt, ...)
{
	char buf[PRINTF_BUF];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return n;
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	console_write(buf, n);
	return n;
}
