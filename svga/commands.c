/* Protocol layer: the compiled core of svga.commands.encode_many (svga/commands.py).
 *
 * encode_many builds an (n, k) uint32 array of n fixed-size commands: column 0 the id, then one
 * column per field, each field one integer (the same in every row) or a 1-D integer array of n
 * values. In a TCG guest every Python bytecode and every numpy call costs microseconds to tens
 * of microseconds (issue 19), and the Python code needs a loop over the fields and a handful of
 * numpy calls per field (the cast, the range test); this core does the whole call in one pass,
 * with the same checks. Built and loaded by svga/native.py (docs/native.md 'Building'); it must
 * give what the Python code gives (docs/native.md 'Same results').
 *
 * It is loaded with ctypes.PyDLL (the GIL held) and uses only functions and structs of CPython's
 * stable ABI, declared here since no Python header is needed to build it: dictionary and tuple
 * look-ups, PyLong_AsLongLong, the buffer protocol (Py_buffer, PEP 3118: a numpy array hands out
 * its address, shape, strides and element format through it) and one call of numpy.empty. Only
 * Python ints and numpy arrays (the exact types) are taken; anything else is the Python code's. The
 * process's python provides the symbols, as it does for every extension module.
 *
 * The core never raises: it answers the new array, else None with any Python error cleared,
 * and the caller then runs the Python code, which gives the same array or raises the one-line
 * error. It also holds the word copy Fifo.write_words uses to put such an array into the FIFO.
 */

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct _object PyObject;
typedef intptr_t Py_ssize_t;
typedef struct {
    void *buf;
    PyObject *obj;
    Py_ssize_t len;
    Py_ssize_t itemsize;
    int readonly;
    int ndim;
    char *format;
    Py_ssize_t *shape;
    Py_ssize_t *strides;
    Py_ssize_t *suboffsets;
    void *internal;
} Py_buffer;

#define PyBUF_WRITABLE 0x0001
#define PyBUF_FORMAT 0x0004
#define PyBUF_ND 0x0008
#define PyBUF_STRIDES (0x0010 | PyBUF_ND)
#define PyBUF_C_CONTIGUOUS (0x0020 | PyBUF_STRIDES)

extern PyObject *PyDict_GetItem(PyObject *dict, PyObject *key);
extern Py_ssize_t PyDict_Size(PyObject *dict);
extern Py_ssize_t PyTuple_Size(PyObject *tuple);
extern PyObject *PyTuple_GetItem(PyObject *tuple, Py_ssize_t i);
extern long long PyLong_AsLongLong(PyObject *obj);
extern PyObject *PyObject_Type(PyObject *obj);
extern PyObject *PyErr_Occurred(void);
extern void PyErr_Clear(void);
extern int PyObject_GetBuffer(PyObject *obj, Py_buffer *view, int flags);
extern void PyBuffer_Release(Py_buffer *view);
extern PyObject *PyObject_CallFunctionObjArgs(PyObject *callable, ...);
extern PyObject *Py_BuildValue(const char *format, ...);
extern int PyList_SetItem(PyObject *list, Py_ssize_t i, PyObject *item);
extern void Py_IncRef(PyObject *obj);
extern void Py_DecRef(PyObject *obj);
extern char *PyBytes_AsString(PyObject *obj);
extern PyObject *PyLong_FromLongLong(long long v);
extern int PyArg_ParseTuple(PyObject *args, const char *format, ...);

typedef PyObject *(*PyCFunction)(PyObject *self, PyObject *args);
typedef struct {
    const char *ml_name;
    PyCFunction ml_meth;
    int ml_flags;
    const char *ml_doc;
} PyMethodDef;
#define METH_VARARGS 0x0001
extern PyObject *PyCFunction_NewEx(PyMethodDef *def, PyObject *self, PyObject *module);

enum { OK = 0, NOT_SET_UP = 1, BAD_FIELDS = 2, BAD_VALUE = 3, BAD_ARRAY = 4, OUT_OF_RANGE = 5, NO_ARRAY = 6 };
#define MAX_FIELDS 8

static PyObject *int_type, *array_type, *none, *empty, *dtype;

/* Once, from the Python side: the exact types int and numpy.ndarray, None, numpy.empty and
 * numpy.dtype("<u4"). */
