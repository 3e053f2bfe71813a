/* out.c - output checks and formats for the verify, bench and doctor commands. */
#include "out.h"

#include <errno.h>
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

void out_json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
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
