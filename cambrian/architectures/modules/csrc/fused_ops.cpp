// No torch headers: raw pointers behind extern "C", so this builds in about a second.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "vexp.h"


// ---- RMSNorm over the last dim. x: (N, D), w: (D) -> y (N, D), rstd (N)
template <typename T>
static void rms_norm_fwd(const T* x, const T* w, T* y, T* rstd, int64_t N, int64_t D, double eps,
                         int threads) {
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && N >= 256)
  for (int64_t i = 0; i < N; ++i) {
    const T* xi = x + i * D;
    T* yi = y + i * D;
    T ss = 0;
#pragma omp simd reduction(+:ss)
    for (int64_t j = 0; j < D; ++j) ss += xi[j] * xi[j];
    const T r = T(1) / std::sqrt(ss / T(D) + T(eps));
    rstd[i] = r;
#pragma omp simd
    for (int64_t j = 0; j < D; ++j) yi[j] = xi[j] * r * w[j];
  }
}

// ---- Residual add then RMSNorm, one pass: h = x + y; out = rmsnorm(h) * w.
template <typename T>
static void add_rms_norm_fwd(const T* x, const T* y, const T* w, T* h, T* out, T* rstd, int64_t N,
                             int64_t D, double eps, int threads) {
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && N >= 256)
  for (int64_t i = 0; i < N; ++i) {
    const T* xi = x + i * D;
    const T* yi = y + i * D;
    T* hi = h + i * D;
    T* oi = out + i * D;
    T ss = 0;
#pragma omp simd reduction(+:ss)
    for (int64_t j = 0; j < D; ++j) {
      const T v = xi[j] + yi[j];
      hi[j] = v;
      ss += v * v;
    }
    const T r = T(1) / std::sqrt(ss / T(D) + T(eps));
    rstd[i] = r;
#pragma omp simd
    for (int64_t j = 0; j < D; ++j) oi[j] = hi[j] * r * w[j];
  }
}

// dx = r * (g - x_hat * mean(g * x_hat)) (+ dres, the gradient reaching x by the residual
// path, when not null) with g = dy * w, x_hat = x * r; dw = sum dy * x_hat, as one partial
// row per block of rows (dw_part: (blocks, D), zeroed; summed by the caller).
template <typename T>
static void rms_norm_bwd(const T* dy, const T* dres, const T* x, const T* w, const T* rstd, T* dx,
                         T* dw_part, int64_t N, int64_t D, int64_t blocks) {
#pragma omp parallel for num_threads(blocks) schedule(static) if (blocks > 1)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    T* dwb = dw_part + blk * D;
    for (int64_t i = blk * N / blocks; i < (blk + 1) * N / blocks; ++i) {
      const T* xi = x + i * D;
      const T* gi = dy + i * D;
      T* dxi = dx + i * D;
      const T r = rstd[i];
      T dot = 0;
#pragma omp simd reduction(+:dot)
      for (int64_t j = 0; j < D; ++j) dot += gi[j] * w[j] * xi[j];
      const T c = dot * r / T(D);  // mean(g * x_hat)
      if (dres) {
        const T* di = dres + i * D;
#pragma omp simd
        for (int64_t j = 0; j < D; ++j) {
          const T xhat = xi[j] * r;
          dxi[j] = r * (gi[j] * w[j] - xhat * c) + di[j];
          dwb[j] += gi[j] * xhat;
        }
      } else {
#pragma omp simd
        for (int64_t j = 0; j < D; ++j) {
          const T xhat = xi[j] * r;
          dxi[j] = r * (gi[j] * w[j] - xhat * c);
          dwb[j] += gi[j] * xhat;
        }
      }
    }
  }
}

// ---- SwiGLU gate. gu: (N, 2H), gate columns first -> silu(gate) * up (N, H), and
// sigmoid(gate) (N, H) for the backward, which then needs no exp.
template <typename T>
static void swiglu_fwd(const T* gu, T* out, T* sig, int64_t N, int64_t H, int threads) {
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && N >= 64)
  for (int64_t i = 0; i < N; ++i) {
    const T* g = gu + i * 2 * H;
    const T* u = g + H;
    T* o = out + i * H;
    T* si = sig + i * H;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const T s = T(1) / (T(1) + vexp(-g[j]));
      si[j] = s;
      o[j] = g[j] * s * u[j];
    }
  }
}

// d gate = dout * up * s * (1 + g * (1 - s)), d up = dout * g * s, with s = sigmoid(g).
template <typename T>
static void swiglu_bwd(const T* dout, const T* gu, const T* sig, T* dgu, int64_t N, int64_t H,
                       int threads) {
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && N >= 64)
  for (int64_t i = 0; i < N; ++i) {
    const T* g = gu + i * 2 * H;
    const T* u = g + H;
    const T* si = sig + i * H;
    const T* d = dout + i * H;
    T* dg = dgu + i * 2 * H;
    T* du = dg + H;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const T s = si[j];
      const T gs = g[j] * s;
      dg[j] = d[j] * u[j] * (s + gs * (T(1) - s));
      du[j] = d[j] * gs;
    }
  }
}