int64_t svga_setup(PyObject *int_t, PyObject *array_t, PyObject *none_o, PyObject *empty_f, PyObject *u4)
{
    Py_IncRef(int_t);
    Py_IncRef(array_t);
    array_type = array_t;
    Py_IncRef(none_o);
    Py_IncRef(empty_f);
    Py_IncRef(u4);
    int_type = int_t;
    none = none_o;
    empty = empty_f;
    dtype = u4;
    return 0;
}

static int is_a(PyObject *o, PyObject *type)
{
    PyObject *t = PyObject_Type(o);
    int yes = t == type;
    Py_DecRef(t);
    return yes;
}

/* An array's element format (PEP 3118 struct syntax, one item): 1 signed, 0 unsigned, -1 a
 * format this core does not read (another byte order, a non-integer). */
static int int_format(const char *f, Py_ssize_t itemsize)
{
    if (f == NULL)
        return itemsize == 1 ? 0 : -1; /* no format: unsigned bytes */
    if (*f == '@' || *f == '=' || *f == '<')
        f++;
    if (f[0] == '\0' || f[1] != '\0')
        return -1;
    switch (*f) {
    case 'b': case 'h': case 'i': case 'l': case 'q':
        return itemsize == 1 || itemsize == 2 || itemsize == 4 || itemsize == 8 ? 1 : -1;
    case 'B': case 'H': case 'I': case 'L': case 'Q': case '?':
        return itemsize == 1 || itemsize == 2 || itemsize == 4 || itemsize == 8 ? 0 : -1;
    default:
        return -1;
    }
}

/* One column from a 1-D array: every value range-checked as the Python code does (unsigned
 * fields 0 .. 2^32-1, signed ones -2^31 .. 2^31-1, stored as two's complement). */
static int column(uint32_t *dst, int64_t n, int32_t k, const Py_buffer *v, int src_signed, int is_signed)
{
    const char *src = (const char *)v->buf;
    const Py_ssize_t stride = v->strides ? v->strides[0] : v->itemsize;
    const int64_t lo = is_signed ? -((int64_t)1 << 31) : 0;
    const int64_t hi = is_signed ? ((int64_t)1 << 31) - 1 : (int64_t)0xFFFFFFFF;
#define SIGNED(ctype)                                                                         \
    for (int64_t i = 0; i < n; i++) {                                                         \
        const int64_t x = *(const ctype *)(src + i * stride);                                 \
        if (x < lo || x > hi)                                                                 \
            return OUT_OF_RANGE;                                                              \
        dst[i * k] = (uint32_t)x;                                                             \
    }                                                                                         \
    return OK;
#define UNSIGNED(ctype)                                                                       \
    for (int64_t i = 0; i < n; i++) {                                                         \
        const uint64_t x = *(const ctype *)(src + i * stride);                                \
        if (x > (uint64_t)hi)                                                                 \
            return OUT_OF_RANGE;                                                              \
        dst[i * k] = (uint32_t)x;                                                             \
    }                                                                                         \
    return OK;
    if (src_signed) {
        switch (v->itemsize) {
        case 1: SIGNED(int8_t)
        case 2: SIGNED(int16_t)
        case 4: SIGNED(int32_t)
        default: SIGNED(int64_t)
        }
    }
    switch (v->itemsize) {
    case 1: UNSIGNED(uint8_t)
    case 2: UNSIGNED(uint16_t)
    case 4: UNSIGNED(uint32_t)
    default: UNSIGNED(uint64_t)
    }
#undef SIGNED
#undef UNSIGNED
}

typedef struct {
    int32_t k;
    uint32_t id, signed_mask;
} plan_t;

/* encode_many(cmd, count, **fields) for one command: `fields` the keyword dict, `names` the
 * tuple of the command's field names in table order, `count` None or an int, `plan` its word
 * count, id and which fields are signed. On success *result is the new (n, k) uint32 array. */
