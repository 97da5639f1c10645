/* Replays every fuzz input kept in the tree through its fuzz target
 * (fuzz/fuzz.h): the seed corpora fuzz/corpus/TARGET/ and the inputs that
 * once crashed or broke an invariant, fuzz/regressions/TARGET/.  Runs in
 * every build (the sanitizer build makes it a memory check too), without
 * libFuzzer.  A crash or a failed invariant fails the test of that
 * target; the file being replayed is named on stderr just before. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <check.h>

#include "fuzz.h"

/* Read a whole file; NULL when it cannot be read. */
static uint8_t *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t cap = 0, n = 0, got;

	if (f == NULL)
		return NULL;
	do {
		if (n == cap) {
			uint8_t *nb;
			cap = cap ? cap * 2 : 4096;
			if ((nb = realloc(buf, cap)) == NULL) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
	} while (got > 0);
	fclose(f);
	*len = n;
	return buf;
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replay every file of dir (sorted by name) through t; returns how many,
 * or -1 when the directory does not exist. */
static int
replay_dir(const struct fuzz_target *t, const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0;

	if (d == NULL) {
		ck_assert_msg(errno == ENOENT, "%s: %s", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			names = realloc(names, cap * sizeof(*names));
			ck_assert_ptr_nonnull(names);
		}
		names[n] = strdup(de->d_name);
		ck_assert_ptr_nonnull(names[n]);
		n++;
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(*names), cmp_names);
	for (size_t i = 0; i < n; i++) {
		char path[4096];
		struct stat st;
		uint8_t *data;
		size_t len = 0;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		ck_assert_int_eq(stat(path, &st), 0);
		if (!S_ISREG(st.st_mode))
			continue;
		data = slurp(path, &len);
		ck_assert_msg(data != NULL || len == 0, "cannot read %s", path);
		fprintf(stderr, "replay %s (%zu bytes)\n", path, len);
		ck_assert_int_eq(
		    t->run(data != NULL ? data : (const uint8_t *)"", len), 0);
		free(data);
		free(names[i]);
	}
	free(names);
	return (int)n;
}

START_TEST(test_replay)
{
	const struct fuzz_target *t = &fuzz_targets[_i];
	char dir[4096];
	int ncorpus, nregress;

	snprintf(dir, sizeof(dir), "%s/fuzz/corpus/%s", TEST_SRCDIR, t->name);
	ncorpus = replay_dir(t, dir);
	ck_assert_msg(ncorpus >= 2, "%s: expected a seed corpus (got %d files)",
	              dir, ncorpus);
	snprintf(dir, sizeof(dir), "%s/fuzz/regressions/%s", TEST_SRCDIR,
	         t->name);
	nregress = replay_dir(t, dir);
	fprintf(stderr, "%s: %d corpus inputs, %d regression inputs replayed\n",
	        t->name, ncorpus, nregress < 0 ? 0 : nregress);
}
END_TEST

static Suite *
fuzz_suite(void)
{
	Suite *s = suite_create("fuzz replay");
	TCase *tc = tcase_create("replay");
	int n = 0;

	while (fuzz_targets[n].name != NULL)
		n++;
	tcase_add_loop_test(tc, test_replay, 0, n);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(fuzz_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
