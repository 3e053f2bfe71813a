/* test_order.c - the execution order the planner fills devices along: the caller's
 * units and ties (hoist_options.request), module-order files, ties from config.json,
 * room for offloaded layers, and accelerate's decisions on the real 7B layout as an
 * oracle for the last. */
#include "test.h"
#include "fixtures.h"

#include <jansson.h>

/* Along the plan's order, each device holds one run (no device comes back). */
static void check_one_run_each(const struct hoist_plan *p)
{
	char seen[HOIST_MAX_DEVICES + 2][32];
	size_t nseen = 0, n = hoist_plan_unit_count(p);
	for (size_t i = 0; i < n; i++) {
		const char *d = test_device_name(hoist_plan_unit(p, i)->device);
		if (nseen && strcmp(seen[nseen - 1], d) == 0)
			continue;
		for (size_t k = 0; k < nseen; k++)
			if (strcmp(seen[k], d) == 0)
				FAIL("unit %s: back on %s", hoist_plan_unit(p, i)->name, d);
		snprintf(seen[nseen++], sizeof seen[0], "%s", d);
	}
	CHECK_EQ_INT(hoist_plan_device_changes(p), nseen ? nseen - 1 : 0);
}

/* ---- accelerate's maps, exactly, with its room for offloaded layers ------------------- */

TEST_TIMEOUT(plan_qwen7b_equals_accelerate_with_room, 120)
{
	const char *dir = fixture_qwen7b_sparse();
	struct hoist_checkpoint *c = NULL;
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &c));
	json_error_t e;
	json_t *root = json_load_file(
	        test_join(test_data_dir(), "device-maps/qwen2-vl-7b-accelerate.json"), 0, &e);
	CHECK(root != NULL);
	const char *name;
	json_t *cs;
	size_t cases = 0;
	json_object_foreach(json_object_get(root, "cases"), name, cs)
	{
		char mm[256];
		size_t len = 0;
		const char *key;
		json_t *v;
		json_object_foreach(json_object_get(cs, "max_memory"), key, v) len +=
		        (size_t)snprintf(mm + len, sizeof mm - len, "%s%s=%lld", len ? "," : "",
		                         key, (long long)json_integer_value(v));
		const char *map = test_path("accelerate.json");
		CHECK(json_dump_file(json_object_get(cs, "device_map"), map, 0) == 0);
		struct hoist_options ao = {.device_map = map, .max_memory = mm};
		struct hoist_options mine = {.device_map = "sequential",
		                             .max_memory = mm,
		                             .offload_room = HOIST_ROOM_LARGEST_UNIT};
		struct hoist_plan *acc, *p;
		CHECK_OK(hoist_plan_create(c, &ao, &acc));
		CHECK_OK(hoist_plan_create(c, &mine, &p));
		for (size_t t = 0; t < hoist_checkpoint_tensor_count(c); t++) {
			const char *a = test_device_name(hoist_plan_tensor(acc, t)->device);
			const char *b = test_device_name(hoist_plan_tensor(p, t)->device);
			if (strcmp(a, b) != 0)
				FAIL("%s: tensor %s: accelerate %s, hoist %s", name,
				     hoist_checkpoint_tensor(c, t)->name, a, b);
		}
		check_one_run_each(p);
		hoist_plan_free(acc);
		hoist_plan_free(p);
		cases++;
	}
	CHECK_EQ_INT(cases, 4);
	json_decref(root);
	hoist_checkpoint_close(c);
}

