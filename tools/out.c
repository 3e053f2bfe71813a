/* out.c - output checks and formats for the inspect, verify, bench and doctor commands. */
#include "out.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int out_finish(FILE *f)
{
	errno = 0;
	if (fflush(f) == 0 && !ferror(f))
		return 0;
	fprintf(stderr, "hoist: writing the output: %s\n", errno ? strerror(errno) : "write error");
	return 1;
}

json_t *out_json_text(const char *s)
{
	if (!s)
		return json_null();
	json_t *j = json_string(s);
	if (j)
		return j;
	char *copy = strdup(s);
	if (!copy)
		return NULL;
	for (char *p = copy; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	j = json_string(copy);
	free(copy);
	return j;
}

void out_json_string(FILE *f, const char *s)
{
	json_t *j = out_json_text(s ? s : "");
	/* Out of memory: an empty string, which keeps the document well-formed. */
	if (!j || json_dumpf(j, f, JSON_ENCODE_ANY) != 0)
		fputs("\"\"", f);
	json_decref(j);
}

char *out_rate(double bytes_per_second, char *buf, size_t size)
{
	snprintf(buf, size, "%.2f GB/s", bytes_per_second / 1e9);
	return buf;
}

char *out_when(int64_t t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (t <= 0 || !localtime_r(&tt, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M", &tm) == 0)
		snprintf(buf, size, "?");
	return buf;
}