// ---- RoPE and head split. qkv: (B*T, h + 2 hkv, hd) rows; cos, sin: (T, hd / 2)
// -> q (B*T, h, hd), k (B*T, hkv, hd), rotated (v needs no copy: the caller views qkv):
// out[i] = x[i] cos[i] - x[i + hd/2] sin[i], out[i + hd/2] = x[i + hd/2] cos[i] + x[i] sin[i].
template <typename T>
static void rope_qk_fwd(const T* qkv, const T* cos, const T* sin, T* q, T* k, int64_t BT,
                        int64_t T_, int64_t h, int64_t hkv, int64_t hd, int threads) {
  const int64_t NH = h + 2 * hkv, half = hd / 2;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && BT >= 64)
  for (int64_t bt = 0; bt < BT; ++bt) {
    const T* c = cos + (bt % T_) * half;
    const T* s = sin + (bt % T_) * half;
    for (int64_t head = 0; head < h + hkv; ++head) {
      const T* x = qkv + (bt * NH + head) * hd;
      T* o = head < h ? q + (bt * h + head) * hd : k + (bt * hkv + head - h) * hd;
#pragma omp simd
      for (int64_t i = 0; i < half; ++i) {
        const T x1 = x[i], x2 = x[i + half];
        o[i] = x1 * c[i] - x2 * s[i];
        o[i + half] = x2 * c[i] + x1 * s[i];
      }
    }
  }
}

// The transpose: d x1 = dy1 cos + dy2 sin, d x2 = dy2 cos - dy1 sin, written as d(qkv).
template <typename T>
static void rope_qkv_bwd(const T* dq, const T* dk, const T* dv, const T* cos, const T* sin,
                         T* dqkv, int64_t BT, int64_t T_, int64_t h, int64_t hkv, int64_t hd,
                         int threads) {
  const int64_t NH = h + 2 * hkv, half = hd / 2;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && BT >= 64)
  for (int64_t bt = 0; bt < BT; ++bt) {
    const T* c = cos + (bt % T_) * half;
    const T* s = sin + (bt % T_) * half;
    for (int64_t head = 0; head < NH; ++head) {
      T* x = dqkv + (bt * NH + head) * hd;
      if (head >= h + hkv) {
        std::memcpy(x, dv + (bt * hkv + head - h - hkv) * hd, hd * sizeof(T));
        continue;
      }
      const T* g = head < h ? dq + (bt * h + head) * hd : dk + (bt * hkv + head - h) * hd;
#pragma omp simd
      for (int64_t i = 0; i < half; ++i) {
        const T g1 = g[i], g2 = g[i + half];
        x[i] = g1 * c[i] + g2 * s[i];
        x[i + half] = g2 * c[i] - g1 * s[i];
      }
    }
  }
}

#define CAMBRIAN_EXPORT(T, sfx)                                                                  \
  extern "C" void rms_norm_fwd_##sfx(const T* x, const T* w, T* y, T* r, int64_t N, int64_t D,  \
                                     double eps, int th) { rms_norm_fwd(x, w, y, r, N, D, eps, th); } \
  extern "C" void rms_norm_bwd_##sfx(const T* dy, const T* dres, const T* x, const T* w,         \
                                     const T* r, T* dx, T* dwp, int64_t N, int64_t D,           \
                                     int64_t blocks) {                                          \
    rms_norm_bwd(dy, dres, x, w, r, dx, dwp, N, D, blocks); }                                     \
  extern "C" void add_rms_norm_fwd_##sfx(const T* x, const T* y, const T* w, T* h, T* o, T* r,   \
                                         int64_t N, int64_t D, double eps, int th) {            \
    add_rms_norm_fwd(x, y, w, h, o, r, N, D, eps, th); }                                          \
  extern "C" void swiglu_fwd_##sfx(const T* gu, T* out, T* sig, int64_t N, int64_t H, int th) { \
    swiglu_fwd(gu, out, sig, N, H, th); }                                                         \
  extern "C" void swiglu_bwd_##sfx(const T* d, const T* gu, const T* sig, T* dgu, int64_t N,     \
                                   int64_t H, int th) { swiglu_bwd(d, gu, sig, dgu, N, H, th); } \
  extern "C" void rope_qk_fwd_##sfx(const T* qkv, const T* c, const T* s, T* q, T* k,            \
                                    int64_t BT, int64_t T_, int64_t h, int64_t hkv, int64_t hd,  \
                                    int th) { rope_qk_fwd(qkv, c, s, q, k, BT, T_, h, hkv, hd, th); } \
  extern "C" void rope_qkv_bwd_##sfx(const T* dq, const T* dk, const T* dv, const T* c,          \
                                     const T* s, T* dqkv, int64_t BT, int64_t T_, int64_t h,     \
                                     int64_t hkv, int64_t hd, int th) {                          \
    rope_qkv_bwd(dq, dk, dv, c, s, dqkv, BT, T_, h, hkv, hd, th); }

CAMBRIAN_EXPORT(float, f32)
CAMBRIAN_EXPORT(double, f64)
