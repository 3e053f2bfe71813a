/*
 * cmd_inspect.c - `hoist inspect PATH [--json]`: what a checkpoint holds, from its
 * headers alone: shards, tensors, bytes per dtype, metadata, config, warnings, the
 * largest tensors and the layer groups. Uses only the public header.
 */
#include "cli.h"
#include "out.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOP_N 10

static const char *fmt_shape(const struct hoist_tensor_info *t, char *buf, size_t size)
{
	size_t len = (size_t)snprintf(buf, size, "[");
	for (unsigned d = 0; d < t->ndim && len + 24 < size; d++)
		len += (size_t)snprintf(buf + len, size - len, "%s%lld", d ? ", " : "",
		                        (long long)t->shape[d]);
	snprintf(buf + len, size - len, "%s]", len + 24 >= size ? "..." : "");
	return buf;
}

/* ---- summaries ------------------------------------------------------------------ */

struct summary {
	uint64_t dtype_bytes[HOIST_DTYPE_COUNT];
	size_t dtype_tensors[HOIST_DTYPE_COUNT];
	size_t top[TOP_N];
	size_t ntop;
};

static void summarize(const struct hoist_checkpoint *c, struct summary *s)
{
	memset(s, 0, sizeof *s);
	size_t n = hoist_checkpoint_tensor_count(c);
	for (size_t i = 0; i < n; i++) {
		const struct hoist_tensor_info *t = hoist_checkpoint_tensor(c, i);
		s->dtype_bytes[t->dtype] += t->nbytes;
		s->dtype_tensors[t->dtype]++;
		/* insertion into the top list: largest first, ties in file order */
		size_t k = s->ntop < TOP_N ? s->ntop++ : TOP_N;
		if (k == TOP_N &&
		    hoist_checkpoint_tensor(c, s->top[TOP_N - 1])->nbytes >= t->nbytes)
			continue;
		if (k == TOP_N)
			k = TOP_N - 1;
		while (k > 0 && hoist_checkpoint_tensor(c, s->top[k - 1])->nbytes < t->nbytes) {
			s->top[k] = s->top[k - 1];
			k--;
		}
		s->top[k] = i;
	}
}

