/*
 * golden_writer.h -- write a safetensors file of named tensors from C (C99, one header, no library),
 * for `minibloom golden compare GOLDEN.safetensors PORT.safetensors` (docs/golden-format.md).
 *
 *     #include "golden_writer.h"
 *     gw_writer *w = gw_open();
 *     int64_t shape[3] = {B, T, 4 * H};
 *     gw_add(w, "h.0.mlp.gelu", GW_F32, gelu, 3, shape);          // the bytes are copied: free gelu after
 *     gw_add(w, "h.0.mlp.dense_4h_to_h", GW_BF16, bits, 3, shape2); // uint16_t bfloat16 bit patterns
 *     if (gw_save(w, "port.safetensors") != 0) fprintf(stderr, "%s\n", gw_error(w));
 *     gw_free(w);
 *
 * Dtypes: GW_F32 (float), GW_F16 / GW_BF16 (uint16_t bit patterns; gw_f16_from_f32 / gw_bf16_from_f32
 * round a float to them, nearest even, as torch's .to() does), GW_F64, GW_I64 / GW_I32 (input_ids,
 * attention_mask). The file: an 8-byte little-endian header length, a JSON header
 * {"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...} padded with spaces to a multiple of
 * 8 bytes, then the tensors' bytes in the order they were added. gw_save writes PATH.tmp and renames
 * it over PATH, so a crash never leaves half a file. A name given twice, a negative dimension, or a
 * big-endian machine (safetensors is little-endian) is refused with a message in gw_error.
 * Find this file with: python -c "import minibloom.golden as g; print(g.C_WRITER_HEADER)"
 */
#ifndef MINIBLOOM_GOLDEN_WRITER_H
#define MINIBLOOM_GOLDEN_WRITER_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { GW_F32, GW_F16, GW_BF16, GW_F64, GW_I64, GW_I32 } gw_dtype;

typedef struct {
    char *name;
    gw_dtype dtype;
    int ndim;
    int64_t shape[8];
    void *data;
    size_t nbytes;
} gw_tensor;

typedef struct {
    gw_tensor *tensors;
    int count, cap;
    char error[256];
} gw_writer;

static inline const char *gw_dtype_name(gw_dtype d) {
    static const char *names[] = {"F32", "F16", "BF16", "F64", "I64", "I32"};
    return names[d];
}

static inline size_t gw_itemsize(gw_dtype d) {
    static const size_t sizes[] = {4, 2, 2, 8, 8, 4};
    return sizes[d];
}

static inline gw_writer *gw_open(void) { return (gw_writer *)calloc(1, sizeof(gw_writer)); }

static inline const char *gw_error(const gw_writer *w) { return w ? w->error : "out of memory"; }

static inline void gw_free(gw_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->count; i++) { free(w->tensors[i].name); free(w->tensors[i].data); }
    free(w->tensors);
    free(w);
}

static inline int gw_fail(gw_writer *w, const char *what, const char *name) {
    snprintf(w->error, sizeof w->error, "golden_writer: %s%s%.160s", what, name ? ": " : "", name ? name : "");
    return -1;
}

/* Copy one tensor (row-major, `ndim` <= 8 dimensions) into the writer under `name`. 0 or -1. */
static inline int gw_add(gw_writer *w, const char *name, gw_dtype dtype, const void *data, int ndim, const int64_t *shape) {
    if (!w) return -1;
    if ((unsigned)dtype > GW_I32) return gw_fail(w, "unknown dtype", name);
    if (ndim < 0 || ndim > 8) return gw_fail(w, "a tensor has 0 to 8 dimensions", name);
    if (!name || !*name) return gw_fail(w, "a tensor needs a name", NULL);
    for (int i = 0; i < w->count; i++)
        if (strcmp(w->tensors[i].name, name) == 0) return gw_fail(w, "name given twice", name);
    size_t n = gw_itemsize(dtype);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return gw_fail(w, "negative dimension", name);
        if (shape[i] && n > SIZE_MAX / (size_t)shape[i]) return gw_fail(w, "tensor too large", name);
        n *= (size_t)shape[i];
    }
    if (w->count == w->cap) {
        int cap = w->cap ? 2 * w->cap : 64;
        gw_tensor *grown = (gw_tensor *)realloc(w->tensors, (size_t)cap * sizeof(gw_tensor));
        if (!grown) return gw_fail(w, "out of memory", name);
        w->tensors = grown, w->cap = cap;
    }
    gw_tensor *t = &w->tensors[w->count];
    t->name = (char *)malloc(strlen(name) + 1);
    t->data = malloc(n ? n : 1);
    if (!t->name || !t->data) { free(t->name); free(t->data); return gw_fail(w, "out of memory", name); }
    strcpy(t->name, name);
    if (n) memcpy(t->data, data, n);
    t->dtype = dtype, t->ndim = ndim, t->nbytes = n;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    w->count++;
    return 0;
}

