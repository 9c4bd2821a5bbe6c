/*
 * The physical limit of the driver's batch path on the host (bench/run.py, group "driver"):
 * encode RECT_FILL commands (6 words: id 2, colour, x, y, width, height) into a FIFO-sized
 * buffer (QEMU's 64 KiB FIFO less its 4 registers: docs/lab.md 'The devices the guest sees'),
 * over and over for WINDOW_S seconds. Compiled with the machine's gcc at bench time.
 *
 *   encode_batch WINDOW_S RING_BYTES [DUMP_FILE]
 *
 * Fill k of pass p: colour (p * 131 + k * 0x010203) & 0xFFFFFF, x = k % 80 * 8,
 * y = k / 80 % 60 * 8, 8x8. Prints one JSON line (commands, seconds); with DUMP_FILE it also
 * writes the buffer of pass 0 there, for bench/run.py to check against numpy.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void encode(uint32_t *buf, uint32_t n, uint32_t pass)
{
    for (uint32_t k = 0; k < n; k++) {
        uint32_t *w = buf + 6 * k;
        w[0] = 2;
        w[1] = (pass * 131u + k * 0x010203u) & 0xFFFFFF;
        w[2] = k % 80 * 8;
        w[3] = k / 80 % 60 * 8;
        w[4] = 8;
        w[5] = 8;
    }
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: encode_batch WINDOW_S RING_BYTES [DUMP_FILE]\n");
        return 2;
    }
    double window = strtod(argv[1], NULL);
    uint32_t n = strtoul(argv[2], NULL, 0) / 24;
    uint32_t *buf = malloc((size_t)n * 24);
    if (!buf || n == 0) { fprintf(stderr, "encode_batch: bad ring size\n"); return 1; }
    if (argc == 4) {
        encode(buf, n, 0);
        FILE *f = fopen(argv[3], "wb");
        if (!f || fwrite(buf, 24, n, f) != n || fclose(f)) { perror(argv[3]); return 1; }
    }
    uint64_t passes = 0, sink = 0;
    double t0 = now(), t;
    do {
        encode(buf, n, (uint32_t)passes);
        sink += buf[(passes % n) * 6 + 1];  /* keeps every pass's stores alive */
        __asm__ volatile("" : : "r"(buf) : "memory");
        passes++;
    } while ((t = now() - t0) < window);
    printf("{\"commands\": %llu, \"seconds\": %.6f, \"sink\": %llu}\n",
           (unsigned long long)(passes * n), t, (unsigned long long)sink);
    return 0;
}
