/*
 * run_corpus: run files through a fuzz target without libFuzzer.
 *
 *   fuzz_NAME_corpus [-o] PATH...
 *
 * Every PATH is a file or a directory whose regular files (not those whose
 * names start with '.' or end in ".md") are run, in name order, through
 * LLVMFuzzerTestOneInput().  A directory named with -o before it may be
 * missing (tests/fuzz/crashes/NAME exists only once a crash was kept); any
 * other missing PATH, or a run that found no file at all, is an error.  A
 * failing input aborts the process; its name was printed just before.
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Inputs larger than this are not fuzz inputs: refuse rather than guess. */
#define INPUT_MAX (1024 * 1024)

static int
run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t n = 0;
	long len;

	if (f == NULL) {
		fprintf(stderr, "run_corpus: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 ||
	    len > INPUT_MAX || fseek(f, 0, SEEK_SET) != 0) {
		fprintf(stderr, "run_corpus: %s: unreadable or too large\n",
		    path);
		goto err;
	}
	/* Exactly as large as the input, so reading past it is caught. */
	buf = malloc(len > 0 ? (size_t)len : 1);
	if (buf == NULL) {
		fprintf(stderr, "run_corpus: %s: out of memory\n", path);
		goto err;
	}
	n = fread(buf, 1, (size_t)len, f);
	if (n != (size_t)len || ferror(f)) {
		fprintf(stderr, "run_corpus: %s: short read\n", path);
		goto err;
	}
	fclose(f);
	printf("run_corpus: %s (%zu bytes)\n", path, n);
	fflush(stdout);
	LLVMFuzzerTestOneInput(buf, n);
	free(buf);
	return 0;
err:
	free(buf);
	fclose(f);
	return -1;
}

static bool
skipped(const char *name)
{
	size_t n = strlen(name);

	return name[0] == '.' || (n >= 3 && strcmp(name + n - 3, ".md") == 0);
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Run every file of dir; adds how many to *count. */
static int
run_dir(const char *dir, size_t *count)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;

	if (d == NULL) {
		fprintf(stderr, "run_corpus: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		size_t len = strlen(dir) + strlen(e->d_name) + 2;
		char *p;

		if (skipped(e->d_name))
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			char **v = realloc(names, ncap * sizeof(*v));

			if (v == NULL) {
				rc = -1;
				break;
			}
			names = v;
			cap = ncap;
		}
		if ((p = malloc(len)) == NULL) {
			rc = -1;
			break;
		}
		snprintf(p, len, "%s/%s", dir, e->d_name);
		names[n++] = p;
	}
	closedir(d);
	if (n > 1)
		qsort(names, n, sizeof(*names), cmp_names);
	for (size_t i = 0; i < n; i++) {
		struct stat st;

		if (rc == 0 && stat(names[i], &st) == 0 &&
		    S_ISREG(st.st_mode)) {
			if (run_file(names[i]) != 0)
				rc = -1;
			else
				(*count)++;
		}
		free(names[i]);
	}
	free(names);
	if (rc != 0)
		fprintf(stderr, "run_corpus: %s: failed\n", dir);
	return rc;
}

int
main(int argc, char **argv)
{
	size_t count = 0;
	bool optional = false;

	for (int i = 1; i < argc; i++) {
		struct stat st;

		if (strcmp(argv[i], "-o") == 0) {
			optional = true;
			continue;
		}
		if (stat(argv[i], &st) != 0) {
			if (optional && errno == ENOENT) {
				optional = false;
				continue;
			}
			fprintf(stderr, "run_corpus: %s: %s\n", argv[i],
			    strerror(errno));
			return 1;
		}
		optional = false;
		if (S_ISDIR(st.st_mode) ? run_dir(argv[i], &count) != 0
					: run_file(argv[i]) != 0)
			return 1;
		if (!S_ISDIR(st.st_mode))
			count++;
	}
	if (count == 0) {
		fprintf(stderr, "run_corpus: no input files\n");
		return 1;
	}
	printf("run_corpus: %zu inputs passed\n", count);
	return 0;
}