static int encode(PyObject **result, PyObject *fields, PyObject *names, PyObject *count, const plan_t *plan)
{
    if (empty == NULL)
        return NOT_SET_UP;
    const Py_ssize_t nf = PyTuple_Size(names);
    if (nf < 0 || nf > MAX_FIELDS || nf != plan->k - 1 || PyDict_Size(fields) != nf) {
        PyErr_Clear();
        return BAD_FIELDS;
    }
    Py_buffer views[MAX_FIELDS];
    int held[MAX_FIELDS] = {0}; /* views[j] is to be released */
    int64_t vals[MAX_FIELDS];
    int kinds[MAX_FIELDS]; /* -1 one value, else the array's signedness */
    int rc = OK;
    int64_t n = -1;
    if (count != none && (!is_a(count, int_type) || (n = PyLong_AsLongLong(count)) < 0)) {
        PyErr_Clear();
        return BAD_VALUE;
    }
    for (Py_ssize_t j = 0; j < nf && rc == OK; j++) {
        PyObject *v = PyDict_GetItem(fields, PyTuple_GetItem(names, j));
        const int is_signed = (plan->signed_mask >> j) & 1;
        kinds[j] = -1;
        if (v == NULL) {
            rc = BAD_FIELDS; /* missing (with the sizes equal, some other name is unknown) */
        } else if (is_a(v, int_type)) {
            const long long x = PyLong_AsLongLong(v);
            if ((x == -1 && PyErr_Occurred()) ||
                (is_signed ? x < -((long long)1 << 31) || x > ((long long)1 << 31) - 1
                           : x < 0 || x > 0xFFFFFFFFLL))
                rc = OUT_OF_RANGE;
            vals[j] = x;
        } else if (is_a(v, array_type) && PyObject_GetBuffer(v, &views[j], PyBUF_STRIDES | PyBUF_FORMAT) == 0) {
            held[j] = 1;
            kinds[j] = int_format(views[j].format, views[j].itemsize);
            if (kinds[j] < 0 || views[j].ndim != 1 || views[j].suboffsets != NULL)
                rc = BAD_ARRAY;
            else if (n < 0)
                n = views[j].shape[0];
            else if (views[j].shape[0] != n)
                rc = BAD_ARRAY;
        } else {
            rc = BAD_VALUE;
        }
    }
    PyObject *out = NULL;
    if (rc == OK) {
        if (n < 0)
            n = 1;
        PyObject *shape = Py_BuildValue("(nn)", (Py_ssize_t)n, (Py_ssize_t)plan->k);
        out = shape ? PyObject_CallFunctionObjArgs(empty, shape, dtype, NULL) : NULL;
        if (shape)
            Py_DecRef(shape);
        Py_buffer ov;
        if (out == NULL || PyObject_GetBuffer(out, &ov, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) != 0) {
            rc = NO_ARRAY;
        } else {
            const int32_t k = plan->k;
            uint32_t *base = (uint32_t *)ov.buf;
            for (int64_t i = 0; i < n; i++)
                base[i * k] = plan->id;
            for (Py_ssize_t j = 0; j < nf && rc == OK; j++) {
                uint32_t *dst = base + j + 1;
                if (kinds[j] == -1) {
                    const uint32_t x = (uint32_t)vals[j];
                    for (int64_t i = 0; i < n; i++)
                        dst[i * k] = x;
                } else {
                    rc = column(dst, n, k, &views[j], kinds[j], (plan->signed_mask >> j) & 1);
                }
            }
            PyBuffer_Release(&ov);
        }
    }
    for (int j = 0; j < MAX_FIELDS; j++)
        if (held[j])
            PyBuffer_Release(&views[j]);
    if (rc != OK) {
        if (out != NULL)
            Py_DecRef(out);
        PyErr_Clear();
        return rc;
    }
    *result = out;
    return OK;
}

/* The two entry points are handed to Python as built-in functions (PyCFunction_NewEx), so that
 * a call costs what any built-in call costs, not a ctypes call with its argument conversions
 * (several microseconds in a TCG guest, issue 19). Neither raises: a call the core does not
 * take answers None (many) or -1 (copy) and the Python code runs instead. */
static PyObject *plans; /* svga.commands._MANY_PLANS: cmd -> (field names, plan bytes) or None */

/* many(cmd, count, fields): encode_many of a command with a plan, else None. */
static PyObject *many(PyObject *self, PyObject *args)
{
    PyObject *out = NULL;
    if (plans != NULL && PyTuple_Size(args) == 3) {
        /* PyDict_GetItem: a borrowed reference; NULL, with any error (unhashable) cleared,
         * for a command without a plan yet */
        PyObject *plan = PyDict_GetItem(plans, PyTuple_GetItem(args, 0));
        if (plan != NULL && plan != none && PyTuple_Size(plan) == 2) {
            const char *p = PyBytes_AsString(PyTuple_GetItem(plan, 1));
            if (p == NULL || encode(&out, PyTuple_GetItem(args, 2), PyTuple_GetItem(plan, 0),
                                    PyTuple_GetItem(args, 1), (const plan_t *)p) != OK)
                out = NULL;
        }
    }
    if (out == NULL) {
        PyErr_Clear();
        Py_IncRef(none);
        return none;
    }
    return out;
}

