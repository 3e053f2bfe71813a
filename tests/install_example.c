/* install_example.c - README.md's library example as a whole program. tests/install_test.sh
 * builds it against an installed hoist (public header, pkg-config) and runs it on a
 * checkpoint: it loads PATH into host memory and prints what landed. */
#include <hoist.h>

#include <inttypes.h>
#include <stdio.h>

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s PATH\n", argv[0]);
		return 2;
	}
	printf("library: hoist %s\n", hoist_version());

	struct hoist_options opt = {.device = "cpu"}; /* zero means default */
	struct hoist_checkpoint *ck = NULL;
	struct hoist_plan *plan = NULL;
	struct hoist_model *m = NULL;
	enum hoist_status s = hoist_checkpoint_open(argv[1], &opt, &ck);
	if (s == HOIST_OK)
		s = hoist_plan_create(ck, &opt, &plan); /* where every tensor goes */
	if (s == HOIST_OK)
		s = hoist_model_load(plan, &opt, &m);
	if (s != HOIST_OK)
		fprintf(stderr, "%s: %s\n", hoist_status_name(s), hoist_errmsg());
	uint64_t bytes = 0;
	size_t on_cpu = 0;
	for (size_t i = 0; i < hoist_model_tensor_count(m); i++) {
		const struct hoist_tensor *t =
		        hoist_model_tensor(m, i); /* t->data: here a host address */
		bytes += t->nbytes;
		on_cpu += t->device.kind == HOIST_DEVICE_CPU;
	}
	if (m)
		printf("loaded: %zu tensors, %" PRIu64 " bytes, %zu on cpu\n",
		       hoist_model_tensor_count(m), bytes, on_cpu);
	hoist_model_free(m);
	hoist_plan_free(plan);
	hoist_checkpoint_close(ck);
	return s == HOIST_OK ? 0 : 1;
}