static int print_text(const char *path, const struct hoist_checkpoint *c)
{
	struct summary s;
	char b1[32], b2[32], b3[32], sh[256];
	summarize(c, &s);
	size_t loose;
	uint64_t loose_bytes;
	hoist_checkpoint_ungrouped(c, &loose, &loose_bytes);
	size_t nf = hoist_checkpoint_layer_family_count(c);
	if (nf == 0 && loose == 0 && hoist_checkpoint_tensor_count(c) > 0) {
		fprintf(stderr, "hoist: out of memory grouping the tensors into layers\n");
		return 1;
	}
	size_t n = hoist_checkpoint_tensor_count(c);
	uint64_t total = hoist_checkpoint_total_bytes(c);
	printf("checkpoint: %s\n", path);
	const char *arch = hoist_checkpoint_architecture(c);
	const char *cdt = hoist_checkpoint_config_dtype(c);
	if (arch || cdt)
		printf("config: %s%s%s%s\n", arch ? arch : "", arch && cdt ? ", " : "",
		       cdt ? "dtype " : "", cdt ? cdt : "");
	printf("tensors: %zu, %s (%llu bytes)\n", n, hoist_bytes_format(total, b1, sizeof b1),
	       (unsigned long long)total);
	size_t ns = hoist_checkpoint_shard_count(c);
	printf("\nshards: %zu\n", ns);
	for (size_t i = 0; i < ns; i++)
		printf("  %-10s  %s\n",
		       hoist_bytes_format(hoist_checkpoint_shard(c, i)->size, b1, sizeof b1),
		       hoist_checkpoint_shard(c, i)->path);
	printf("\ndtypes:\n");
	for (unsigned d = 1; d < HOIST_DTYPE_COUNT; d++)
		if (s.dtype_tensors[d])
			printf("  %-8s %6zu tensors  %10s  %5.1f%%\n",
			       hoist_dtype_name((enum hoist_dtype)d), s.dtype_tensors[d],
			       hoist_bytes_format(s.dtype_bytes[d], b1, sizeof b1),
			       total ? 100.0 * (double)s.dtype_bytes[d] / (double)total : 0.0);
	size_t nm = hoist_checkpoint_metadata_count(c);
	if (nm) {
		printf("\nmetadata:\n");
		for (size_t i = 0; i < nm; i++)
			printf("  %s = %s\n", hoist_checkpoint_metadata(c, i)->key,
			       hoist_checkpoint_metadata(c, i)->value);
	}
	size_t nw = hoist_checkpoint_warning_count(c);
	if (nw) {
		printf("\nwarnings:\n");
		for (size_t i = 0; i < nw; i++)
			printf("  %s\n", hoist_checkpoint_warning(c, i));
	}
	if (s.ntop) {
		printf("\nlargest tensors:\n");
		for (size_t i = 0; i < s.ntop; i++) {
			const struct hoist_tensor_info *t = hoist_checkpoint_tensor(c, s.top[i]);
			printf("  %10s  %-7s %-18s %s\n",
			       hoist_bytes_format(t->nbytes, b1, sizeof b1),
			       hoist_dtype_name(t->dtype), fmt_shape(t, sh, sizeof sh), t->name);
		}
	}
	if (nf || loose) {
		printf("\nlayer groups:\n");
		for (size_t f = 0; f < nf; f++) {
			const struct hoist_layer_family *fm = hoist_checkpoint_layer_family(c, f);
			if (fm->group_min_bytes == fm->group_max_bytes)
				printf("  %-40s x %zu group%s, %s each (%zu tensors, %s)\n",
				       fm->pattern, fm->groups, fm->groups == 1 ? "" : "s",
				       hoist_bytes_format(fm->group_min_bytes, b1, sizeof b1),
				       fm->tensors, hoist_bytes_format(fm->bytes, b2, sizeof b2));
			else
				printf("  %-40s x %zu groups, %s to %s each (%zu tensors, %s)\n",
				       fm->pattern, fm->groups,
				       hoist_bytes_format(fm->group_min_bytes, b1, sizeof b1),
				       hoist_bytes_format(fm->group_max_bytes, b3, sizeof b3),
				       fm->tensors, hoist_bytes_format(fm->bytes, b2, sizeof b2));
		}
		if (loose)
			printf("  %-40s %zu tensor%s, %s\n", "(outside any group)", loose,
			       loose == 1 ? "" : "s",
			       hoist_bytes_format(loose_bytes, b1, sizeof b1));
	}
	return 0;
}

/* ---- JSON --------------------------------------------------------------------- */

/* json_object_set_new / json_array_append_new that remember a failure. */
static void oset(json_t *o, const char *k, json_t *v, bool *ok)
{
	if (!v || json_object_set_new(o, k, v) != 0)
		*ok = false;
}

static void aput(json_t *a, json_t *v, bool *ok)
{
	if (!v || json_array_append_new(a, v) != 0)
		*ok = false;
}

