/* Fused "apply token bitmask + sample" over the whole vocabulary.
 *
 * One pass reads the logits once, skipping every token the grammar's bitmask forbids (bit i of
 * mask word i/32 set = token i allowed; mask may be NULL = all allowed), and picks a token:
 * greedy argmax when temperature <= 0, otherwise softmax(logits / temperature) over the candidates
 * (the top_k allowed tokens by logit, ties to the lower id, when top_k > 0; of those, the tokens at
 * least min_p times as likely as the most likely one), restricted to the top-p nucleus (sorted by
 * probability) and drawn with a splitmix64 generator whose state the caller keeps; without a nucleus
 * (top_p >= 1) the draw inverts the CDF in token-id order, with no sort. The repeat penalty is applied
 * to the logits by the caller (sampler.py), on the few tokens it concerns.
 *
 * The Python reference is edgeslm/decoding/sampler.py:sample_reference; tests check they agree
 * exactly. Loaded with ctypes from the extension module edgeslm._kernels (PyInit below is empty).
 *
 * Built for the compiler's portable baseline (setup.py never passes -march=native: cached wheels
 * move between machines). The time goes into exp() (glibc picks its own FMA/AVX2 variant at run
 * time) and into walking the mask; with all-zero mask words skipped, AVX2 clones of these loops
 * (target_clones) measured within noise, so there is no per-ISA dispatch here.
 */
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#ifdef _MSC_VER
#include <intrin.h>
static inline int ctz32(uint32_t x) { unsigned long i; _BitScanForward(&i, x); return (int)i; }
#define EDGESLM_EXPORT __declspec(dllexport)
#else
#define ctz32(x) __builtin_ctz(x)
#define EDGESLM_EXPORT
#endif

#define NBUCKETS 512

static inline int allowed(const uint32_t *mask, int i) {
    return mask == NULL || ((mask[i >> 5] >> (i & 31)) & 1u);
}

/* at the start of an all-zero mask word: none of its 32 tokens is allowed, so a loop jumps to the
 * next word; tokens are still visited in id order, so every sum is the same as without the jump */
static inline int empty_word(const uint32_t *mask, int i) {
    return mask != NULL && (i & 31) == 0 && mask[i >> 5] == 0;
}

static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

#define TWO_POW_MINUS_53 (1.0 / 9007199254740992.0) /* exact; MSVC's C has no hex float literals (0x1p-53) */

static double uniform(uint64_t *state) { return (double)(splitmix64(state) >> 11) * TWO_POW_MINUS_53; }

/* argmax over allowed tokens; ties go to the lowest id; -1 when nothing is allowed */
static int argmax(const float *logits, int n, const uint32_t *mask) {
    int best = -1;
    float best_v = -INFINITY;
    if (mask == NULL) {
        for (int i = 0; i < n; i++)
            if (logits[i] > best_v || best < 0) { best_v = logits[i]; best = i; }
        return best;
    }
    int words = (n + 31) / 32;
    for (int w = 0; w < words; w++) {
        uint32_t bits = mask[w];
        while (bits) {
            int i = w * 32 + ctz32(bits);
            bits &= bits - 1;
            if (i >= n) break;
            if (logits[i] > best_v || best < 0) { best_v = logits[i]; best = i; }
        }
    }
    return best;
}

typedef struct { double p; int id; } cand;

static int by_p_desc(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->p > y->p) return -1;
    if (x->p < y->p) return 1;
    return x->id - y->id;
}

static inline double prob(const float *logits, int i, double max, double temperature) {
    return exp(((double)logits[i] - max) / temperature);
}

/* (logit, id) ranks before (logit', id') when it is larger, or equal with a lower id */
static inline int ranks_before(float a, int ia, float b, int ib) { return a > b || (a == b && ia < ib); }

/* The k-th best allowed token by rank (a min-heap of the k best seen, the worst at its root), so that
 * token i is among the top k iff it does not rank after it; -1 when k <= 0 or at most k are allowed. */
static int kth_best(const float *logits, int n, const uint32_t *mask, int k) {
    if (k <= 0) return -1;
    int *heap = malloc(sizeof(int) * (size_t)k), size = 0;
    if (heap == NULL) return -1;
    for (int i = 0; i < n; i++) {
        if (empty_word(mask, i)) { i += 31; continue; }
        if (!allowed(mask, i)) continue;
        int at;
        if (size < k) { /* sift up */
            at = size++;
            while (at > 0) {
                int up = (at - 1) / 2;
                if (!ranks_before(logits[heap[up]], heap[up], logits[i], i)) break;
                heap[at] = heap[up];
                at = up;
            }
            heap[at] = i;
            continue;
        }
        if (!ranks_before(logits[i], i, logits[heap[0]], heap[0])) continue;
        at = 0; /* replace the root, sift down */
        for (;;) {
            int c = 2 * at + 1;
            if (c >= k) break;
            if (c + 1 < k && ranks_before(logits[heap[c]], heap[c], logits[heap[c + 1]], heap[c + 1])) c++;
            if (!ranks_before(logits[i], i, logits[heap[c]], heap[c])) break;
            heap[at] = heap[c];
            at = c;
        }
        heap[at] = i;
    }
    int kth = size == k ? heap[0] : -1;
    free(heap);
    return kth;
}

