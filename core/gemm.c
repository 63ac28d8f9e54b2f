/* C = op(A) op(B) + beta C: an AVX-512 kernel for this project's shapes,
 * cblas_sgemm otherwise.
 *
 * The kernel computes an MR x NR (8 x 32) tile of C in sixteen zmm
 * accumulators: for each k, two vectors of op(B)'s row k (32 columns) and
 * eight broadcasts of op(A)'s column k, sixteen FMAs. op(A) is read in place
 * (its rows or columns are strided pointers), op(B) in place when it is not
 * transposed (its rows are contiguous) and otherwise packed sliver by sliver
 * (KC x 32, 16 x 16 blocks transposed in registers) into a stack buffer.
 * K runs in blocks of at most KC so one B sliver stays in L1 while the
 * MR-row strips of A go past it. A B^T with few rows of A goes through its
 * transpose (gemm_native_abt_wide). */
#include "gemm.h"

#include <cblas.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <threads.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define GEMM_NATIVE 1
#endif

enum { MR = 8, NR = 32, KC = 256 };

/* -1 not decided yet, 0 cblas, 1 native. */
static atomic_int native_state = -1;

bool
cf_gemm_native_available(void)
{
#if GEMM_NATIVE
  return __builtin_cpu_supports("avx512f");
#else
  return false;
#endif
}

static bool
native_on(void)
{
  int s = atomic_load_explicit(&native_state, memory_order_relaxed);
  if (s < 0) {
    const char *env = getenv("CONFORM_GEMM");
    s = cf_gemm_native_available() && !(env && strcmp(env, "blas") == 0);
    atomic_store_explicit(&native_state, s, memory_order_relaxed);
  }
  return s == 1;
}

bool
cf_gemm_native_active(void)
{
  return native_on();
}

bool
cf_gemm_set_native(bool on)
{
  bool prev = native_on();
  atomic_store_explicit(&native_state, on && cf_gemm_native_available(), memory_order_relaxed);
  return prev;
}

#if GEMM_NATIVE

#define AVX512 __attribute__((target("avx512f")))

typedef enum { STORE_SET, STORE_SCALE, STORE_ADD } StoreMode;

/* One row of the tile: c[0..31] (masked to the valid columns) = v + the old
 * values as the mode says. */
AVX512 static inline void
store_row(float *c, __m512 v0, __m512 v1, __mmask16 m0, __mmask16 m1, StoreMode mode, float beta)
{
  if (mode == STORE_ADD) {
    v0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, c), v0);
    v1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, c + 16), v1);
  } else if (mode == STORE_SCALE) {
    __m512 bv = _mm512_set1_ps(beta);
    v0 = _mm512_fmadd_ps(bv, _mm512_maskz_loadu_ps(m0, c), v0);
    v1 = _mm512_fmadd_ps(bv, _mm512_maskz_loadu_ps(m1, c + 16), v1);
  }
  _mm512_mask_storeu_ps(c, m0, v0);
  _mm512_mask_storeu_ps(c + 16, m1, v1);
}

/* c (mr <= 8 rows, columns by the masks) (mode) sum_k a_ik b_k, where a_ik is
 * a[i*rs + k*cs] and row k of b (32 floats, masked) starts at b + k*sb. Rows
 * past mr repeat the last valid one (read in bounds, never stored). */
AVX512 static void
kernel_8x32(int kc, const float *a, ptrdiff_t rs, ptrdiff_t cs, const float *b, ptrdiff_t sb, float *c,
            ptrdiff_t ldc, int mr, __mmask16 m0, __mmask16 m1, StoreMode mode, float beta)
{
#define ROW(i) (a + (ptrdiff_t)((i) < mr ? (i) : mr - 1) * rs)
  const float *a0 = ROW(0), *a1 = ROW(1), *a2 = ROW(2), *a3 = ROW(3);
  const float *a4 = ROW(4), *a5 = ROW(5), *a6 = ROW(6), *a7 = ROW(7);
#undef ROW
  __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00,
         c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
  ptrdiff_t o = 0;
  for (int k = 0; k < kc; k++, o += cs, b += sb) {
    const __m512 b0 = _mm512_maskz_loadu_ps(m0, b), b1 = _mm512_maskz_loadu_ps(m1, b + 16);
    __m512 x;
#define FMA2(ai, ci0, ci1)                                                                           \
  x = _mm512_set1_ps(ai[o]);                                                                         \
  ci0 = _mm512_fmadd_ps(x, b0, ci0);                                                                 \
  ci1 = _mm512_fmadd_ps(x, b1, ci1)
    FMA2(a0, c00, c01);
    FMA2(a1, c10, c11);
    FMA2(a2, c20, c21);
    FMA2(a3, c30, c31);
    FMA2(a4, c40, c41);
    FMA2(a5, c50, c51);
    FMA2(a6, c60, c61);
    FMA2(a7, c70, c71);
#undef FMA2
  }
  const __m512 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31},
                             {c40, c41}, {c50, c51}, {c60, c61}, {c70, c71}};
  for (int i = 0; i < mr; i++)
    store_row(c + i * ldc, acc[i][0], acc[i][1], m0, m1, mode, beta);
}