/* copy(dst, dst_offset, src, src_offset, nbytes): nbytes of src's bytes from src_offset into the
 * writable buffer dst at dst_offset, and 0; -1 (nothing copied) where the
 * buffers are not C-contiguous, a range is out of bounds, or an offset, the size or an address
 * is not a multiple of 4. A loop of 64-bit stores (four a turn; one 32-bit word first when the
 * destination is not 8-aligned, one last when the size is odd in words), not memcpy: glibc's
 * memcpy of a few kilobytes is `rep movsb`, which TCG runs a byte at a time
 * (docs/lab.md 'The guest benchmark': the word loop measured faster in the guest), and 64-bit
 * stores halve both TCG's and the host's work of 32-bit ones (docs/native.md 'The FIFO copy');
 * `volatile` keeps the compiler from making the loop a memcpy call again. */
static PyObject *copy(PyObject *self, PyObject *args)
{
    PyObject *dst, *src;
    Py_ssize_t doff, soff, n;
    long long rc = -1;
    if (PyArg_ParseTuple(args, "OnOnn", &dst, &doff, &src, &soff, &n)) {
        Py_buffer d, s;
        if (PyObject_GetBuffer(dst, &d, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) == 0) {
            if (PyObject_GetBuffer(src, &s, PyBUF_C_CONTIGUOUS) == 0) {
                if (doff >= 0 && soff >= 0 && n >= 0 && doff <= d.len - n && soff <= s.len - n &&
                    ((doff | soff | n | (intptr_t)d.buf | (intptr_t)s.buf) & 3) == 0) {
                    char *dp = (char *)d.buf + doff;
                    const char *sp = (const char *)s.buf + soff;
                    Py_ssize_t i = 0;
                    if (n >= 4 && ((intptr_t)dp & 7)) {
                        /* one word first, so the 64-bit stores below are aligned */
                        uint32_t v;
                        memcpy(&v, sp, 4);
                        *(volatile uint32_t *)dp = v;
                        i = 4;
                    }
                    for (; i + 32 <= n; i += 32) {
                        uint64_t a, b, c, e;
                        memcpy(&a, sp + i, 8);
                        memcpy(&b, sp + i + 8, 8);
                        memcpy(&c, sp + i + 16, 8);
                        memcpy(&e, sp + i + 24, 8);
                        volatile uint64_t *q = (volatile uint64_t *)(dp + i);
                        q[0] = a;
                        q[1] = b;
                        q[2] = c;
                        q[3] = e;
                    }
                    for (; i + 8 <= n; i += 8) {
                        uint64_t a;
                        memcpy(&a, sp + i, 8);
                        *(volatile uint64_t *)(dp + i) = a;
                    }
                    if (i < n) {
                        uint32_t v;
                        memcpy(&v, sp + i, 4);
                        *(volatile uint32_t *)(dp + i) = v;
                    }
                    rc = 0;
                }
                PyBuffer_Release(&s);
            }
            PyBuffer_Release(&d);
        }
    }
    PyErr_Clear();
    return PyLong_FromLongLong(rc);
}

static PyMethodDef many_def = {"encode_many_core", many, METH_VARARGS, NULL};
static PyMethodDef copy_def = {"copy_words", copy, METH_VARARGS, NULL};

/* Once, after svga_setup: the plans dictionary; returns the tuple (many, copy), or None. */
PyObject *svga_functions(PyObject *plan_dict)
{
    if (empty == NULL)
        return NULL;
    Py_IncRef(plan_dict);
    plans = plan_dict;
    PyObject *m = PyCFunction_NewEx(&many_def, NULL, NULL);
    PyObject *c = PyCFunction_NewEx(&copy_def, NULL, NULL);
    PyObject *both = (m && c) ? Py_BuildValue("(OO)", m, c) : NULL;
    if (m)
        Py_DecRef(m);
    if (c)
        Py_DecRef(c);
    return both;
}