TEST(plan_qwen7b_tied_embeddings_from_config)
{
	/* The 7B layout with tie_word_embeddings true in its config: the embeddings
	 * (first in the order) and lm_head (last) go to one device, the one the
	 * embeddings go to, which keeps room for both. */
	const char *dir = fixture_qwen7b_sparse();
	char *cfg = test_read_file(test_join(dir, "config.json"), NULL);
	char *at = strstr(cfg, "\"tie_word_embeddings\": false");
	CHECK(at != NULL);
	memcpy(at, "\"tie_word_embeddings\": true ", 28);
	test_write_file(test_join(dir, "config.json"), cfg, strlen(cfg));
	free(cfg);
	struct hoist_checkpoint *c = NULL;
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &c));
	struct hoist_options opt = {.device_map = "sequential", .max_memory = "0=10GiB,cpu=30GiB"};
	struct hoist_plan *p;
	CHECK_OK(hoist_plan_create(c, &opt, &p));
	CHECK_STR(test_tensor_device(c, p, "model.language_model.embed_tokens.weight"), "cuda:0");
	CHECK_STR(test_tensor_device(c, p, "lm_head.weight"), "cuda:0");
	/* 1.09 GB less room for layers on the GPU: 0-14 there now */
	CHECK_STR(test_tensor_device(c, p, "model.language_model.layers.14.mlp.up_proj.weight"),
	          "cuda:0");
	CHECK_STR(test_tensor_device(c, p, "model.language_model.layers.15.mlp.up_proj.weight"),
	          "cpu");
	size_t n = hoist_plan_unit_count(p);
	CHECK(hoist_plan_unit(p, 0)->tied && hoist_plan_unit(p, n - 1)->tied);
	CHECK_EQ_INT(hoist_plan_device_changes(p), 2); /* cuda:0, cpu, then lm_head back */
	FILE *f = tmpfile();
	CHECK_OK(hoist_plan_print(p, f));
	rewind(f);
	char text[16384];
	text[fread(text, 1, sizeof text - 1, f)] = '\0';
	fclose(f);
	CHECK(strstr(text, "tied: 1 group (2 units), each on one device") != NULL);
	CHECK(strstr(text, "2 device changes") != NULL);
	hoist_plan_free(p);
	hoist_checkpoint_close(c);
}

/* ---- the caller's units ------------------------------------------------------------ */

/* embed 1024, layers.0-3 768 each (w 512 + b 256), norm 256, head 1024. */
static struct hoist_checkpoint *small(void)
{
	static const char header[] =
	        "{\"embed.weight\":{\"dtype\":\"U8\",\"shape\":[1024],\"data_offsets\":[0,1024]},"
	        "\"layers.0.w\":{\"dtype\":\"U8\",\"shape\":[512],\"data_offsets\":[1024,1536]},"
	        "\"layers.0.b\":{\"dtype\":\"U8\",\"shape\":[256],\"data_offsets\":[1536,1792]},"
	        "\"layers.1.w\":{\"dtype\":\"U8\",\"shape\":[512],\"data_offsets\":[1792,2304]},"
	        "\"layers.1.b\":{\"dtype\":\"U8\",\"shape\":[256],\"data_offsets\":[2304,2560]},"
	        "\"layers.2.w\":{\"dtype\":\"U8\",\"shape\":[512],\"data_offsets\":[2560,3072]},"
	        "\"layers.2.b\":{\"dtype\":\"U8\",\"shape\":[256],\"data_offsets\":[3072,3328]},"
	        "\"layers.3.w\":{\"dtype\":\"U8\",\"shape\":[512],\"data_offsets\":[3328,3840]},"
	        "\"layers.3.b\":{\"dtype\":\"U8\",\"shape\":[256],\"data_offsets\":[3840,4096]},"
	        "\"norm.weight\":{\"dtype\":\"U8\",\"shape\":[256],\"data_offsets\":[4096,4352]},"
	        "\"head.weight\":{\"dtype\":\"U8\",\"shape\":[1024],\"data_offsets\":[4352,5376]},"
	        "\"extra\":{\"dtype\":\"U8\",\"shape\":[256],\"data_offsets\":[5376,5632]}}";
	const char *path = test_path("small.safetensors");
	fixture_write_safetensors(path, header, NULL, 5632);
	struct hoist_checkpoint *c = NULL;
	CHECK_OK(hoist_checkpoint_open(path, NULL, &c));
	return c;
}