/* In-register transpose of a 16 x 16 block: r[q] holds row q on entry and
 * column q on return. Interleave 32-bit pairs, then 64-bit pairs within each
 * 128-bit lane, then move the lanes across (two shuffle_f32x4 rounds). */
AVX512 static inline void
transpose16(__m512 r[16])
{
  __m512 t[16], u[16];
  for (int i = 0; i < 8; i++) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int g = 0; g < 4; g++) {
    __m512d p0 = _mm512_castps_pd(t[4 * g]), p1 = _mm512_castps_pd(t[4 * g + 1]);
    __m512d p2 = _mm512_castps_pd(t[4 * g + 2]), p3 = _mm512_castps_pd(t[4 * g + 3]);
    u[4 * g] = _mm512_castpd_ps(_mm512_unpacklo_pd(p0, p2)); /* lane l: rows 4g.., column 4l */
    u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(p0, p2));
    u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(p1, p3));
    u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(p1, p3));
  }
  for (int m = 0; m < 4; m++) {
    __m512 vlo = _mm512_shuffle_f32x4(u[m], u[4 + m], _MM_SHUFFLE(1, 0, 1, 0));
    __m512 vhi = _mm512_shuffle_f32x4(u[m], u[4 + m], _MM_SHUFFLE(3, 2, 3, 2));
    __m512 wlo = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], _MM_SHUFFLE(1, 0, 1, 0));
    __m512 whi = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], _MM_SHUFFLE(3, 2, 3, 2));
    r[m] = _mm512_shuffle_f32x4(vlo, wlo, _MM_SHUFFLE(2, 0, 2, 0));
    r[4 + m] = _mm512_shuffle_f32x4(vlo, wlo, _MM_SHUFFLE(3, 1, 3, 1));
    r[8 + m] = _mm512_shuffle_f32x4(vhi, whi, _MM_SHUFFLE(2, 0, 2, 0));
    r[12 + m] = _mm512_shuffle_f32x4(vhi, whi, _MM_SHUFFLE(3, 1, 3, 1));
  }
}

/* dst (kc, 32, 64-byte aligned) = op(B)'s rows p0.. and columns j0.. for B
 * stored (N, K) (op = transpose): dst[k][j] = b[(j0 + j) ldb + p0 + k] for
 * j < nr. Columns past nr are left as they are: the kernel's masked loads
 * never read them. */
AVX512 static void
pack_bt(float *restrict dst, const float *restrict b, int ldb, int j0, int nr, int p0, int kc)
{
  int j = 0;
  for (; j + 16 <= nr; j += 16) {
    const float *src = b + (size_t)(j0 + j) * ldb + p0;
    int k = 0;
    for (; k + 16 <= kc; k += 16) {
      __m512 r[16];
      for (int q = 0; q < 16; q++)
        r[q] = _mm512_loadu_ps(src + (size_t)q * ldb + k);
      transpose16(r);
      for (int q = 0; q < 16; q++)
        _mm512_store_ps(dst + (size_t)(k + q) * NR + j, r[q]);
    }
    for (; k < kc; k++)
      for (int q = 0; q < 16; q++)
        dst[k * NR + j + q] = src[(size_t)q * ldb + k];
  }
  for (; j < nr; j++) {
    const float *src = b + (size_t)(j0 + j) * ldb + p0;
    for (int k = 0; k < kc; k++)
      dst[k * NR + j] = src[k];
  }
}

static __mmask16
mask_of(int n)
{
  return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n > 0 ? n : 0)) - 1u);
}

/* Per-thread packing buffer of the transposed path, grown as needed and
 * freed when its thread ends: after the first step of a training run no
 * product allocates. */
typedef struct {
  float *p;
  size_t cap; /* floats */
} Workspace;

static tss_t ws_key; /* C11 thread-specific storage, with a destructor */
static once_flag ws_once = ONCE_FLAG_INIT;
static bool ws_key_ok;

static void
ws_destroy(void *v)
{
  Workspace *w = v;
  free(w->p);
  free(w);
}

static void
ws_key_init(void)
{
  ws_key_ok = tss_create(&ws_key, ws_destroy) == thrd_success;
}

/* n floats, 64-byte aligned, or NULL if memory is short. */
static float *
workspace(size_t n)
{
  call_once(&ws_once, ws_key_init);
  if (!ws_key_ok)
    return NULL;
  Workspace *w = tss_get(ws_key);
  if (!w) {
    w = calloc(1, sizeof *w);
    if (!w || tss_set(ws_key, w) != thrd_success) {
      free(w);
      return NULL;
    }
  }
  if (w->cap < n) {
    free(w->p);
    w->p = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
    w->cap = w->p ? n : 0;
  }
  return w->p;
}

