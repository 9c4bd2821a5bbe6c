/* Transport layer: the compiled core of the recorder's command splitter (svga/transport/recorder.py,
 * RecordingTransport._commands; docs/capture-format.md 'What a recording holds', 'Records').
 * Built and loaded by svga/native.py (docs/native.md 'Building'); it writes the bytes the Python
 * code writes (docs/native.md 'Same results'), which the tests check record by record.
 *
 * svga_rec_split(words, nbytes, out, cap, limit, table, table_len, rows, width, height, pitch,
 *                t_cmd, t_pixels, result) cuts the little-endian FIFO words at `words` into
 * commands, from the first, and writes each one's records into `out`, as long as it can do so
 * alone: a command whose id is below table_len and whose table entry says it has a fixed size
 * (n > 0: n words; n < 0: an UPDATE of -n words, its first four fields the rectangle x, y,
 * width, height, unsigned) and is whole in `words`. Before an UPDATE, the rectangle under it,
 * clipped to the mode (width x height; 0 x 0 when the mode's framebuffer is not in VRAM: no
 * pixels), is written as a pixels record of one zlib stored block read from `rows` (the mode's
 * first row in VRAM, `pitch` bytes a row); a rectangle of more than 65535 bytes, or one to read
 * while rows is NULL, stops the run (the Python code records it). It stops before a command it
 * cannot record, before one whose records would not fit in `cap` bytes, and once `limit` bytes
 * or more are written (the chunk is full). Returns the bytes of `words` consumed;
 * result[0] = the bytes written to `out`, result[1] = the commands recorded.
 *
 * Records (docs/capture-format.md 'Records'): a command is t_cmd, u32 word count, the words; a
 * pixels record is t_pixels, u32 x, y, width, height, u8 key (0), u32 zlib length (n + 11),
 * then the zlib stream: 78 01, 01, u16 n, u16 n ^ 0xFFFF, the n bytes, their Adler-32 big-endian
 * (RFC 1950, RFC 1951 3.2.4). Everything little-endian except the checksum.
 */

#include <stdint.h>
#include <string.h>

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint8_t *wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
    return p + 4;
}

static uint8_t *wr16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    return p + 2;
}

enum { ADLER_MOD = 65521, ADLER_RUN = 5552 /* bytes before the sums must be reduced (zlib's NMAX) */ };
enum { STORED_MAX = 65535, PIXELS_FIELDS = 29, ZLIB_EXTRA = 11, CMD_HEAD = 5 };

static uint32_t adler32(const uint8_t *p, uint64_t n, uint32_t a, uint32_t b)
{
    while (n) {
        uint64_t run = n < ADLER_RUN ? n : ADLER_RUN;
        n -= run;
        while (run--) {
            a += *p++;
            b += a;
        }
        a %= ADLER_MOD;
        b %= ADLER_MOD;
    }
    return b << 16 | a;
}

long long svga_rec_split(const uint8_t *words, long long nbytes, uint8_t *out, long long cap,
                         long long limit, const int32_t *table, long long table_len, const uint8_t *rows,
                         long long width, long long height, long long pitch, long long t_cmd,
                         long long t_pixels, long long *result)
{
    long long pos = 0, o = 0, count = 0;
    while (pos + 4 <= nbytes && o < limit) {
        uint32_t id = rd32(words + pos);
        if ((long long)id >= table_len || table[id] == 0)
            break;
        int32_t entry = table[id];
        long long len = 4LL * (entry > 0 ? entry : -entry);
        if (pos + len > nbytes)
            break;
        long long need = CMD_HEAD + len;
        uint64_t x = 0, y = 0, x1 = 0, y1 = 0, n = 0;
        if (entry < 0) {
            x = rd32(words + pos + 4);
            y = rd32(words + pos + 8);
            x1 = x + rd32(words + pos + 12);
            y1 = y + rd32(words + pos + 16);
            if (x1 > (uint64_t)width)
                x1 = (uint64_t)width;
            if (y1 > (uint64_t)height)
                y1 = (uint64_t)height;
            if (x < x1 && y < y1) {
                n = (x1 - x) * (y1 - y) * 4;
                if (n > STORED_MAX || rows == NULL)
                    break;
                need += PIXELS_FIELDS + (long long)n + 4;
            }
        }
        if (o + need > cap)
            break;
        uint8_t *p = out + o;
        if (n) {
            uint64_t row = (x1 - x) * 4, h = y1 - y;
            *p++ = (uint8_t)t_pixels;
            p = wr32(p, (uint32_t)x);
            p = wr32(p, (uint32_t)y);
            p = wr32(p, (uint32_t)(x1 - x));
            p = wr32(p, (uint32_t)h);
            *p++ = 0; /* not a keyframe */
            p = wr32(p, (uint32_t)(n + ZLIB_EXTRA));
            *p++ = 0x78;
            *p++ = 0x01;
            *p++ = 1; /* BFINAL 1, BTYPE 00: the one stored block */
            p = wr16(p, (uint32_t)n);
            p = wr16(p, (uint32_t)n ^ 0xFFFF);
            uint32_t a = 1, b = 0;
            for (uint64_t r = 0; r < h; r++) {
                const uint8_t *src = rows + (y + r) * (uint64_t)pitch + x * 4;
                memcpy(p, src, row);
                uint32_t sum = adler32(p, row, a, b);
                a = sum & 0xFFFF;
                b = sum >> 16;
                p += row;
            }
            p[0] = (uint8_t)(b >> 8);
            p[1] = (uint8_t)b;
            p[2] = (uint8_t)(a >> 8);
            p[3] = (uint8_t)a;
            p += 4;
        }
        *p++ = (uint8_t)t_cmd;
        p = wr32(p, (uint32_t)(len / 4));
        memcpy(p, words + pos, (size_t)len);
        o += need;
        pos += len;
        count++;
    }
    result[0] = o;
    result[1] = count;
    return pos;
}
