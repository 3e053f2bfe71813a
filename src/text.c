/* text.c - devices and byte counts as text. */
#include "base.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum hoist_status hoist_device_parse(const char *text, struct hoist_device *out)
{
	static const struct {
		const char *name;
		enum hoist_device_kind kind;
		bool indexed;
	} kinds[] = {
	        {"cpu", HOIST_DEVICE_CPU, false},
	        {"disk", HOIST_DEVICE_DISK, false},
	        {"cuda", HOIST_DEVICE_CUDA, true},
	        {"sim", HOIST_DEVICE_SIM, true},
	};
	if (!text || !out)
		return hoist__error(HOIST_ERR_INVALID, "device: missing text");
	for (size_t i = 0; i < HOIST__ARRAY_SIZE(kinds); i++) {
		size_t n = strlen(kinds[i].name);
		if (strncmp(text, kinds[i].name, n) != 0)
			continue;
		const char *rest = text + n;
		if (*rest == '\0') {
			out->kind = kinds[i].kind;
			out->index = kinds[i].indexed ? -1 : 0;
			return HOIST_OK;
		}
		if (*rest != ':' || !kinds[i].indexed || !isdigit((unsigned char)rest[1]))
			break;
		char *end;
		errno = 0;
		long index = strtol(rest + 1, &end, 10);
		if (*end != '\0' || errno != 0 || index > 4096)
			break;
		out->kind = kinds[i].kind;
		out->index = (int)index;
		return HOIST_OK;
	}
	return hoist__error(HOIST_ERR_INVALID,
	                    "device \"%s\": expected cpu, disk, cuda, cuda:N, sim or sim:N", text);
}

char *hoist_device_format(struct hoist_device device, char *buf, size_t size)
{
	if (!buf || size == 0)
		return buf;
	switch (device.kind) {
	case HOIST_DEVICE_CPU: snprintf(buf, size, "cpu"); break;
	case HOIST_DEVICE_DISK: snprintf(buf, size, "disk"); break;
	case HOIST_DEVICE_CUDA:
	case HOIST_DEVICE_SIM: {
		const char *kind = device.kind == HOIST_DEVICE_CUDA ? "cuda" : "sim";
		if (device.index < 0)
			snprintf(buf, size, "%s", kind);
		else
			snprintf(buf, size, "%s:%d", kind, device.index);
		break;
	}
	default: snprintf(buf, size, "device?%d", (int)device.kind); break;
	}
	return buf;
}

char *hoist_bytes_format(uint64_t bytes, char *buf, size_t size)
{
	if (!buf || size == 0)
		return buf;
	static const char *units[] = {"B", "KB", "MB", "GB", "TB", "PB"};
	double v = (double)bytes;
	size_t u = 0;
	while (v >= 1000.0 && u + 1 < HOIST__ARRAY_SIZE(units)) {
		v /= 1000.0;
		u++;
	}
	if (u == 0)
		snprintf(buf, size, "%llu B", (unsigned long long)bytes);
	else
		snprintf(buf, size, "%.2f %s", v, units[u]);
	return buf;
}

enum hoist_status hoist_bytes_parse(const char *text, uint64_t *out)
{
	static const struct {
		const char *suffix;
		double factor;
	} units[] = {
	        {"KiB", 1024.0},
	        {"MiB", 1048576.0},
	        {"GiB", 1073741824.0},
	        {"TiB", 1099511627776.0},
	        {"KB", 1e3},
	        {"MB", 1e6},
	        {"GB", 1e9},
	        {"TB", 1e12},
	        {"B", 1.0},
	        {"", 1.0},
	};
	if (!text || !*text)
		return hoist__error(HOIST_ERR_INVALID, "byte count: empty");
	char *end;
	errno = 0;
	double v = strtod(text, &end);
	if (end == text || errno != 0 || !isfinite(v) || v < 0 || !isdigit((unsigned char)text[0]))
		return hoist__error(HOIST_ERR_INVALID,
		                    "byte count \"%s\": expected a number with an optional unit "
		                    "(B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)",
		                    text);
	for (size_t i = 0; i < HOIST__ARRAY_SIZE(units); i++) {
		if (strcasecmp(end, units[i].suffix) == 0) {
			double bytes = v * units[i].factor;
			if (bytes >= 18446744073709551615.0)
				return hoist__error(HOIST_ERR_INVALID,
				                    "byte count \"%s\": too large", text);
			*out = (uint64_t)llround(floor(bytes));
			return HOIST_OK;
		}
	}
	return hoist__error(
	        HOIST_ERR_INVALID,
	        "byte count \"%s\": unknown unit \"%s\" (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)",
	        text, end);
}
