/* couponmix's fused moment sums: the exact engine's sums over the rows of an evaluation sample, for a batch of
 * mixtures, in one pass per row (couponmix/ope/fused.py builds the jobs and is the only caller; the numpy code in
 * couponmix/ope/objectives.py computes the same sums and is the reference).
 *
 * For row i and mixture b: p = sum_k P[i, k] at[k, b], the balanced propensity; inv = 1/p (0 where p = 0);
 * sup_t = pe[i, t] 1{p > 0}. A weight job w (kind, lam, target t) gives two row terms with e = pe[i, t]:
 *   kind 0 (c = w):                c0 = sup_t,                  c1 = (e e) inv
 *   kind 1 (c = min(w, lam)):      c0 = min(e, lam p),          c1 = min((e e) inv, (lam lam) p)
 *   kind 2 (c = w 1{w <= lam}):    c0 = sup_t 1{e <= lam p},    c1 = (e e) inv 1{e <= lam p}
 *   kind 3 (c = 0):                none
 * A sum job j adds coef_j[i] x to out[j, b], with x = c0 or c1 of its weight job (which 0 or 1) or sup of
 * its target (which 2). Every term is computed with the same operations as the numpy code; only the order in
 * which rows are added differs (here: row by row), so the sums agree with numpy's to rounding.
 */
#include <stdint.h>

void fused_sums(int64_t r0, int64_t r1,
                const double *P, int64_t K, const double *at, int64_t B, const double *pe, int64_t T,
                int64_t nw, const int64_t *wkind, const double *wlam, const int64_t *wtarget,
                int64_t ns, const double *const *coef, const int64_t *cstride, const int64_t *source,
                const int64_t *which, double *out, double *work)
{
    double *p = work, *inv = work + B, *sup = work + 2 * B, *c = work + (2 + T) * B;
    for (int64_t i = r0; i < r1; i++) {
        const double *Pi = P + i * K;
        for (int64_t b = 0; b < B; b++)
            p[b] = Pi[0] * at[b];
        for (int64_t k = 1; k < K; k++) {
            const double v = Pi[k];
            const double *ak = at + k * B;
            for (int64_t b = 0; b < B; b++)
                p[b] += v * ak[b];
        }
        for (int64_t b = 0; b < B; b++)
            inv[b] = p[b] > 0 ? 1.0 / p[b] : 0.0;
        for (int64_t t = 0; t < T; t++) {
            const double e = pe[i * T + t];
            double *s = sup + t * B;
            for (int64_t b = 0; b < B; b++)
                s[b] = p[b] > 0 ? e : 0.0;
        }
        for (int64_t w = 0; w < nw; w++) {
            const double e = pe[i * T + wtarget[w]], e2 = e * e, lam = wlam[w], lam2 = lam * lam;
            const double *s = sup + wtarget[w] * B;
            double *c0 = c + 2 * w * B, *c1 = c0 + B;
            if (wkind[w] == 0) {
                for (int64_t b = 0; b < B; b++) {
                    c0[b] = s[b];
                    c1[b] = e2 * inv[b];
                }
            } else if (wkind[w] == 1) {
                for (int64_t b = 0; b < B; b++) {
                    const double sc = lam * p[b], w2 = e2 * inv[b], sc2 = lam2 * p[b];
                    c0[b] = e < sc ? e : sc;
                    c1[b] = w2 < sc2 ? w2 : sc2;
                }
            } else if (wkind[w] == 2) {
                for (int64_t b = 0; b < B; b++) {
                    const int keep = e <= lam * p[b];
                    c0[b] = keep ? s[b] : 0.0;
                    c1[b] = keep ? e2 * inv[b] : 0.0;
                }
            }
        }
        for (int64_t j = 0; j < ns; j++) {
            const double cf = coef[j][i * cstride[j]];
            const double *x = which[j] == 2 ? sup + source[j] * B : c + (2 * source[j] + which[j]) * B;
            double *o = out + j * B;
            for (int64_t b = 0; b < B; b++)
                o[b] += cf * x[b];
        }
    }
}
