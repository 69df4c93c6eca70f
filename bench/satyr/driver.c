/*
 * satyr-parse-gdb: benchmark anchor for lib/gdb/parseBacktrace.ts.
 *
 * Parses one file of gdb `thread apply all bt full` output with satyr's
 * sr_gdb_stacktrace_parse() (abrt/satyr, the ABRT backtrace parser) and
 * prints one line of JSON:
 *
 *   {"threads":N,"frames":M,"parse_ms":X,"crash_frame":"fn"|null}
 *
 *   threads, frames  counted on the parsed structure (all threads, all frames)
 *   parse_ms         wall time of the sr_gdb_stacktrace_parse() call alone
 *                    (CLOCK_MONOTONIC); reading the file is not included
 *   crash_frame      function name of satyr's crash frame: first
 *                    sr_gdb_stacktrace_get_crash_frame() (crash thread found
 *                    by satyr, normalized, its top frame); if that finds
 *                    none, the frame gdb printed before the thread list
 *                    (stacktrace->crash); else null. A note on stderr
 *                    says which one was used.
 *
 * satyr stops at the first thread it cannot parse and still succeeds with
 * the threads before it, so a note on stderr reports how many bytes after
 * the last parsed thread were left unparsed.
 *
 * On a parse failure: satyr's location (line, column, message) on stderr,
 * exit status 1. Build with bench/satyr/build.sh.
 */
#define _POSIX_C_SOURCE 200809L
#include <satyr/gdb/frame.h>
#include <satyr/gdb/stacktrace.h>
#include <satyr/gdb/thread.h>
#include <satyr/location.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The whole file as a NUL-terminated string (satyr parses C strings). */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 20, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf)
            break;
        n += fread(buf + n, 1, cap - n - 1, f);
        if (ferror(f) || feof(f))
            break;
        char *bigger = realloc(buf, cap *= 2);
        if (!bigger) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = bigger;
    }
    int failed = !buf || ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    if (strlen(buf) != n)
        fprintf(stderr, "satyr-parse-gdb: note: input holds a NUL byte; satyr sees only the text before it\n");
    *len = n;
    return buf;
}

/* s as a JSON string literal. */
static void print_json_string(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

static double ms_between(const struct timespec *a, const struct timespec *b)
{
    return (b->tv_sec - a->tv_sec) * 1e3 + (b->tv_nsec - a->tv_nsec) / 1e6;
}

int main(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: %s FILE   (gdb `thread apply all bt full` output)\n", argv[0]);
        return 2;
    }
    size_t len = 0;
    char *text = read_file(argv[1], &len);
    if (!text) {
        perror(argv[1]);
        return 2;
    }

    /* The timed part: satyr's parser only. */
    const char *input = text;
    struct sr_location location;
    sr_location_init(&location);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct sr_gdb_stacktrace *st = sr_gdb_stacktrace_parse(&input, &location);
    clock_gettime(CLOCK_MONOTONIC, &t1);

    if (!st) {
        fprintf(stderr, "satyr-parse-gdb: %s: parse failed at line %d, column %d: %s\n", argv[1],
                location.line, location.column, location.message ? location.message : "(no message)");
        free(text);
        return 1;
    }

    /* Count threads and their frames. */
    long threads = 0, frames = 0;
    for (struct sr_gdb_thread *t = st->threads; t; t = t->next) {
        threads++;
        for (struct sr_gdb_frame *f = t->frames; f; f = f->next)
            frames++;
    }

    /* satyr's crash frame (a deep copy; header frame as the fallback). */
    struct sr_gdb_frame *crash = sr_gdb_stacktrace_get_crash_frame(st);
    const char *crash_name = NULL, *source = "none";
    if (crash && crash->function_name) {
        crash_name = crash->function_name;
        source = "crash thread (sr_gdb_stacktrace_get_crash_frame)";
    } else if (st->crash && st->crash->function_name) {
        crash_name = st->crash->function_name;
        source = "header frame before the threads (stacktrace->crash)";
    }

    printf("{\"threads\":%ld,\"frames\":%ld,\"parse_ms\":%.3f,\"crash_frame\":", threads, frames,
           ms_between(&t0, &t1));
    if (crash_name)
        print_json_string(crash_name);
    else
        fputs("null", stdout);
    puts("}");

    fprintf(stderr, "satyr-parse-gdb: crash_frame from: %s\n", source);
    size_t left = len - (size_t)(input - text);
    if (strspn(input, " \t\r\n") != left) {
        long line = 1; /* line where satyr stopped */
        for (const char *p = text; p < input; p++)
            line += *p == '\n';
        fprintf(stderr, "satyr-parse-gdb: note: %zu of %zu bytes left unparsed, from line %ld (after the last thread satyr accepted)\n",
                left, len, line);
    }

    sr_gdb_frame_free(crash);
    sr_gdb_stacktrace_free(st);
    free(text);
    return 0;
}
