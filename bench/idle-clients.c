/*
 * idle-clients: opens N connections with libpq, runs one transaction (SELECT 1) on each, then holds
 * them all open and idle. Used by bench/compare to measure a pooler's memory per idle client.
 *
 *   idle-clients CONNINFO COUNT HOLD_SECONDS
 *
 * Connections are opened one after the other. When all COUNT are open and have run their
 * transaction, it prints "ready COUNT SECONDS" (SECONDS: time spent connecting) on stdout. It then
 * waits until its standard input reaches end-of-file, or HOLD_SECONDS pass, whichever comes first,
 * closes every connection with a Terminate message (PQfinish) and exits 0. Any failure prints
 * "error I: message" on stdout and exits 1 after closing what it opened.
 *
 * Build: cc -O2 -o idle-clients idle-clients.c -I/usr/include/postgresql -lpq
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void finish_all(PGconn **conns, long count) {
    for (long i = 0; i < count; i++) PQfinish(conns[i]);
}

/* One line, without libpq's trailing newline. */
static void report_error(long index, const char *message) {
    size_t length = strcspn(message, "\n");
    printf("error %ld: %.*s\n", index, (int)length, message);
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s CONNINFO COUNT HOLD_SECONDS\n", argv[0]);
        return 2;
    }
    const char *conninfo = argv[1];
    long count = strtol(argv[2], NULL, 10);
    long hold_seconds = strtol(argv[3], NULL, 10);
    if (count < 1 || hold_seconds < 1) {
        fprintf(stderr, "idle-clients: COUNT and HOLD_SECONDS must be positive\n");
        return 2;
    }
    PGconn **conns = calloc((size_t)count, sizeof *conns);
    if (conns == NULL) {
        fprintf(stderr, "idle-clients: out of memory\n");
        return 1;
    }

    double started = now();
    for (long i = 0; i < count; i++) {
        conns[i] = PQconnectdb(conninfo);
        if (PQstatus(conns[i]) != CONNECTION_OK) {
            report_error(i, PQerrorMessage(conns[i]));
            finish_all(conns, i + 1);
            return 1;
        }
        PGresult *result = PQexec(conns[i], "SELECT 1");
        if (PQresultStatus(result) != PGRES_TUPLES_OK) {
            report_error(i, PQerrorMessage(conns[i]));
            PQclear(result);
            finish_all(conns, i + 1);
            return 1;
        }
        PQclear(result);
    }
    printf("ready %ld %.3f\n", count, now() - started);
    fflush(stdout);

    /* Hold until stdin closes or the time is up; whatever arrives on stdin is ignored. */
    double deadline = now() + (double)hold_seconds;
    char buffer[256];
    for (;;) {
        double left = deadline - now();
        if (left <= 0) break;
        struct pollfd pfd = {.fd = 0, .events = POLLIN};
        int ready = poll(&pfd, 1, (int)(left * 1000) + 1);
        if (ready < 0) break;
        if (ready == 0) continue;
        if (read(0, buffer, sizeof buffer) <= 0) break;
    }
    finish_all(conns, count);
    free(conns);
    return 0;
}