TEST(plan_request_units_order_ties_fixed_and_skip)
{
	struct hoist_checkpoint *c = small();
	const char *embed[] = {"embed"}, *l0[] = {"layers.0."}, *l1[] = {"layers.1"},
	           *l23[] = {"layers.2", "layers.3"}, *norm[] = {"norm.weight"}, *head[] = {"head"},
	           *none[] = {"absent"};
	const struct hoist_plan_unit units[] = {
	        {"embed", embed, 1, NULL}, {"layer 0", l0, 1, NULL},
	        {"layer 1", l1, 1, NULL},  {"layers 2-3", l23, 2, NULL},
	        {"norm", norm, 1, NULL},   {"buffers only", none, 1, NULL},
	        {"head", head, 1, NULL},
	};
	const size_t tie_units[] = {0, 6}, tie_offsets[] = {0, 2};
	const char *skip[] = {"extra"};
	struct hoist_plan_request req = {units, 7, tie_units, tie_offsets, 1, skip, 1};
	/* sim:0 2500: embed + head (tied: 2048) + nothing else fits (layer 0: 768);
	 * sim:1 2000: layers 0-1 (1536); cpu: layers 2-3, norm, (buffers only). */
	struct hoist_sim_options sim = {.devices = 2};
	struct hoist_options opt = {.device = "sim",
	                            .device_map = "sequential",
	                            .max_memory = "0=2500,1=2000,cpu=10000",
	                            .sim = &sim,
	                            .request = &req};
	struct hoist_plan *p;
	CHECK_OK(hoist_plan_create(c, &opt, &p));
	CHECK_STR(test_tensor_device(c, p, "embed.weight"), "sim:0");
	CHECK_STR(test_tensor_device(c, p, "head.weight"), "sim:0");
	CHECK_STR(test_tensor_device(c, p, "layers.0.w"), "sim:1");
	CHECK_STR(test_tensor_device(c, p, "layers.1.b"), "sim:1");
	CHECK_STR(test_tensor_device(c, p, "layers.3.w"), "cpu");
	CHECK_STR(test_tensor_device(c, p, "norm.weight"), "cpu");
	CHECK_STR(test_tensor_device(c, p, "extra"), "disk"); /* skipped: left in the file */
	CHECK_EQ_INT(hoist_plan_unit_count(p), 7);
	const struct hoist_plan_unit_info *u = hoist_plan_unit(p, 5);
	CHECK_STR(u->name, "buffers only");
	CHECK_EQ_INT(u->tensors, 0);
	CHECK_STR(test_device_name(u->device), "cpu");
	CHECK_STR(hoist_plan_unit(p, 3)->name, "layers 2-3");
	CHECK_EQ_INT(hoist_plan_unit(p, 3)->tensors, 4);
	CHECK_EQ_U64(hoist_plan_unit(p, 3)->bytes, 1536);
	CHECK(hoist_plan_unit(p, 6)->tied && !hoist_plan_unit(p, 1)->tied);
	CHECK_EQ_INT(hoist_plan_device_changes(p), 3); /* sim:0, sim:1, cpu, back to sim:0 */
	/* the skipped tensor costs no disk bytes */
	for (size_t d = 0; d < hoist_plan_device_count(p); d++)
		if (hoist_plan_device(p, d)->device.kind == HOIST_DEVICE_DISK)
			CHECK_EQ_U64(hoist_plan_device(p, d)->bytes, 0);
	hoist_plan_free(p);

	/* Fixed devices: layer 1 told cpu, head told "1" (a sim ordinal), so its tie
	 * group follows it there. */
	struct hoist_plan_unit fixed[7];
	memcpy(fixed, units, sizeof fixed);
	fixed[2].device = "cpu";
	fixed[6].device = "1";
	req.units = fixed;
	CHECK_OK(hoist_plan_create(c, &opt, &p));
	CHECK_STR(test_tensor_device(c, p, "layers.1.w"), "cpu");
	CHECK_STR(test_tensor_device(c, p, "head.weight"), "sim:1");
	CHECK_STR(test_tensor_device(c, p, "embed.weight"), "sim:1");
	CHECK_STR(test_tensor_device(c, p, "layers.0.w"), "sim:0");
	hoist_plan_free(p);
	fixed[6].device = "cuda:3";
	CHECK_ERR(hoist_plan_create(c, &opt, &p), HOIST_ERR_INVALID,
	          "unit \"head\" is told \"cuda:3\", which is not among the plan's devices "
	          "(sim:0, sim:1, cpu, disk)");
	fixed[6].device = "gpu";
	CHECK_ERR(hoist_plan_create(c, &opt, &p), HOIST_ERR_INVALID,
	          "unit \"head\": unknown device \"gpu\"");
	fixed[6].device = NULL;
	fixed[0].device = "0";
	fixed[6].device = "1";
	CHECK_ERR(hoist_plan_create(c, &opt, &p), HOIST_ERR_INVALID, "tie group is on");

	/* Errors: a tensor in no unit, a prefix given twice, a bad tie group. */
	req.units = units;
	req.skip_count = 0;
	CHECK_ERR(hoist_plan_create(c, &opt, &p), HOIST_ERR_INVALID,
	          "plan request: tensor \"extra\" is in no unit");
	req.skip_count = 1;
	const char *twice[] = {"layers.1", "layers.1."};
	struct hoist_plan_unit dup[7];
	memcpy(dup, units, sizeof dup);
	dup[2].prefixes = twice;
	dup[2].prefix_count = 2;
	req.units = dup;
	CHECK_ERR(hoist_plan_create(c, &opt, &p), HOIST_ERR_INVALID,
	          "prefix \"layers.1\" is given for units \"layer 1\" and \"layer 1\"");
	req.units = units;
	const size_t bad[] = {0, 9};
	req.tie_units = bad;
	CHECK_ERR(hoist_plan_create(c, &opt, &p), HOIST_ERR_INVALID,
	          "tie group 0 names unit 9 of 7");
	hoist_checkpoint_close(c);
}

