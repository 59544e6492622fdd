/*
 * Uses minibloom/data/golden_writer.h the way a port does (tests/test_golden_c_writer.py):
 *
 *   golden_writer_check values OUT.safetensors VALUES.f32     the float32 values of a raw file written as
 *                                                            F32, F16 and BF16 (rounded by the header),
 *                                                            plus I64 / I32 / F64 tensors and odd names
 *   golden_writer_check alibi OUT.safetensors F32|F16|BF16 N_HEAD N_LAYER B T MASK...
 *                                                            BLOOM's ALiBi bias of every layer in that dtype
 *   golden_writer_check twice OUT.safetensors                a name added twice: refused, exit 1
 */
#include <math.h>

#include "golden_writer.h"

static void slopes(int n_head, float *out) {
    int p = 1;
    while (p * 2 <= n_head) p *= 2;
    float base = powf(2.0f, -8.0f / (float)p), extra = powf(2.0f, -4.0f / (float)p);
    for (int k = 0; k < p; k++) out[k] = powf(base, (float)(k + 1));
    for (int k = 0; k < n_head - p; k++) out[p + k] = powf(extra, (float)(2 * k + 1));
}

static int finish(gw_writer *w, int status, const char *path) {
    if (status == 0) status = gw_save(w, path);
    if (status != 0) fprintf(stderr, "%s\n", gw_error(w));
    gw_free(w);
    return status != 0;
}

static int values(const char *out, const char *in) {
    FILE *f = fopen(in, "rb");
    if (!f) return 2;
    float buf[4096];
    int64_t n = (int64_t)fread(buf, 4, 4096, f);
    fclose(f);
    uint16_t half[4096], bf[4096];
    double wide[4096];
    for (int64_t i = 0; i < n; i++) half[i] = gw_f16_from_f32(buf[i]), bf[i] = gw_bf16_from_f32(buf[i]), wide[i] = buf[i];
    int64_t ids[6] = {0, 1, 2, 250679, -1, INT64_MAX}, shape[2] = {2, 3}, one[1] = {n};
    int32_t small[3] = {7, -7, 0};
    int64_t three[1] = {3}, none[1] = {0};
    gw_writer *w = gw_open();
    int s = gw_add(w, "f32", GW_F32, buf, 1, one);
    s |= gw_add(w, "f16", GW_F16, half, 1, one);
    s |= gw_add(w, "bf16", GW_BF16, bf, 1, one);
    s |= gw_add(w, "f64", GW_F64, wide, 1, one);
    s |= gw_add(w, "input_ids", GW_I64, ids, 2, shape);
    s |= gw_add(w, "i32", GW_I32, small, 1, three);
    s |= gw_add(w, "scalar", GW_F32, buf, 0, NULL);
    s |= gw_add(w, "empty", GW_F32, buf, 1, none);
    s |= gw_add(w, "odd \"name\"\\with\ttab", GW_F32, buf, 0, NULL);
    return finish(w, s, out);
}

static int alibi(int argc, char **argv) {
    const char *out = argv[2], *dt = argv[3];
    gw_dtype dtype = strcmp(dt, "F16") == 0 ? GW_F16 : strcmp(dt, "BF16") == 0 ? GW_BF16 : GW_F32;
    int N = atoi(argv[4]), L = atoi(argv[5]), B = atoi(argv[6]), T = atoi(argv[7]);
    if (argc != 8 + B * T) return 2;
    int64_t *mask = malloc(sizeof(int64_t) * (size_t)(B * T));
    float *slope = malloc(sizeof(float) * (size_t)N), *bias = malloc(sizeof(float) * (size_t)(B * N * T));
    uint16_t *bits = malloc(sizeof(uint16_t) * (size_t)(B * N * T));
    for (int i = 0; i < B * T; i++) mask[i] = atoi(argv[8 + i]) != 0;
    slopes(N, slope);
    for (int b = 0; b < B; b++) {
        int64_t count = 0;
        for (int s = 0; s < T; s++) {
            count += mask[b * T + s];
            float pos = mask[b * T + s] ? (float)(count - 1) : 0.0f;
            for (int n = 0; n < N; n++) bias[(b * N + n) * T + s] = slope[n] * pos;  /* [B, N, 1, S] */
        }
    }
    for (int i = 0; i < B * N * T; i++) bits[i] = dtype == GW_F16 ? gw_f16_from_f32(bias[i]) : gw_bf16_from_f32(bias[i]);
    gw_writer *w = gw_open();
    int64_t mshape[2] = {B, T}, ashape[4] = {B, N, 1, T};
    int s = gw_add(w, "attention_mask", GW_I64, mask, 2, mshape);
    for (int i = 0; i < L && s == 0; i++) {
        char name[64];
        snprintf(name, sizeof name, "h.%d.self_attention.alibi", i);
        s = gw_add(w, name, dtype, dtype == GW_F32 ? (const void *)bias : (const void *)bits, 4, ashape);
    }
    free(mask), free(slope), free(bias), free(bits);
    return finish(w, s, out);
}

int main(int argc, char **argv) {
    if (argc >= 4 && strcmp(argv[1], "values") == 0) return values(argv[2], argv[3]);
    if (argc >= 8 && strcmp(argv[1], "alibi") == 0) return alibi(argc, argv);
    if (argc == 3 && strcmp(argv[1], "twice") == 0) {
        float x = 1.0f;
        gw_writer *w = gw_open();
        int s = gw_add(w, "logits", GW_F32, &x, 0, NULL);
        s |= gw_add(w, "logits", GW_F32, &x, 0, NULL);
        return finish(w, s, argv[2]);
    }
    fprintf(stderr, "usage: see the comment at the top\n");
    return 2;
}