/* C (M,N) = A B^T + beta C for A (M,K) with few rows and B (N,K) with many
 * (a convolution's weight gradient: dt col^T): computed as its transpose
 * C^T = B A^T, so the large B is read in place, only A is packed (32 rows at
 * a time, all of K), and each 8 x 32 tile of C^T is added to C transposed.
 * false if the packing buffer cannot be had. */
static bool
gemm_native_abt_wide(float *c, int ldc, const float *a, int lda, const float *b, int ldb, int M, int N, int K,
                     float beta)
{
  float *ap = workspace((size_t)K * NR);
  if (!ap)
    return false;
  for (int i0 = 0; i0 < M; i0 += NR) {
    const int mr = M - i0 < NR ? M - i0 : NR;
    const __mmask16 m0 = mask_of(mr), m1 = mask_of(mr - 16);
    pack_bt(ap, a, lda, i0, mr, 0, K); /* ap[k][i] = A[i0 + i][k] */
    for (int j0 = 0; j0 < N; j0 += MR) {
      const int nr = N - j0 < MR ? N - j0 : MR;
      _Alignas(64) float ct[MR * NR]; /* rows j0.. of C^T */
      for (int p0 = 0; p0 < K; p0 += KC) /* blocks of K summed in turn, as in gemm_native */
        kernel_8x32(K - p0 < KC ? K - p0 : KC, b + (size_t)j0 * ldb + p0, ldb, 1, ap + (size_t)p0 * NR, NR, ct,
                    NR, nr, m0, m1, p0 == 0 ? STORE_SET : STORE_ADD, 0.0f);
      for (int i = 0; i < mr; i++) {
        float *ci = c + (size_t)(i0 + i) * ldc + j0;
        for (int j = 0; j < nr; j++)
          ci[j] = beta == 0.0f ? ct[j * NR + i] : beta * ci[j] + ct[j * NR + i];
      }
    }
  }
  return true;
}

/* lower: only tiles that hold entries on or below the diagonal (j <= i), for
 * cf_syrk_lower; the other tiles are skipped. */
static void
gemm_native(float *c, int ldc, const float *a, int lda, const float *b, int ldb, int M, int N, int K, bool ta,
            bool tb, float beta, bool lower)
{
  if (tb && !ta && !lower && 4 * M <= N && gemm_native_abt_wide(c, ldc, a, lda, b, ldb, M, N, K, beta))
    return;
  _Alignas(64) float bpack[KC * NR];
  const int nblk = (K + KC - 1) / KC, kcb = (K + nblk - 1) / nblk;
  const ptrdiff_t rs = ta ? 1 : lda, cs = ta ? lda : 1;
  for (int p0 = 0; p0 < K; p0 += kcb) {
    const int kc = K - p0 < kcb ? K - p0 : kcb;
    const StoreMode mode = p0 > 0 || beta == 1.0f ? STORE_ADD : beta == 0.0f ? STORE_SET : STORE_SCALE;
    for (int j0 = 0; j0 < N; j0 += NR) {
      const int nr = N - j0 < NR ? N - j0 : NR;
      const __mmask16 m0 = mask_of(nr), m1 = mask_of(nr - 16);
      const float *bp;
      ptrdiff_t sb;
      if (tb) {
        pack_bt(bpack, b, ldb, j0, nr, p0, kc);
        bp = bpack;
        sb = NR;
      } else {
        bp = b + (size_t)p0 * ldb + j0;
        sb = ldb;
      }
      for (int i0 = lower ? j0 / MR * MR : 0; i0 < M; i0 += MR) {
        const int mr = M - i0 < MR ? M - i0 : MR;
        const float *ap = ta ? a + (size_t)p0 * lda + i0 : a + (size_t)i0 * lda + p0;
        kernel_8x32(kc, ap, rs, cs, bp, sb, c + (size_t)i0 * ldc + j0, ldc, mr, m0, m1, mode, beta);
      }
    }
  }
}
#endif

void
cf_gemm(float *c, int ldc, const float *a, int lda, const float *b, int ldb, int M, int N, int K, bool ta,
        bool tb, float beta)
{
  if (M <= 0 || N <= 0)
    return;
#if GEMM_NATIVE
  if (K > 0 && native_on()) {
    gemm_native(c, ldc, a, lda, b, ldb, M, N, K, ta, tb, beta, false);
    return;
  }
#endif
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, a,
              lda, b, ldb, beta, c, ldc);
}

void
cf_syrk_lower(float *c, int ldc, const float *a, int lda, int M, int K)
{
  if (M <= 0)
    return;
#if GEMM_NATIVE
  if (K > 0 && native_on()) {
    gemm_native(c, ldc, a, lda, a, lda, M, M, K, false, true, 0.0f, true);
    return;
  }
#endif
  cblas_ssyrk(CblasRowMajor, CblasLower, CblasNoTrans, M, K, 1.0f, a, lda, 0.0f, c, ldc);
}
