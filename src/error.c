/* error.c - status names, the thread-local error message, log messages. */
#include "base.h"

#include <stdio.h>
#include <string.h>

/* Long enough for a path, a tensor name and a rule; longer messages are cut. */
#define ERRMSG_SIZE 1024

static _Thread_local char errmsg[ERRMSG_SIZE];

const char *hoist_version(void)
{
	return HOIST_VERSION_STRING;
}

const char *hoist_status_name(enum hoist_status status)
{
	switch (status) {
	case HOIST_OK: return "HOIST_OK";
	case HOIST_ERR_INVALID: return "HOIST_ERR_INVALID";
	case HOIST_ERR_NOMEM: return "HOIST_ERR_NOMEM";
	case HOIST_ERR_IO: return "HOIST_ERR_IO";
	case HOIST_ERR_FORMAT: return "HOIST_ERR_FORMAT";
	case HOIST_ERR_NO_DEVICE: return "HOIST_ERR_NO_DEVICE";
	case HOIST_ERR_DEVICE: return "HOIST_ERR_DEVICE";
	case HOIST_ERR_CANCELLED: return "HOIST_ERR_CANCELLED";
	case HOIST_ERR_NO_SPACE: return "HOIST_ERR_NO_SPACE";
	}
	return "HOIST_ERR_UNKNOWN";
}

const char *hoist_errmsg(void)
{
	return errmsg;
}

enum hoist_status hoist__verror(enum hoist_status status, const char *fmt, va_list ap)
{
	vsnprintf(errmsg, sizeof errmsg, fmt, ap);
	return status;
}

enum hoist_status hoist__error(enum hoist_status status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	hoist__verror(status, fmt, ap);
	va_end(ap);
	return status;
}

void hoist__error_prefix(const char *fmt, ...)
{
	char prefix[ERRMSG_SIZE], old[ERRMSG_SIZE];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	memcpy(old, errmsg, sizeof old);
	/* Truncation is fine: a cut message is still better than none. */
	size_t n = strlen(prefix);
	if (n + 2 >= sizeof errmsg)
		n = sizeof errmsg - 3;
	memcpy(errmsg, prefix, n);
	memcpy(errmsg + n, ": ", 2);
	size_t rest = sizeof errmsg - n - 3;
	size_t m = strnlen(old, rest);
	memcpy(errmsg + n + 2, old, m);
	errmsg[n + 2 + m] = '\0';
}

void hoist__error_clear(void)
{
	errmsg[0] = '\0';
}

void hoist__log(hoist_log_fn fn, void *arg, enum hoist_log_level level, const char *fmt, ...)
{
	char msg[ERRMSG_SIZE];
	va_list ap;
	if (!fn)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fn(level, msg, arg);
}
