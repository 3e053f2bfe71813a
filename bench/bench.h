/* bench.h - what the C benchmarks (bench_open.c, bench_plan.c, bench_stream.c) share:
 * the order and the median of their timings. */
#ifndef HOIST_BENCH_H
#define HOIST_BENCH_H

#include <stdlib.h>

/* qsort's comparison of two doubles, ascending. */
static inline int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The median of v[0..n) (n > 0), the mean of the middle two for even n; sorts v. */
static inline double bench_median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#endif
