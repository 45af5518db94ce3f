/* SPDX-License-Identifier: MIT */
/*
 * DESIGN: pure parsers of the kernel's text files and of size strings (see
 * parse.h for the contract).  They never trust the input: every scan is
 * bounded by the length given, numbers are checked for overflow, and a line
 * that does not have the expected shape is skipped or reported, never
 * guessed at.  Nothing here allocates or does I/O, so the monitors can use
 * them on the hard reclaim path and the fuzzers can drive them directly.
 */
#include <errno.h>
#include <string.h>

#include "1-base/parse.h"

/* Hand-written instead of strtoull(): bounded by len, no locale, no errno. */
static int parse_u64(const char *p, const char *end, uint64_t *ret,
		     const char **after)
{
	uint64_t v = 0;
	const char *s = p;

	while (p < end && *p >= '0' && *p <= '9') {
		unsigned d = (unsigned)(*p - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
		p++;
	}
	if (p == s)
		return -EINVAL;
	*ret = v;
	if (after)
		*after = p;
	return 0;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* End of the line that starts at p (the '\n' or end). */
static const char *line_end(const char *p, const char *end)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));

	return nl ? nl : end;
}

int shrinker__parse_limit(const char *buf, size_t len, uint64_t *ret)
{
	const char *p = buf, *end = buf + len, *after;
	uint64_t v;
	int r;

	while (end > p && (end[-1] == '\n' || is_blank(end[-1])))
		end--;
	if (end - p == 3 && memcmp(p, "max", 3) == 0) {
		*ret = UINT64_MAX;
		return 0;
	}
	r = parse_u64(p, end, &v, &after);
	if (r < 0)
		return r;
	if (after != end)
		return -EINVAL;
	*ret = shrinker__limit_or_none(v);
	return 0;
}

uint64_t shrinker__limit_or_none(uint64_t v)
{
	/* cgroup v1 says "no limit" as 2^63 rounded down to a page, other
	 * kernels and container runtimes as other huge values. */
	return v >= (1ull << 62) ? UINT64_MAX : v;
}

int shrinker__parse_keyed(const char *buf, size_t len, const char *key,
			  uint64_t *ret)
{
	const char *p = buf, *end = buf + len;
	size_t klen = strlen(key);

	while (p < end) {
		const char *le = line_end(p, end), *q = p + klen, *after;
		uint64_t v;

		if ((size_t)(le - p) > klen && memcmp(p, key, klen) == 0 &&
		    (is_blank(*q) || *q == ':')) {
			if (*q == ':')
				q++;
			while (q < le && is_blank(*q))
				q++;
			int r = parse_u64(q, le, &v, &after);

			if (r < 0)
				return r;
			while (after < le && is_blank(*after))
				after++;
			if (le - after == 2 && memcmp(after, "kB", 2) == 0) {
				if (v > UINT64_MAX / 1024)
					return -ERANGE;
				v *= 1024;
			} else if (after != le) {
				return -EINVAL;
			}
			*ret = v;
			return 0;
		}
		p = le + 1;
	}
	return -ENOENT;
}

static int copy_out(const char *s, size_t n, char *out, size_t out_size)
{
	if (n + 1 > out_size)
		return -ENAMETOOLONG;
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

/* Whether the comma-separated list [p, end) has the word w. */
static bool list_has(const char *p, const char *end, const char *w)
{
	size_t wl = strlen(w);

	while (p < end) {
		const char *c = memchr(p, ',', (size_t)(end - p));
		const char *e = c ? c : end;

		if ((size_t)(e - p) == wl && memcmp(p, w, wl) == 0)
			return true;
		p = e + 1;
	}
	return false;
}

int shrinker__parse_proc_cgroup(const char *buf, size_t len, int version,
				char *path, size_t path_size)
{
	const char *p = buf, *end = buf + len;

	if (version != 1 && version != 2)
		return -EINVAL;
	while (p < end) {
		const char *le = line_end(p, end);
		const char *c1 = memchr(p, ':', (size_t)(le - p));
		const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(le - c1 - 1)) : NULL;

		if (c1 && c2 && c2 + 1 < le && c2[1] == '/') {
			bool match = version == 2
				? (c1 - p == 1 && *p == '0' && c2 == c1 + 1)
				: list_has(c1 + 1, c2, "memory");
			if (match)
				return copy_out(c2 + 1, (size_t)(le - c2 - 1),
						path, path_size);
		}
		p = le + 1;
	}
	return -ENOENT;
}