TEST(plan_module_order_file)
{
	struct hoist_checkpoint *c = small();
	const char *path = test_path("order.txt");
	const char text[] = "# units in execution order\n"
	                    "embed\n"
	                    "layers.0 layers.1   # two layers as one unit\n"
	                    "layers.2\n"
	                    "layers.3\n"
	                    "norm head\n"
	                    "extra\n"
	                    "tie embed extra\n";
	test_write_file(path, text, strlen(text));
	struct hoist_options opt = {.device = "cpu",
	                            .device_map = "sequential",
	                            .max_memory = "cpu=3000",
	                            .module_order = path};
	struct hoist_plan *p;
	CHECK_OK(hoist_plan_create(c, &opt, &p));
	CHECK_EQ_INT(hoist_plan_unit_count(p), 6);
	CHECK_STR(hoist_plan_unit(p, 1)->name, "layers.0");
	CHECK_EQ_INT(hoist_plan_unit(p, 1)->tensors, 4);
	/* cpu 3000: embed + extra (tied, 1280) + layers 0-1 (1536); the rest to disk,
	 * extra staying with embed */
	CHECK_STR(test_tensor_device(c, p, "layers.1.b"), "cpu");
	CHECK_STR(test_tensor_device(c, p, "extra"), "cpu");
	CHECK_STR(test_tensor_device(c, p, "layers.2.w"), "disk");
	CHECK_STR(test_tensor_device(c, p, "head.weight"), "disk");
	FILE *f = tmpfile();
	CHECK_OK(hoist_plan_print(p, f));
	rewind(f);
	char out[8192];
	out[fread(out, 1, sizeof out - 1, f)] = '\0';
	fclose(f);
	CHECK(strstr(out, "order (from the module-order file ") != NULL);
	hoist_plan_free(p);

	const char *bad[][2] = {
	        {"embed\nlayers\nnorm\n", "tensor \"head.weight\" and others is in no unit"},
	        {"embed layers norm head extra\ntie embed\n", ":2: a tie line names at least two"},
	        {"embed layers norm head extra\ntie embed nothing\n",
	         "tie names \"nothing\", which starts no unit's line"},
	        {"# nothing\n\n", "no units (one per line)"},
	};
	for (size_t i = 0; i < TEST_ARRAY_SIZE(bad); i++) {
		test_write_file(path, bad[i][0], strlen(bad[i][0]));
		CHECK_ERR(hoist_plan_create(c, &opt, &p), HOIST_ERR_INVALID, bad[i][1]);
		CHECK(strstr(hoist_errmsg(), "order.txt") != NULL);
	}
	opt.module_order = test_path("absent.txt");
	CHECK_ERR(hoist_plan_create(c, &opt, &p), HOIST_ERR_IO, "absent.txt");
	hoist_checkpoint_close(c);
}

TEST(plan_cli_module_order)
{
	const char *dir = fixture_qwen7b_sparse();
	const char *path = test_path("order.txt");
	const char text[] = "model.visual\nmodel.language_model.embed_tokens\n"
	                    "model.language_model.layers\nmodel.language_model.norm\nlm_head\n";
	test_write_file(path, text, strlen(text));
	char *out = NULL;
	int rc = test_run(&out, "%s plan %s --max-memory 0=2GiB,cpu=30GiB --module-order %s",
	                  test_hoist_bin(), dir, path);
	if (rc != 0)
		FAIL("rc %d: %s", rc, out);
	CHECK(strstr(out, "5 units, 1 device change") != NULL);
	CHECK(strstr(out, "model.visual -> cuda:0") != NULL);
	CHECK(strstr(out, "model.language_model.embed_tokens .. lm_head -> cpu") != NULL);
	free(out);
}
