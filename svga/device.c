/* Driver layer: the compiled core of Device.fill's CPU path (svga/device.py) on a FIFO with
 * FIFO_CAP_RESERVE: in one call, the rectangle's fill into the framebuffer memory and the
 * UPDATE written in place into the FIFO memory, as Fifo.send_update writes it (svga/fifo.py;
 * docs/qemu-7.2.md 'Reserve and commit'): the room and wrap test against NEXT_CMD and STOP as
 * last seen, RESERVED = 20, the five words, NEXT_CMD, RESERVED back to 0, in that order.
 * Built and loaded by svga/native.py (docs/native.md 'Building'); it must give what the Python
 * code gives (docs/native.md 'Same results').
 *
 * The core is a builtin function object (METH_FASTCALL, CPython's stable ABI since 3.10, the
 * declarations below; no Python header is needed): a ctypes call costs about as much as the
 * whole fill, a builtin's call a tenth of it. svga_fill_core(ctx, int) makes one per binding:
 * ctx is a bytes object of eight int64 (the framebuffer's address, its stride in pixels, the
 * mode's width and height, the FIFO memory's address and size, MIN and MAX), kept by the
 * function object as its self. It is called as core(next, stop, color, x, y, width, height)
 * and returns the new NEXT_CMD (>= 0), or a negative code with nothing written and no Python
 * error set: then the caller's Python code runs, which does the same or raises the same error.
 * Only exact Python ints are taken; every check is made before the first write.
 */

#include <stdint.h>
#include <string.h>

typedef struct _object PyObject;
typedef intptr_t Py_ssize_t;
typedef PyObject *(*PyCFunction)(PyObject *, PyObject *);
typedef struct {
    const char *ml_name;
    PyCFunction ml_meth;
    int ml_flags;
    const char *ml_doc;
} PyMethodDef;
typedef struct {
    Py_ssize_t ob_refcnt;
    void *ob_type;
} ObjectHead; /* the start of every object (PyObject's layout, part of the stable ABI) */

#define METH_FASTCALL 0x0080

extern PyObject *PyCFunction_NewEx(PyMethodDef *def, PyObject *self, PyObject *module);
extern long long PyLong_AsLongLong(PyObject *obj);
extern PyObject *PyLong_FromLongLong(long long v);
extern PyObject *PyErr_Occurred(void);
extern void PyErr_Clear(void);
extern char *PyBytes_AsString(PyObject *obj);
extern Py_ssize_t PyBytes_Size(PyObject *obj);
extern void Py_IncRef(PyObject *obj);

enum { NOT_SET_UP = -1, BAD_ARGS = -2, OUTSIDE = -3, NO_ROOM = -4, BAD_FIFO = -5 };
enum { NEXT_CMD = 2, RESERVED = 14, UPDATE_ID = 1, UPDATE_BYTES = 20 };

typedef struct {
    int64_t fb, stride, width, height, fifo, fifo_size, min, max;
} Ctx;

static void *int_type;

static int take(PyObject *o, long long *out)
{
    if (((ObjectHead *)o)->ob_type != int_type)
        return 0;
    *out = PyLong_AsLongLong(o);
    if (*out == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return 1;
}

static PyObject *fill_update(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Ctx c;
    long long v[7];
    if (nargs != 7 || PyBytes_Size(self) != (Py_ssize_t)sizeof c)
        return PyLong_FromLongLong(BAD_ARGS);
    memcpy(&c, PyBytes_AsString(self), sizeof c);
    for (int i = 0; i < 7; i++)
        if (!take(args[i], &v[i]))
            return PyLong_FromLongLong(BAD_ARGS);
    long long nxt = v[0], stop = v[1], x = v[3], y = v[4], w = v[5], h = v[6];
    uint32_t color = (uint32_t)(uint64_t)v[2]; /* color & 0xFFFFFFFF, two's complement */
    /* The rectangle inside the mode (Device.fill has checked it; anything else is its code's). */
    if (x < 0 || y < 0 || w <= 0 || h <= 0 || x > c.width - w || y > c.height - h || c.width > c.stride)
        return PyLong_FromLongLong(OUTSIDE);
    /* The FIFO pointers where Fifo.send_update can have them. */
    if (nxt < c.min || nxt >= c.max || stop < c.min || stop >= c.max || (nxt & 3)
            || c.max > c.fifo_size || c.min < 4 * (RESERVED + 1))
        return PyLong_FromLongLong(BAD_FIFO);
    /* Fifo.send_update's room test: contiguous room up to STOP or MAX, one dword kept free. */
    long long end = nxt + UPDATE_BYTES;
    int room = nxt < stop ? end < stop : (end < c.max || (end == c.max && stop > c.min));
    if (!room)
        return PyLong_FromLongLong(NO_ROOM);

    uint32_t *row = (uint32_t *)(intptr_t)c.fb + y * c.stride + x;
    for (long long i = 0; i < w; i++)
        row[i] = color;
    for (long long r = 1; r < h; r++)
        memcpy(row + r * c.stride, row, (size_t)w * 4);
    /* The pixels are in memory before the device can see the UPDATE. */
    __atomic_signal_fence(__ATOMIC_SEQ_CST);

    volatile uint32_t *regs = (volatile uint32_t *)(intptr_t)c.fifo;
    volatile uint32_t *cmd = (volatile uint32_t *)((char *)(intptr_t)c.fifo + nxt);
    regs[RESERVED] = UPDATE_BYTES;
    cmd[0] = UPDATE_ID;
    cmd[1] = (uint32_t)x;
    cmd[2] = (uint32_t)y;
    cmd[3] = (uint32_t)w;
    cmd[4] = (uint32_t)h;
    if (end == c.max)
        end = c.min;
    regs[NEXT_CMD] = (uint32_t)end;
    regs[RESERVED] = 0;
    return PyLong_FromLongLong(end);
}

static PyMethodDef def = {"fill_update", (PyCFunction)(void (*)(void))fill_update, METH_FASTCALL,
                          "core(next, stop, color, x, y, width, height) -> new NEXT_CMD, or < 0: not taken"};

/* One core for one binding: ctx (bytes, see above) becomes the function's self; int_t is int. */
PyObject *svga_fill_core(PyObject *ctx, PyObject *int_t)
{
    if (PyBytes_Size(ctx) != (Py_ssize_t)sizeof(Ctx)) {
        PyErr_Clear();
        return 0;
    }
    if (int_type == 0) {
        Py_IncRef(int_t); /* kept for good: the exact type compared against */
        int_type = int_t;
    }
    return PyCFunction_NewEx(&def, ctx, 0);
}
