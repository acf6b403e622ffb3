/* A main() for fuzz targets built without libFuzzer: runs
 * LLVMFuzzerTestOneInput once per file named on the command line, walking
 * directories (in name order, so runs are reproducible), or once over stdin
 * when no argument is given. A crash or abort() in the target is the failure
 * signal, as under libFuzzer; this program itself exits 1 only when an input
 * could not be read. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct replay {
    size_t ran;
    size_t unreadable;
};

/* Reads all of fp into a malloc'd buffer of exactly its size (so that ASan
 * sees a read past the input's end), which the caller frees. */
static int replay_slurp(FILE *fp, uint8_t **out, size_t *len)
{
    size_t cap = 4096, n = 0;
    uint8_t *buf = NULL, *grown;

    for (;;) {
        grown = realloc(buf, cap);
        if (grown == NULL)
            goto fail;
        buf = grown;
        n += fread(buf + n, 1, cap - n, fp);
        if (n < cap)
            break;
        cap *= 2;
    }
    if (ferror(fp))
        goto fail;
    grown = realloc(buf, n > 0 ? n : 1);
    if (grown == NULL)
        goto fail;
    *out = grown; /* transferred */
    *len = n;
    return 0;
fail:
    free(buf);
    return -1;
}

static void replay_stream(struct replay *r, FILE *fp, const char *name)
{
    uint8_t *data = NULL;
    size_t len = 0;

    if (replay_slurp(fp, &data, &len) != 0) {
        fprintf(stderr, "replay: %s: read failed\n", name);
        r->unreadable++;
        return;
    }
    LLVMFuzzerTestOneInput(data, len);
    r->ran++;
    free(data);
}

static void replay_path(struct replay *r, const char *path)
{
    struct stat st;
    struct dirent **names;
    int n;

    if (stat(path, &st) == -1) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        r->unreadable++;
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        FILE *fp = fopen(path, "rb");
        if (fp == NULL) {
            fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
            r->unreadable++;
            return;
        }
        replay_stream(r, fp, path);
        fclose(fp);
        return;
    }
    n = scandir(path, &names, NULL, alphasort);
    if (n == -1) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        r->unreadable++;
        return;
    }
    for (int i = 0; i < n; i++) {
        /* Skips ".", ".." and hidden files such as editor swap files. */
        if (names[i]->d_name[0] != '.') {
            size_t len = strlen(path) + strlen(names[i]->d_name) + 2;
            char *child = malloc(len);
            if (child == NULL) {
                r->unreadable++;
            } else {
                snprintf(child, len, "%s/%s", path, names[i]->d_name);
                replay_path(r, child);
                free(child);
            }
        }
        free(names[i]);
    }
    free(names);
}

int main(int argc, char **argv)
{
    struct replay r = {0, 0};

    if (argc < 2)
        replay_stream(&r, stdin, "<stdin>");
    for (int i = 1; i < argc; i++)
        replay_path(&r, argv[i]);
    printf("replay: %zu inputs ran, %zu unreadable\n", r.ran, r.unreadable);
    return r.unreadable > 0;
}