/* Append `s` to the growing header, JSON-escaped when `quote`; returns the new length or 0 when out of memory. */
static inline size_t gw_put(char **buf, size_t *cap, size_t len, const char *s, int quote) {
    for (; *s; s++) {
        char esc[8] = {0};
        unsigned char c = (unsigned char)*s;
        if (quote && (c == '"' || c == '\\')) esc[0] = '\\', esc[1] = (char)c;
        else if (quote && c < 0x20) snprintf(esc, sizeof esc, "\\u%04x", c);
        else esc[0] = (char)c;
        size_t k = strlen(esc);
        if (len + k + 16 > *cap) {
            char *grown = (char *)realloc(*buf, *cap * 2 + k + 16);
            if (!grown) return 0;
            *buf = grown, *cap = *cap * 2 + k + 16;
        }
        memcpy(*buf + len, esc, k), len += k;
    }
    return len;
}

/* Write every tensor added so far to `path` (via path.tmp, renamed). 0 or -1 (see gw_error). */
static inline int gw_save(gw_writer *w, const char *path) {
    if (!w) return -1;
    const uint16_t probe = 1;
    if (*(const unsigned char *)&probe != 1) return gw_fail(w, "safetensors is little-endian; this machine is not", NULL);
    size_t cap = 256, len = 0, offset = 0;
    char *h = (char *)malloc(cap), num[64];
    if (!h) return gw_fail(w, "out of memory", NULL);
    len = gw_put(&h, &cap, len, "{", 0);
    for (int i = 0; i < w->count && len; i++) {
        gw_tensor *t = &w->tensors[i];
        len = gw_put(&h, &cap, len, i ? ",\"" : "\"", 0);
        if (len) len = gw_put(&h, &cap, len, t->name, 1);
        if (len) len = gw_put(&h, &cap, len, "\":{\"dtype\":\"", 0);
        if (len) len = gw_put(&h, &cap, len, gw_dtype_name(t->dtype), 0);
        if (len) len = gw_put(&h, &cap, len, "\",\"shape\":[", 0);
        for (int d = 0; d < t->ndim && len; d++) {
            snprintf(num, sizeof num, d ? ",%lld" : "%lld", (long long)t->shape[d]);
            len = gw_put(&h, &cap, len, num, 0);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)offset,
                 (unsigned long long)(offset + t->nbytes));
        if (len) len = gw_put(&h, &cap, len, num, 0);
        offset += t->nbytes;
    }
    if (len) len = gw_put(&h, &cap, len, "}", 0);
    while (len && len % 8) len = gw_put(&h, &cap, len, " ", 0);  /* the data starts 8-byte aligned */
    if (!len) { free(h); return gw_fail(w, "out of memory", NULL); }
    char *tmp = (char *)malloc(strlen(path) + 5);
    if (!tmp) { free(h); return gw_fail(w, "out of memory", NULL); }
    strcpy(tmp, path), strcat(tmp, ".tmp");
    FILE *f = fopen(tmp, "wb");
    int bad = f == NULL;
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)((uint64_t)len >> (8 * i));
    if (!bad) bad |= fwrite(le, 1, 8, f) != 8 || fwrite(h, 1, len, f) != len;
    for (int i = 0; i < w->count && !bad; i++)
        bad |= fwrite(w->tensors[i].data, 1, w->tensors[i].nbytes, f) != w->tensors[i].nbytes;
    if (f) bad |= fclose(f) != 0;
    if (!bad) bad |= rename(tmp, path) != 0;
    if (bad) remove(tmp);
    free(h), free(tmp);
    return bad ? gw_fail(w, "cannot write", path) : 0;
}

/* float -> bfloat16 bits, round to nearest even (NaN stays a quiet NaN). */
static inline uint16_t gw_bf16_from_f32(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* float -> IEEE half bits, round to nearest even: overflow to inf, subnormals kept, NaN quiet. */
static inline uint16_t gw_f16_from_f32(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);          /* NaN */
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);         /* >= 65520: rounds to inf */
    if (a >= 0x38800000u) {                                          /* normal half: 2^-14 and up */
        uint32_t m = a - 0x38000000u;                                /* rebias the exponent 127 -> 15 */
        m += 0xfffu + ((m >> 13) & 1u);
        return (uint16_t)(sign | (m >> 13));
    }
    if (a < 0x33000000u) return sign;                                /* below half the smallest subnormal */
    uint32_t e = a >> 23, mant = (a & 0x7fffffu) | 0x800000u;        /* subnormal half */
    uint32_t shift = 126u - e;                                       /* q = mant * 2^(e - 126), in 2^-24 units */
    uint32_t q = mant >> shift, rest = mant & ((1u << shift) - 1u), half = 1u << (shift - 1);
    q += rest > half || (rest == half && (q & 1u));
    return (uint16_t)(sign | q);
}

#endif /* MINIBLOOM_GOLDEN_WRITER_H */
