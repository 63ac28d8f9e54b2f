/* Single-precision matrix products for the graph's ops.
 *
 * C (M,N) = op(A) (M,K) op(B) (K,N) + beta C, all row-major with explicit
 * leading dimensions. On CPUs with AVX-512 a register-blocked kernel written
 * here does the work (twice the vector width of the AVX2 kernels OpenBLAS is
 * pinned to on such machines, and no packing of operands that are already in
 * the order it reads); elsewhere, or when disabled, cblas_sgemm. */
#ifndef CF_GEMM_H
#define CF_GEMM_H

#include <stdbool.h>

void cf_gemm(float *c, int ldc, const float *a, int lda, const float *b, int ldb, int M, int N, int K,
             bool ta, bool tb, float beta);

/* The lower triangle (j <= i) of C (M,M) = A A^T, A (M,K) row-major (the
 * ssyrk of a Gram matrix). Entries above the diagonal may be overwritten. */
void cf_syrk_lower(float *c, int ldc, const float *a, int lda, int M, int K);

/* The native kernel can run on this CPU (x86-64 with AVX-512F). */
bool cf_gemm_native_available(void);

/* Whether cf_gemm uses the native kernel: on by default where available,
 * off when the environment sets CONFORM_GEMM=blas. Tests and the benchmark
 * switch it; returns the previous setting. Not for use while other threads
 * multiply (the setting is process-wide). */
bool cf_gemm_set_native(bool on);
bool cf_gemm_native_active(void);

#endif
