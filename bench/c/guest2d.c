/*
 * The C program of the guest benchmark (bench/guest.py): the physical limit of the loops the
 * driver runs in a lab guest, through the same sysfs files (resource0 pread/pwrite for the
 * registers, resource2 mmap for the FIFO, resource1 mmap for the framebuffer).
 *
 * Compiled on the host at bench time (gcc -O2); the guest runs the host's root over 9p, so the
 * host's libc serves it (docs/lab.md 'Guest without a disk image: host root over 9p').
 *
 *   guest2d DEVDIR WIDTH HEIGHT WINDOW_S SIZES BACKGROUND
 *
 * SIZES is a comma-separated list of square UPDATE sizes. What it does, in the order of
 * bench/guest.py's module docstring ("The three programs"): set the mode, fill the framebuffer
 * with BACKGROUND and UPDATE it, drain, signal the lab marker "ready"; then for each size n,
 * UPDATE 0,0 n x n then SYNC until drained (the developer kit's 2dmark loop, with SYNC/BUSY
 * instead of a fence: QEMU has none, docs/qemu-7.2.md quirk 3 and quirk 8), for WINDOW_S
 * seconds; then batches of 500 RECT_FILL 8x8, pre-encoded (one copy) and encoded each batch,
 * each batch followed by a drain. One JSON line per loop on stdout.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { REG_ID = 0, REG_ENABLE = 1, REG_WIDTH = 2, REG_HEIGHT = 3, REG_BPP = 7,
       REG_BYTES_PER_LINE = 12, REG_FB_OFFSET = 14, REG_MEM_SIZE = 19, REG_CONFIG_DONE = 20,
       REG_SYNC = 21, REG_BUSY = 22 };
enum { FIFO_MIN = 0, FIFO_MAX = 1, FIFO_NEXT_CMD = 2, FIFO_STOP = 3 };
#define SVGA_ID_2 0x90000002u
#define CMD_UPDATE 1u
#define CMD_RECT_FILL 2u
#define BATCH 500
#define CELL 8
#define CHUNK 64

static int fd;
static volatile uint32_t *fifo;
static uint32_t fmin, fmax;

static void die(const char *what) { fprintf(stderr, "guest2d: %s: %s\n", what, strerror(errno)); exit(1); }

static void reg_write(uint32_t reg, uint32_t value)
{
    if (pwrite(fd, &reg, 4, 0) != 4 || pwrite(fd, &value, 4, 1) != 4) die("register write");
}

static uint32_t reg_read(uint32_t reg)
{
    uint32_t v;
    if (pwrite(fd, &reg, 4, 0) != 4 || pread(fd, &v, 4, 1) != 4) die("register read");
    return v;
}

static void drain(void)
{
    long rounds = 0;
    while (fifo[FIFO_STOP] != fifo[FIFO_NEXT_CMD]) {
        __sync_synchronize();
        reg_write(REG_SYNC, 1);
        while (reg_read(REG_BUSY)) {}
        if (++rounds > 1000000) { fprintf(stderr, "guest2d: the FIFO does not drain\n"); exit(1); }
    }
}

static inline uint32_t put(uint32_t next, uint32_t word)
{
    fifo[next / 4] = word;
    next += 4;
    return next == fmax ? fmin : next;
}

static void commit(uint32_t next) { __sync_synchronize(); fifo[FIFO_NEXT_CMD] = next; }

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void marker(const char *name)
{
    const char *job = getenv("SVGA_LAB_JOB");
    char path[4096];
    if (!job) return;
    snprintf(path, sizeof path, "%s/marker.%s", job, name);
    int m = open(path, O_CREAT | O_WRONLY, 0644);
    if (m < 0) die("marker");
    close(m);
    snprintf(path, sizeof path, "%s/release.%s", job, name);
    while (access(path, F_OK) != 0) usleep(20000);
}

static void *map(const char *dev, int bar, size_t *size)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/resource%d", dev, bar);
    int f = open(path, O_RDWR | O_CLOEXEC);
    if (f < 0 || fstat(f, &st) < 0) die(path);
    void *p = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0);
    if (p == MAP_FAILED) die(path);
    close(f);
    *size = st.st_size;
    return p;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: guest2d DEVDIR WIDTH HEIGHT WINDOW_S SIZES BACKGROUND\n");
        return 2;
    }
    const char *dev = argv[1];
    uint32_t width = strtoul(argv[2], NULL, 0), height = strtoul(argv[3], NULL, 0);
    double window = strtod(argv[4], NULL);
    uint32_t background = strtoul(argv[6], NULL, 0);
    char path[4096];
    snprintf(path, sizeof path, "%s/resource0", dev);
    fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) die(path);
    size_t vram_size, fifo_size;
    volatile uint8_t *vram = map(dev, 1, &vram_size);
    fifo = map(dev, 2, &fifo_size);

    reg_write(REG_ID, SVGA_ID_2);
    if (reg_read(REG_ID) != SVGA_ID_2) { fprintf(stderr, "guest2d: the device refuses SVGA_ID_2\n"); return 1; }
    uint32_t mem = reg_read(REG_MEM_SIZE);
    reg_write(REG_WIDTH, width);
    reg_write(REG_HEIGHT, height);
    reg_write(REG_BPP, 32);
    reg_write(REG_CONFIG_DONE, 0);
    fmin = 16;
    fmax = mem < fifo_size ? mem : (uint32_t)fifo_size;
    fifo[FIFO_MIN] = fmin; fifo[FIFO_MAX] = fmax; fifo[FIFO_NEXT_CMD] = fmin; fifo[FIFO_STOP] = fmin;
    reg_write(REG_ENABLE, 1);
    reg_write(REG_CONFIG_DONE, 1);
    uint32_t pitch = reg_read(REG_BYTES_PER_LINE), offset = reg_read(REG_FB_OFFSET);
    for (uint32_t y = 0; y < height; y++) {
        volatile uint32_t *row = (volatile uint32_t *)(vram + offset + (size_t)y * pitch);
        for (uint32_t x = 0; x < width; x++) row[x] = background;
    }
    uint32_t next = fmin;
    next = put(next, CMD_UPDATE); next = put(next, 0); next = put(next, 0);
    next = put(next, width); next = put(next, height);
    commit(next);
    drain();
    marker("ready");

    for (char *s = strtok(argv[5], ","); s; s = strtok(NULL, ",")) {
        uint32_t n = strtoul(s, NULL, 0);
        long count = 0;
        double t0 = now(), t;
        do {
            for (int k = 0; k < CHUNK; k++) {
                next = put(next, CMD_UPDATE); next = put(next, 0); next = put(next, 0);
                next = put(next, n); next = put(next, n);
                commit(next);
                drain();
            }
            count += CHUNK;
        } while ((t = now() - t0) < window);
        printf("{\"loop\": \"update\", \"n\": %u, \"commands\": %ld, \"seconds\": %.6f}\n", n, count, t);
    }

    uint32_t cols = width / CELL, words[BATCH * 6];
    for (int i = 0; i < BATCH; i++) {
        uint32_t *w = words + 6 * i;
        w[0] = CMD_RECT_FILL; w[1] = (i * 0x010203u) & 0xFFFFFF;
        w[2] = (i % cols) * CELL; w[3] = 128 + (i / cols) * CELL; w[4] = CELL; w[5] = CELL;
    }
    long batches = 0;
    double t0 = now(), t;
    do {  /* pre-encoded: one copy of the batch (two at the wrap), then one NEXT_CMD update. A word
           * loop, not memcpy: glibc's memcpy of this size is `rep movsb`, which TCG runs a byte at
           * a time (the loop was the faster of the two in the guest). */
        uint32_t room = (fmax - next) / 4, first = room < BATCH * 6 ? room : BATCH * 6;
        for (uint32_t k = 0; k < first; k++) fifo[next / 4 + k] = words[k];
        for (uint32_t k = first; k < BATCH * 6; k++) fifo[fmin / 4 + k - first] = words[k];
        next = first == BATCH * 6 ? next + first * 4 : fmin + (BATCH * 6 - first) * 4;
        if (next == fmax) next = fmin;
        commit(next);
        drain();
        batches++;
    } while ((t = now() - t0) < window);
    printf("{\"loop\": \"fill-pre\", \"batches\": %ld, \"commands\": %ld, \"seconds\": %.6f}\n",
           batches, batches * BATCH, t);

    batches = 0;
    t0 = now();
    do {  /* encoded each batch: every word written into the FIFO as it is made */
        for (uint32_t i = 0; i < BATCH; i++) {
            next = put(next, CMD_RECT_FILL);
            next = put(next, ((uint32_t)batches * 97u + i * 0x010203u) & 0xFFFFFF);
            next = put(next, (i % cols) * CELL); next = put(next, 128 + (i / cols) * CELL);
            next = put(next, CELL); next = put(next, CELL);
        }
        commit(next);
        drain();
        batches++;
    } while ((t = now() - t0) < window);
    printf("{\"loop\": \"fill-encode\", \"batches\": %ld, \"commands\": %ld, \"seconds\": %.6f}\n",
           batches, batches * BATCH, t);
    return 0;
}
