/* Model layer: the compiled core of the FIFO fast path (svga/model/fastpath.py).
 *
 * The C twin of FastPath.run for UPDATE, RECT_FILL and RECT_COPY when no effect beside the
 * pixels, the damage and the counts is due (no Screen Objects, no placeholder redraw queue).
 * It makes the same checks on the same words and stops where the Python code stops: at the
 * first command it does not take (another id, a rectangle outside the target, a command cut by
 * the end of the words), so that command is the strict path's. Built and loaded by
 * svga/native.py (docs/native.md 'Building'); what it must give is docs/native.md
 * 'Same results'.
 *
 * The target is `height` rows of `width` uint32 pixels, `stride` pixels apart, at `fb`; the
 * caller has checked it lies in VRAM. Every field is unsigned, so a rectangle is inside when
 * x + w <= width and y + h <= height, summed in 64 bits (no wrap-around).
 */

#include <stdint.h>
#include <string.h>

#define CMD_UPDATE 1u
#define CMD_RECT_FILL 2u
#define CMD_RECT_COPY 3u

#define OFFER_UPDATE 1
#define OFFER_FILL 2
#define OFFER_COPY 4

/* out[]: the index it stopped at, the number run, whether the words ended, then the numbers
 * of UPDATE, RECT_FILL and RECT_COPY run. */
enum { OUT_POS, OUT_DONE, OUT_AT_END, OUT_UPDATE, OUT_FILL, OUT_COPY, OUT_N };

static int outside(uint64_t x, uint64_t y, uint64_t w, uint64_t h, int64_t width, int64_t height)
{
    return (int64_t)(x + w) > width || (int64_t)(y + h) > height;
}

static void fill(uint32_t *fb, int64_t stride, uint32_t x, uint32_t y, uint32_t w, uint32_t h,
                 uint32_t colour)
{
    uint32_t *row = fb + (int64_t)y * stride + x;
    if (w >= 64) {
        /* One row pixel by pixel, the others copied from it (memcpy is the fastest store). */
        for (uint32_t i = 0; i < w; i++)
            row[i] = colour;
        const uint32_t *first = row;
        for (uint32_t j = 1; j < h; j++) {
            row += stride;
            memcpy(row, first, (size_t)w * 4);
        }
        return;
    }
    for (uint32_t j = 0; j < h; j++, row += stride)
        for (uint32_t i = 0; i < w; i++)
            row[i] = colour;
}

static void copy(uint32_t *fb, int64_t stride, uint32_t sx, uint32_t sy, uint32_t x, uint32_t y,
                 uint32_t w, uint32_t h)
{
    /* As through a temporary (what numpy does when the rectangles overlap). Every pixel of the
     * target has its own address (x + w <= width <= stride), so only intersecting rectangles
     * overlap in memory; then the rows go in the order that reads every source row before it
     * is overwritten, each with memmove (which copies one row as through a temporary). */
    size_t bytes = (size_t)w * 4;
    uint32_t *src = fb + (int64_t)sy * stride + sx, *dst = fb + (int64_t)y * stride + x;
    if ((int64_t)w == stride) {  /* whole rows (x = sx = 0): one block, one memmove */
        memmove(dst, src, bytes * h);
        return;
    }
    int meet = (uint64_t)x < (uint64_t)sx + w && (uint64_t)sx < (uint64_t)x + w
               && (uint64_t)y < (uint64_t)sy + h && (uint64_t)sy < (uint64_t)y + h;
    if (meet && y > sy) {
        for (int64_t j = (int64_t)h - 1; j >= 0; j--)
            memmove(dst + j * stride, src + j * stride, bytes);
    } else {
        for (int64_t j = 0; j < (int64_t)h; j++, dst += stride, src += stride)
            memmove(dst, src, bytes);
    }
}

/* Run commands from words[p:n_words], at most `room` of them. Each command's damage rectangle
 * (x, y, w, h) goes to damage[k % damage_cap] for the k-th command run (so the last
 * damage_cap of them are there). */
void svga_fast_run(const uint32_t *words, int64_t n_words, int64_t p, int64_t room,
                   uint32_t *fb, int64_t stride, int64_t width, int64_t height, int32_t offers,
                   uint32_t *damage, int64_t damage_cap, int64_t *out)
{
    const uint32_t update_id = (offers & OFFER_UPDATE) ? CMD_UPDATE : 0;
    const uint32_t fill_id = (offers & OFFER_FILL) ? CMD_RECT_FILL : 0;
    const uint32_t copy_id = (offers & OFFER_COPY) ? CMD_RECT_COPY : 0;
    int64_t done = 0, n_update = 0, n_fill = 0, n_copy = 0, k = 0;
    int at_end = 0;
    while (done < room) {
        if (p >= n_words) {
            at_end = 1;
            break;
        }
        const uint32_t cid = words[p];
        const uint32_t *a = words + p + 1;
        uint32_t x, y, w, h;
        int64_t q;
        /* A zero id is INVALID_CMD, never one of the three (an id not offered is 0 here). */
        if (cid == 0) {
            break;
        } else if (cid == update_id) {
            q = p + 5;
            if (q > n_words) {
                at_end = 1;
                break;
            }
            x = a[0], y = a[1], w = a[2], h = a[3];
            if (outside(x, y, w, h, width, height))
                break;
            n_update++;
        } else if (cid == fill_id) {
            q = p + 6;
            if (q > n_words) {
                at_end = 1;
                break;
            }
            x = a[1], y = a[2], w = a[3], h = a[4];
            if (outside(x, y, w, h, width, height))
                break;
            if (w && h)
                fill(fb, stride, x, y, w, h, a[0]);
            n_fill++;
        } else if (cid == copy_id) {
            q = p + 7;
            if (q > n_words) {
                at_end = 1;
                break;
            }
            const uint32_t sx = a[0], sy = a[1];
            x = a[2], y = a[3], w = a[4], h = a[5];
            if (outside(sx, sy, w, h, width, height) || outside(x, y, w, h, width, height))
                break;
            if (w && h)
                copy(fb, stride, sx, sy, x, y, w, h);
            n_copy++;
        } else {
            break;
        }
        uint32_t *d = damage + 4 * k;
        d[0] = x, d[1] = y, d[2] = w, d[3] = h;
        if (++k == damage_cap)
            k = 0;
        p = q;
        done++;
    }
    out[OUT_POS] = p;
    out[OUT_DONE] = done;
    out[OUT_AT_END] = at_end;
    out[OUT_UPDATE] = n_update;
    out[OUT_FILL] = n_fill;
    out[OUT_COPY] = n_copy;
}