/* Copy a mountinfo field, decoding \ooo escapes. */
static int copy_unescaped(const char *s, const char *e, char *out, size_t size)
{
	size_t n = 0;

	while (s < e) {
		char c = *s++;

		if (c == '\\' && e - s >= 3 && s[0] >= '0' && s[0] <= '3' &&
		    s[1] >= '0' && s[1] <= '7' && s[2] >= '0' && s[2] <= '7') {
			c = (char)((s[0] - '0') * 64 + (s[1] - '0') * 8 + (s[2] - '0'));
			s += 3;
		}
		if (n + 1 >= size)
			return -ENAMETOOLONG;
		out[n++] = c;
	}
	if (size == 0)
		return -ENAMETOOLONG;
	out[n] = '\0';
	return 0;
}

/* The i-th blank-separated field of [p, le); false if there is none. */
static bool field(const char *p, const char *le, unsigned i,
		  const char **fs, const char **fe)
{
	for (;;) {
		while (p < le && *p == ' ')
			p++;
		if (p >= le)
			return false;
		*fs = p;
		while (p < le && *p != ' ')
			p++;
		*fe = p;
		if (i-- == 0)
			return true;
	}
}

int shrinker__parse_mountinfo(const char *buf, size_t len, int version,
			      char *mount_point, size_t mp_size,
			      char *root, size_t root_size)
{
	const char *p = buf, *end = buf + len;

	if (version != 1 && version != 2)
		return -EINVAL;
	while (p < end) {
		const char *le = line_end(p, end), *fs, *fe, *rs, *re, *ms, *me;
		const char *sep = NULL;
		unsigned i;

		/* Fields: id parent maj:min root mount-point options
		 * [optional...] - fstype source super-options */
		for (i = 6; field(p, le, i, &fs, &fe); i++)
			if (fe - fs == 1 && *fs == '-') {
				sep = fs;
				break;
			}
		if (sep && field(p, le, 3, &rs, &re) && field(p, le, 4, &ms, &me) &&
		    field(sep, le, 1, &fs, &fe)) {
			bool match;

			if (version == 2) {
				match = fe - fs == 7 && memcmp(fs, "cgroup2", 7) == 0;
			} else {
				const char *os, *oe;

				match = fe - fs == 6 && memcmp(fs, "cgroup", 6) == 0 &&
					field(sep, le, 3, &os, &oe) &&
					list_has(os, oe, "memory");
			}
			if (match) {
				int r = copy_unescaped(ms, me, mount_point, mp_size);

				if (r < 0)
					return r;
				return copy_unescaped(rs, re, root, root_size);
			}
		}
		p = le + 1;
	}
	return -ENOENT;
}