/* Whether allowed token i is a candidate: not after the k-th best (kth < 0: no cut) and, for min_p > 0,
 * not surely below it (by its logit, with a margin: exp is monotone) - both before any exp(). Its p must
 * then be > 0 (an underflow can never be drawn) and >= min_p (p relative to the top token's). */
static inline int may_keep(const float *logits, int i, int kth, double max, double temperature, double log_min_p) {
    if (kth >= 0 && ranks_before(logits[kth], kth, logits[i], i)) return 0;
    return ((double)logits[i] - max) / temperature >= log_min_p - 1e-6;
}

static inline int keeps(double p, double min_p) { return p != 0 && p >= min_p; }

EDGESLM_EXPORT int edgeslm_sample_v2(const float *logits, int n, const uint32_t *mask, double temperature,
                                     double top_p, int top_k, double min_p, uint64_t *rng) {
    int top = argmax(logits, n, mask);
    if (temperature <= 0 || top < 0) return top;
    int kth = kth_best(logits, n, mask, top_k);
    double max = logits[top], total = 0, log_min_p = min_p > 0 ? log(min_p) : -INFINITY;
    /* bucket tokens by probability (1/8 nat wide, from the top) so top-p sorts only what it can reach */
    double bucket_mass[NBUCKETS] = {0};
    for (int i = 0; i < n; i++) {
        if (empty_word(mask, i)) { i += 31; continue; }
        if (!allowed(mask, i)) continue;
        if (!may_keep(logits, i, kth, max, temperature, log_min_p)) continue;
        double p = prob(logits, i, max, temperature);
        if (!keeps(p, min_p)) continue;
        total += p;
        double d = (max - (double)logits[i]) / temperature * 8.0;
        bucket_mass[d < NBUCKETS - 1 ? (int)d : NBUCKETS - 1] += p;
    }
    if (top_p >= 1.0) { /* no nucleus: invert the CDF in token-id order */
        double u = uniform(rng) * total, acc = 0;
        int pick = top;
        for (int i = 0; i < n; i++) {
            if (empty_word(mask, i)) { i += 31; continue; }
            if (!allowed(mask, i)) continue;
            if (!may_keep(logits, i, kth, max, temperature, log_min_p)) continue;
            double p = prob(logits, i, max, temperature);
            if (!keeps(p, min_p)) continue;
            acc += p;
            pick = i;
            if (u < acc) break;
        }
        return pick;
    }
    int last = NBUCKETS - 1;
    double acc = 0;
    for (int b = 0; b < NBUCKETS; b++) {
        acc += bucket_mass[b];
        /* one bucket of slack: bucket sums round differently from the sorted sum below */
        if (acc >= top_p * total) { last = b + 1; break; }
    }
    int count = 0, cap = 1024;
    cand *c = malloc(sizeof(cand) * cap);
    if (c == NULL) return top;
    for (int i = 0; i < n; i++) {
        if (empty_word(mask, i)) { i += 31; continue; }
        if (!allowed(mask, i)) continue;
        double d = (max - (double)logits[i]) / temperature * 8.0;
        if ((d < NBUCKETS - 1 ? (int)d : NBUCKETS - 1) > last) continue;
        if (!may_keep(logits, i, kth, max, temperature, log_min_p)) continue;
        double p = prob(logits, i, max, temperature);
        if (!keeps(p, min_p)) continue;
        if (count == cap) {
            cand *grown = realloc(c, sizeof(cand) * (cap *= 2));
            if (grown == NULL) { free(c); return top; }
            c = grown;
        }
        c[count].p = p;
        c[count].id = i;
        count++;
    }
    qsort(c, count, sizeof(cand), by_p_desc);
    int keep = count;
    acc = 0;
    for (int k = 0; k < count; k++) {
        acc += c[k].p;
        if (acc >= top_p * total) { keep = k + 1; break; }
    }
    double kept = 0;
    for (int k = 0; k < keep; k++) kept += c[k].p;
    double u = uniform(rng) * kept;
    int pick = c[keep - 1].id;
    acc = 0;
    for (int k = 0; k < keep; k++) {
        acc += c[k].p;
        if (u < acc) { pick = c[k].id; break; }
    }
    free(c);
    return pick;
}

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kernels", "edgeslm native kernels (use via ctypes)", -1, NULL};

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&module); }
