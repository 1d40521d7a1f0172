/*
 * Replays a fuzz target's corpus under any compiler: every file in the
 * given directories goes through LLVMFuzzerTestOneInput once, copied so
 * that it ends at a guard page. A crash fails the test; the closing line
 * is "N passed, 0 failed".
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "bx_test.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
replay_dir(const char *dir, unsigned *nb)
{
	struct dirent *e;
	DIR *d = opendir(dir);

	if (d == NULL) {
		fprintf(stderr, "replay: cannot open corpus %s\n", dir);
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		char path[4096];
		size_t len;
		char *buf;
		void *guarded;

		if (e->d_name[0] == '.') {
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		buf = bx_test_read_file(path, &len);
		if (buf == NULL) {
			continue;
		}
		guarded = bx_guard_copy(buf, len);
		LLVMFuzzerTestOneInput(guarded != NULL ? guarded : (void *)buf, len);
		bx_guard_free(guarded, len);
		free(buf);
		(*nb)++;
	}
	closedir(d);
	return 0;
}

int
main(int argc, char **argv)
{
	unsigned nb = 0;

	for (int i = 1; i < argc; i++) {
		if (replay_dir(argv[i], &nb) < 0) {
			return 1;
		}
	}
	if (nb == 0) {
		fprintf(stderr, "replay: empty corpus\n");
		return 1;
	}
	printf("%u passed, 0 failed\n", nb);
	return 0;
}
