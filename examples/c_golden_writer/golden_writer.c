/*
 * A non-Python port writing a golden file (docs/golden-format.md): BLOOM's ALiBi bias, computed in C
 * from an attention mask, written under the documented names as a directory of .npy files or as one
 * plain .safetensors file -- no metadata, no library.
 *
 *   cc -O2 -std=c99 -o golden_writer golden_writer.c -lm
 *   ./golden_writer npy OUT_DIR N_HEAD N_LAYER B T MASK...            (B*T values, 0 or 1, row by row)
 *   ./golden_writer safetensors OUT.safetensors N_HEAD N_LAYER B T MASK...
 *   minibloom golden compare golden.safetensors OUT_DIR --only '*.alibi'
 *
 * What it computes, for each layer i (every layer gets the same bias):
 *   h.{i}.self_attention.alibi  float32 [B*N, 1, S] (transformers' layout, accepted by the spec)
 *       = slope[n] * position[b, s],  position = cumsum(mask) - 1 on real tokens, 0 on pads
 *   attention_mask              int64   [B, S]
 * Slopes: for N a power of two, base^1..base^N with base = 2^(-8/N); otherwise the slopes of the
 * nearest smaller power of two P, then the odd powers 1, 3, 5... of 2^(-4/P) for the other N - P heads.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../minibloom/data/golden_writer.h"

static void slopes(int n_head, float *out) {
    int p = 1;
    while (p * 2 <= n_head) p *= 2;
    float base = powf(2.0f, -8.0f / (float)p);
    for (int k = 0; k < p; k++) out[k] = powf(base, (float)(k + 1));
    float extra = powf(2.0f, -4.0f / (float)p);
    for (int k = 0; k < n_head - p; k++) out[p + k] = powf(extra, (float)(2 * k + 1));
}

/* The NPY v1.0 header: magic, version, header length, a Python-dict literal padded to 64 bytes. */
static int write_npy(const char *path, const char *descr, const int *shape, int ndim, const void *data,
                     size_t nbytes) {
    char dict[256], dims[128] = "";
    for (int i = 0; i < ndim; i++) {
        char d[32];
        snprintf(d, sizeof d, ndim == 1 ? "%d," : (i + 1 < ndim ? "%d, " : "%d"), shape[i]);
        strcat(dims, d);
    }
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, dims);
    int total = 10 + n + 1;
    int pad = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); return 1; }
    uint16_t hlen = (uint16_t)(n + pad + 1);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc(hlen & 0xff, f); fputc(hlen >> 8, f);
    fwrite(dict, 1, (size_t)n, f);
    for (int i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
    fwrite(data, 1, nbytes, f);  /* little-endian machines: the bytes are already '<f4' / '<i8' */
    return fclose(f) != 0;
}

int main(int argc, char **argv) {
    if (argc < 7) {
        fprintf(stderr, "usage: %s npy|safetensors OUT N_HEAD N_LAYER B T MASK...\n", argv[0]);
        return 2;
    }
    const char *mode = argv[1], *out = argv[2];
    int N = atoi(argv[3]), L = atoi(argv[4]), B = atoi(argv[5]), T = atoi(argv[6]);
    if (N < 1 || L < 1 || B < 1 || T < 1 || argc != 7 + B * T) {
        fprintf(stderr, "need N_HEAD, N_LAYER, B, T >= 1 and B*T mask values\n");
        return 2;
    }
    int64_t *mask = malloc(sizeof(int64_t) * (size_t)(B * T));
    float *slope = malloc(sizeof(float) * (size_t)N);
    float *alibi = malloc(sizeof(float) * (size_t)(B * N * T));  /* [B*N, 1, S] */
    for (int i = 0; i < B * T; i++) mask[i] = atoi(argv[7 + i]) != 0;
    slopes(N, slope);
    for (int b = 0; b < B; b++) {
        int64_t count = 0;
        for (int s = 0; s < T; s++) {
            count += mask[b * T + s];
            float pos = mask[b * T + s] ? (float)(count - 1) : 0.0f;
            for (int n = 0; n < N; n++) alibi[(b * N + n) * T + s] = slope[n] * pos;
        }
    }
    size_t abytes = sizeof(float) * (size_t)(B * N * T), mbytes = sizeof(int64_t) * (size_t)(B * T);
    int failed = 0;
    if (strcmp(mode, "npy") == 0) {
        char path[4096];
        int ashape[3] = {B * N, 1, T}, mshape[2] = {B, T};
        snprintf(path, sizeof path, "%s/attention_mask.npy", out);
        failed |= write_npy(path, "<i8", mshape, 2, mask, mbytes);
        for (int i = 0; i < L && !failed; i++) {
            snprintf(path, sizeof path, "%s/h.%d.self_attention.alibi.npy", out, i);
            failed |= write_npy(path, "<f4", ashape, 3, alibi, abytes);
        }
    } else {  /* safetensors, through minibloom's one-header writer (minibloom/data/golden_writer.h) */
        gw_writer *w = gw_open();
        int64_t mshape[2] = {B, T}, ashape[3] = {B * N, 1, T};
        char name[64];
        failed |= gw_add(w, "attention_mask", GW_I64, mask, 2, mshape) != 0;
        for (int i = 0; i < L && !failed; i++) {
            snprintf(name, sizeof name, "h.%d.self_attention.alibi", i);
            failed |= gw_add(w, name, GW_F32, alibi, 3, ashape) != 0;
        }
        if (!failed) failed |= gw_save(w, out) != 0;
        if (failed) fprintf(stderr, "%s\n", gw_error(w));
        gw_free(w);
    }
    free(mask); free(slope); free(alibi);
    return failed;
}
