/* names.c - tensor names as dotted paths: component-wise order with numbers in
 * numeric order, prefixes on component boundaries, layer-group prefixes. */
#include "names.h"

#include <ctype.h>
#include <string.h>

bool hoist__name_digits(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* Numeric components sort before others, by value; the rest bytewise. A total order
 * (numbers against words never compare bytewise, which would break transitivity). */
static int component_cmp(const char *a, size_t an, const char *b, size_t bn)
{
	bool ad = hoist__name_digits(a, an), bd = hoist__name_digits(b, bn);
	if (ad != bd)
		return ad ? -1 : 1;
	if (ad) {
		const char *x = a, *y = b;
		size_t xn = an, yn = bn;
		while (xn > 1 && *x == '0')
			x++, xn--;
		while (yn > 1 && *y == '0')
			y++, yn--;
		if (xn != yn)
			return xn < yn ? -1 : 1;
		int c = memcmp(x, y, xn);
		if (c)
			return c;
	}
	int c = memcmp(a, b, HOIST__MIN(an, bn));
	if (c)
		return c;
	return an < bn ? -1 : an > bn;
}

/* Component by component; a key sorts before the keys it is a prefix of, so every
 * module's units are contiguous. */
int hoist__name_cmp(const char *a, size_t an, const char *b, size_t bn)
{
	size_t i = 0, j = 0;
	for (;;) {
		bool aend = i > an, bend = j > bn;
		if (aend || bend)
			return aend && bend ? 0 : aend ? -1 : 1;
		size_t ie = i, je = j;
		while (ie < an && a[ie] != '.')
			ie++;
		while (je < bn && b[je] != '.')
			je++;
		int c = component_cmp(a + i, ie - i, b + j, je - j);
		if (c)
			return c;
		i = ie + 1;
		j = je + 1;
	}
}

/* Whether key has prefix p[0..pn) on a component boundary. */
bool hoist__name_has_prefix(const char *key, size_t kn, const char *p, size_t pn)
{
	if (pn == 0)
		return true;
	return kn >= pn && memcmp(key, p, pn) == 0 && (kn == pn || key[pn] == '.');
}

size_t hoist_layer_group_prefix(const char *name)
{
	/* Find the first ".<digits>." and end the prefix after its second dot. */
	if (!name)
		return 0;
	for (const char *p = strchr(name, '.'); p; p = strchr(p + 1, '.')) {
		const char *d = p + 1;
		while (isdigit((unsigned char)*d))
			d++;
		if (d > p + 1 && *d == '.')
			return (size_t)(d + 1 - name);
	}
	return 0;
}
