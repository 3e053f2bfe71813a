/*
 * plan_order.h - the planner's units and their execution order (plan_order.c): the
 * caller's units and ties, a module-order file, or hoist's own order of a checkpoint's
 * names; plan.c places the units it makes.
 */
#ifndef HOIST_PLAN_ORDER_H
#define HOIST_PLAN_ORDER_H

#include "plan_state.h"

/* Replaces the plan's units by the caller's: req's units in its order, each tensor in
 * the unit whose prefix covering it is longest, skipped tensors in none; the tie
 * groups. Needs p->tbytes. Errors: HOIST_ERR_INVALID (a tensor no unit covers, a bad
 * tie group), HOIST_ERR_NOMEM. */
enum hoist_status hoist__plan_request_units(struct hoist_plan *p,
                                            const struct hoist_plan_request *req);
/* The same from a module-order file. Errors: those, and HOIST_ERR_IO. */
enum hoist_status hoist__plan_file_units(struct hoist_plan *p, const char *path);
/* hoist's execution order of its own units (p->seq), and the tie group of
 * config.json's tie_word_embeddings. Errors: HOIST_ERR_NOMEM. */
enum hoist_status hoist__plan_default_order(struct hoist_plan *p);
/* The device changes along p->seq, and p->unit_info. Errors: HOIST_ERR_NOMEM. */
enum hoist_status hoist__plan_publish_units(struct hoist_plan *p);

#endif /* HOIST_PLAN_ORDER_H */