/* avg10=1.23 → 1.23; bounded, no locale. */
static int parse_avg(const char *p, const char *e, double *ret)
{
	double v = 0, scale = 0.1;
	const char *s = p;

	while (p < e && *p >= '0' && *p <= '9')
		v = v * 10 + (*p++ - '0');
	if (p == s)
		return -EINVAL;
	if (p < e && *p == '.') {
		p++;
		while (p < e && *p >= '0' && *p <= '9') {
			v += (*p++ - '0') * scale;
			scale /= 10;
		}
	}
	if (p != e)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int parse_psi_line(const char *p, const char *le, uint64_t *total,
			  double *avg10)
{
	bool have_total = false, have_avg = false;
	const char *fs, *fe;
	unsigned i;

	for (i = 1; field(p, le, i, &fs, &fe); i++) {
		const char *eq = memchr(fs, '=', (size_t)(fe - fs));
		const char *after;

		if (!eq)
			return -EINVAL;
		if (eq - fs == 5 && memcmp(fs, "total", 5) == 0) {
			if (parse_u64(eq + 1, fe, total, &after) < 0 || after != fe)
				return -EINVAL;
			have_total = true;
		} else if (eq - fs == 5 && memcmp(fs, "avg10", 5) == 0) {
			if (parse_avg(eq + 1, fe, avg10) < 0)
				return -EINVAL;
			have_avg = true;
		}
	}
	return have_total && have_avg ? 0 : -EINVAL;
}

int shrinker__parse_psi(const char *buf, size_t len, struct shrinker__psi *ret)
{
	const char *p = buf, *end = buf + len;
	struct shrinker__psi psi = { 0 };
	bool some = false;

	while (p < end) {
		const char *le = line_end(p, end);

		if (le - p > 5 && memcmp(p, "some ", 5) == 0) {
			if (parse_psi_line(p, le, &psi.some_total, &psi.some_avg10) < 0)
				return -EINVAL;
			some = true;
		} else if (le - p > 5 && memcmp(p, "full ", 5) == 0) {
			if (parse_psi_line(p, le, &psi.full_total, &psi.full_avg10) < 0)
				return -EINVAL;
		} else if (le != p) {
			return -EINVAL;
		}
		p = le + 1;
	}
	if (!some)
		return -EINVAL;
	*ret = psi;
	return 0;
}

/* A unit after a size: K, M, G or T, optionally followed by "iB" or "B",
 * with blanks around; *shift: its power of two (0 without one).  Returns
 * where the string ends, NULL if anything else follows. */
static const char *unit_suffix(const char *p, unsigned *shift)
{
	*shift = 0;
	while (is_blank(*p))
		p++;
	switch (*p) {
	case 'k': case 'K': *shift = 10; break;
	case 'm': case 'M': *shift = 20; break;
	case 'g': case 'G': *shift = 30; break;
	case 't': case 'T': *shift = 40; break;
	default: break;
	}
	if (*shift) {
		p++;
		if (*p == 'i' && (p[1] == 'B' || p[1] == 'b'))
			p += 2;
		else if (*p == 'B' || *p == 'b')
			p++;
	}
	while (is_blank(*p))
		p++;
	return *p ? NULL : p;
}

int shrinker__parse_size(const char *s, uint64_t *bytes, unsigned *percent_x100)
{
	const char *p = s, *after;
	uint64_t whole, frac = 0, frac_div = 1, mult = 1;
	unsigned shift = 0;
	int r;

	if (!s)
		return -EINVAL;
	while (is_blank(*p))
		p++;
	r = parse_u64(p, p + strlen(p), &whole, &after);
	if (r < 0)
		return r;
	p = after;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		while (*p >= '0' && *p <= '9') {
			if (frac_div < 1000000000ull) {
				frac = frac * 10 + (uint64_t)(*p - '0');
				frac_div *= 10;
			}
			p++;
		}
	}
	after = p;
	while (is_blank(*after))
		after++;
	if (*after == '%') {
		uint64_t x100;

		p = after + 1;
		while (is_blank(*p))
			p++;
		if (*p)
			return -EINVAL;
		if (whole > 100)
			return -EDOM;
		x100 = whole * 100 + frac * 100 / frac_div;
		if (x100 == 0)
			return -EINVAL;
		if (x100 > 10000)
			return -EDOM;
		*percent_x100 = (unsigned)x100;
		return 0;
	}
	p = unit_suffix(p, &shift);
	if (!p || (!shift && frac))
		return -EINVAL; /* not a unit, or "1.5" bytes */
	mult = 1ull << shift;
	if (whole > UINT64_MAX / mult)
		return -ERANGE;
	whole *= mult;
	/* Nine digits of fraction times a T's 2^40 need 70 bits. */
	frac = (uint64_t)((unsigned __int128)frac * mult / frac_div);
	if (whole > UINT64_MAX - frac)
		return -ERANGE;
	whole += frac;
	*bytes = whole; /* 0: no budget */
	*percent_x100 = 0;
	return 0;
}

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int shrinker__base64_decode(const char *in, size_t in_len, uint8_t *out,
			    size_t out_size, size_t *out_len)
{
	uint32_t acc = 0;
	unsigned bits = 0, pad = 0;
	size_t n = 0, i;

	for (i = 0; i < in_len; i++) {
		char c = in[i];
		int v;

		if (c == ' ' || c == '\n' || c == '\t' || c == '\r')
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		if (pad)
			return -EINVAL; /* data after padding */
		v = b64_value(c);
		if (v < 0)
			return -EINVAL;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n >= out_size)
				return -ENAMETOOLONG;
			out[n++] = (uint8_t)(acc >> bits);
		}
	}
	/* Leftover bits must be the zero padding of the last group. */
	if (pad > 2 || bits >= 6 || (acc & ((1u << bits) - 1)) != 0)
		return -EINVAL;
	*out_len = n;
	return 0;
}