static int print_json(const char *path, const struct hoist_checkpoint *c)
{
	struct summary s;
	bool ok = true;
	summarize(c, &s);
	json_t *root = json_object();
	json_t *shards = json_array(), *sizes = json_array(), *dtypes = json_object(),
	       *meta = json_object(), *warn = json_array(), *tensors = json_array(),
	       *groups = json_array(), *largest = json_array();
	if (!root)
		ok = false;
	else {
		oset(root, "path", out_json_text(path), &ok);
		oset(root, "shards", shards, &ok);
		oset(root, "shard_sizes", sizes, &ok);
		oset(root, "tensor_count",
		     json_integer((json_int_t)hoist_checkpoint_tensor_count(c)), &ok);
		oset(root, "total_bytes", json_integer((json_int_t)hoist_checkpoint_total_bytes(c)),
		     &ok);
		oset(root, "dtypes", dtypes, &ok);
		oset(root, "metadata", meta, &ok);
		oset(root, "architecture", out_json_text(hoist_checkpoint_architecture(c)), &ok);
		oset(root, "config_dtype", out_json_text(hoist_checkpoint_config_dtype(c)), &ok);
		oset(root, "warnings", warn, &ok);
		oset(root, "largest", largest, &ok);
		oset(root, "groups", groups, &ok);
		oset(root, "tensors", tensors, &ok);
	}
	for (size_t i = 0; ok && i < hoist_checkpoint_shard_count(c); i++) {
		aput(shards, out_json_text(hoist_checkpoint_shard(c, i)->path), &ok);
		aput(sizes, json_integer((json_int_t)hoist_checkpoint_shard(c, i)->size), &ok);
	}
	for (unsigned d = 1; ok && d < HOIST_DTYPE_COUNT; d++)
		if (s.dtype_tensors[d])
			oset(dtypes, hoist_dtype_name((enum hoist_dtype)d),
			     json_integer((json_int_t)s.dtype_bytes[d]), &ok);
	for (size_t i = 0; ok && i < hoist_checkpoint_metadata_count(c); i++)
		oset(meta, hoist_checkpoint_metadata(c, i)->key,
		     out_json_text(hoist_checkpoint_metadata(c, i)->value), &ok);
	for (size_t i = 0; ok && i < hoist_checkpoint_warning_count(c); i++)
		aput(warn, out_json_text(hoist_checkpoint_warning(c, i)), &ok);
	for (size_t i = 0; ok && i < s.ntop; i++)
		aput(largest, out_json_text(hoist_checkpoint_tensor(c, s.top[i])->name), &ok);
	for (size_t k = 0; ok && k < hoist_checkpoint_layer_group_count(c); k++) {
		const struct hoist_layer_group *lg = hoist_checkpoint_layer_group(c, k);
		json_t *g = json_object();
		if (!g)
			ok = false;
		else {
			oset(g, "prefix", out_json_text(lg->prefix), &ok);
			oset(g, "tensors", json_integer((json_int_t)lg->tensors), &ok);
			oset(g, "bytes", json_integer((json_int_t)lg->bytes), &ok);
		}
		aput(groups, g, &ok);
	}
	for (size_t i = 0; ok && i < hoist_checkpoint_tensor_count(c); i++) {
		const struct hoist_tensor_info *t = hoist_checkpoint_tensor(c, i);
		json_t *o = json_object(), *shape = json_array();
		if (!o || !shape) {
			json_decref(o);
			json_decref(shape);
			ok = false;
			break;
		}
		for (unsigned d = 0; d < t->ndim; d++)
			aput(shape, json_integer(t->shape[d]), &ok);
		oset(o, "name", out_json_text(t->name), &ok);
		oset(o, "dtype", json_string(hoist_dtype_name(t->dtype)), &ok);
		oset(o, "shape", shape, &ok);
		oset(o, "file", out_json_text(hoist_checkpoint_shard(c, t->shard)->path), &ok);
		oset(o, "shard", json_integer(t->shard), &ok);
		oset(o, "offset", json_integer((json_int_t)t->offset), &ok);
		oset(o, "nbytes", json_integer((json_int_t)t->nbytes), &ok);
		aput(tensors, o, &ok);
	}
	if (!root) {
		json_decref(shards);
		json_decref(sizes);
		json_decref(dtypes);
		json_decref(meta);
		json_decref(warn);
		json_decref(tensors);
		json_decref(groups);
		json_decref(largest);
	}
	int rc = 0;
	if (!ok) {
		fprintf(stderr, "hoist: out of memory building the JSON output\n");
		rc = 1;
	} else if (json_dumpf(root, stdout, JSON_COMPACT) != 0 || putchar('\n') == EOF ||
	           fflush(stdout) != 0) {
		fprintf(stderr, "hoist: writing the output: %s\n", strerror(errno));
		rc = 1;
	}
	json_decref(root);
	return rc;
}

int cmd_inspect(const struct cli_command *cmd, int argc, char **argv)
{
	struct cli_common c;
	int rc = cli_parse(cmd, argc, argv, NULL, &c);
	if (rc >= 0)
		return rc;
	struct hoist_checkpoint *ckpt;
	enum hoist_status status = hoist_checkpoint_open(c.path, NULL, &ckpt);
	if (status != HOIST_OK)
		return cli_fail(status);
	rc = c.json ? print_json(c.path, ckpt) : print_text(c.path, ckpt);
	hoist_checkpoint_close(ckpt);
	return rc;
}
