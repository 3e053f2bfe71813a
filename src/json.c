/* json.c - reading small JSON files whole, writing JSON strings. */
#include "json.h"
#include "source.h"

enum hoist_status hoist__json_read_file(const char *path, size_t flags, json_t **out)
{
	char *text = NULL;
	size_t len = 0;
	*out = NULL;
	enum hoist_status st = hoist__source_read_file(path, "a JSON file here",
	                                               HOIST__JSON_FILE_MAX, &text, &len);
	if (st != HOIST_OK)
		return st;
	json_error_t jerr;
	*out = json_loadb(text, len, flags, &jerr);
	if (!*out) {
		if (json_error_code(&jerr) == json_error_out_of_memory)
			st = hoist__error(HOIST_ERR_NOMEM, "%s: out of memory", path);
		else
			st = hoist__error(HOIST_ERR_FORMAT,
			                  "%s: not valid JSON: %s (line %d, column %d)", path,
			                  jerr.text, jerr.line, jerr.column);
	}
	hoist__free(text);
	return st;
}

void hoist__json_write_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}
