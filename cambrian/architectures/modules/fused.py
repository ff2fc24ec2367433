"""Fused CPU kernels for the llama-style block: RMSNorm, SwiGLU's silu(g) * u, RoPE.

On CPU, torch runs each of these as a chain of small elementwise ops (and their
autograd as more of them, plus zero-fills and cats for chunk/slice backwards);
these C++ kernels do each in one pass over the activations, forward and backward:

- ``rms_norm(x, w, eps)``: y = x / sqrt(mean(x^2) + eps) * w; saves x and the (N,)
  reciprocal rms, recomputes x_hat in the backward.
- ``swiglu(gu)``: gu (..., 2H), gate then up, -> silu(gate) * up (..., H); the
  backward writes d(gu) as one tensor (no cat of the two halves).
- ``rope_qkv(qkv, cos, sin, h, hkv)``: the fused projection's output (B, T, h + 2 hkv,
  hd) -> q (B, h, T, hd), k, v (B, hkv, T, hd), q and k rotated (Llama's rotate-half
  layout); each is stored (B, T, heads, hd), as nanoGPT's views are, so attention's
  output comes back in that layout and merging heads needs no copy. The backward
  writes d(qkv) as one tensor.

float32 and float64 only (float64 serves gradcheck). They are compiled through
``CppExtension`` with ``-fopenmp`` so ``at::parallel_for`` uses torch's threads.
``available()`` is False where the build failed or ``CAMBRIAN_NO_CPP_EXT`` is set;
callers keep their pure-torch path for that case, for CUDA and for other dtypes.
"""

from __future__ import annotations

import torch

from cambrian.architectures.modules.cpp_ext import CFLAGS, CppExtension

CPP_SOURCE = r"""
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

// Cephes' expf (as in the selective scan): vectorisable, relative error about 1e-7.
static inline float vexp(float x) {
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  const float n = std::floor(x * 1.44269504088896341f + 0.5f);
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return y * scale;
}
static inline double vexp(double x) { return std::exp(x); }

template <typename F>
static void dispatch(const torch::Tensor& t, F&& body) {
  if (t.scalar_type() == torch::kDouble) {
    body(double(0));
  } else {
    TORCH_CHECK(t.scalar_type() == torch::kFloat, "cambrian fused ops: float32 or float64 only");
    body(float(0));
  }
}

// ---- RMSNorm over the last dim. x: (N, D), w: (D) -> y (N, D), rstd (N)
std::vector<torch::Tensor> rms_norm_fwd(torch::Tensor x, torch::Tensor w, double eps) {
  const int64_t N = x.size(0), D = x.size(1);
  auto y = torch::empty_like(x);
  auto rstd = torch::empty({N}, x.options());
  dispatch(x, [&](auto zero) {
    using scalar_t = decltype(zero);
    const scalar_t* px = x.data_ptr<scalar_t>();
    const scalar_t* pw = w.data_ptr<scalar_t>();
    scalar_t* py = y.data_ptr<scalar_t>();
    scalar_t* pr = rstd.data_ptr<scalar_t>();
    at::parallel_for(0, N, 128, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const scalar_t* xi = px + i * D;
        scalar_t* yi = py + i * D;
        scalar_t ss = 0;
#pragma omp simd reduction(+:ss)
        for (int64_t j = 0; j < D; ++j) ss += xi[j] * xi[j];
        const scalar_t r = scalar_t(1) / std::sqrt(ss / scalar_t(D) + scalar_t(eps));
        pr[i] = r;
#pragma omp simd
        for (int64_t j = 0; j < D; ++j) yi[j] = xi[j] * r * pw[j];
      }
    });
  });
  return {y, rstd};
}

// dx = r * (g - x_hat * mean(g * x_hat)) with g = dy * w, x_hat = x * r; dw = sum dy * x_hat.
// Rows are split into one block per thread, each with its own dw partial row.
std::vector<torch::Tensor> rms_norm_bwd(torch::Tensor dy, torch::Tensor x, torch::Tensor w,
                                        torch::Tensor rstd) {
  const int64_t N = x.size(0), D = x.size(1);
  const int64_t blocks = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), N / 128));
  auto dx = torch::empty_like(x);
  auto dw_part = torch::zeros({blocks, D}, x.options());
  dispatch(x, [&](auto zero) {
    using scalar_t = decltype(zero);
    const scalar_t* pdy = dy.data_ptr<scalar_t>();
    const scalar_t* px = x.data_ptr<scalar_t>();
    const scalar_t* pw = w.data_ptr<scalar_t>();
    const scalar_t* pr = rstd.data_ptr<scalar_t>();
    scalar_t* pdx = dx.data_ptr<scalar_t>();
    scalar_t* pdw = dw_part.data_ptr<scalar_t>();
    at::parallel_for(0, blocks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t blk = begin; blk < end; ++blk) {
        scalar_t* dwb = pdw + blk * D;
        for (int64_t i = blk * N / blocks; i < (blk + 1) * N / blocks; ++i) {
          const scalar_t* xi = px + i * D;
          const scalar_t* gi = pdy + i * D;
          scalar_t* dxi = pdx + i * D;
          const scalar_t r = pr[i];
          scalar_t dot = 0;
#pragma omp simd reduction(+:dot)
          for (int64_t j = 0; j < D; ++j) dot += gi[j] * pw[j] * xi[j];
          const scalar_t c = dot * r / scalar_t(D);  // mean(g * x_hat)
#pragma omp simd
          for (int64_t j = 0; j < D; ++j) {
            const scalar_t xhat = xi[j] * r;
            dxi[j] = r * (gi[j] * pw[j] - xhat * c);
            dwb[j] += gi[j] * xhat;
          }
        }
      }
    });
  });
  return {dx, dw_part.sum(0)};
}

// ---- SwiGLU gate. gu: (N, 2H), gate columns first -> silu(gate) * up (N, H)
torch::Tensor swiglu_fwd(torch::Tensor gu) {
  const int64_t N = gu.size(0), H = gu.size(1) / 2;
  auto out = torch::empty({N, H}, gu.options());
  dispatch(gu, [&](auto zero) {
    using scalar_t = decltype(zero);
    const scalar_t* pg = gu.data_ptr<scalar_t>();
    scalar_t* po = out.data_ptr<scalar_t>();
    at::parallel_for(0, N, 16, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const scalar_t* g = pg + i * 2 * H;
        const scalar_t* u = g + H;
        scalar_t* o = po + i * H;
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          const scalar_t s = scalar_t(1) / (scalar_t(1) + vexp(-g[j]));
          o[j] = g[j] * s * u[j];
        }
      }
    });
  });
  return out;
}

// d gate = dout * up * s * (1 + g * (1 - s)), d up = dout * g * s, with s = sigmoid(g).
torch::Tensor swiglu_bwd(torch::Tensor dout, torch::Tensor gu) {
  const int64_t N = gu.size(0), H = gu.size(1) / 2;
  auto dgu = torch::empty_like(gu);
  dispatch(gu, [&](auto zero) {
    using scalar_t = decltype(zero);
    const scalar_t* pg = gu.data_ptr<scalar_t>();
    const scalar_t* pd = dout.data_ptr<scalar_t>();
    scalar_t* pdg = dgu.data_ptr<scalar_t>();
    at::parallel_for(0, N, 16, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const scalar_t* g = pg + i * 2 * H;
        const scalar_t* u = g + H;
        const scalar_t* d = pd + i * H;
        scalar_t* dg = pdg + i * 2 * H;
        scalar_t* du = dg + H;
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          const scalar_t s = scalar_t(1) / (scalar_t(1) + vexp(-g[j]));
          const scalar_t gs = g[j] * s;
          dg[j] = d[j] * u[j] * (s + gs * (scalar_t(1) - s));
          du[j] = d[j] * gs;
        }
      }
    });
  });
  return dgu;
}

// ---- RoPE and head split. qkv: (B, T, h + 2 hkv, hd); cos, sin: (T, hd / 2)
// -> q (B, T, h, hd), k (B, T, hkv, hd), v (B, T, hkv, hd); q and k rotated:
// out[i] = x[i] cos[i] - x[i + hd/2] sin[i], out[i + hd/2] = x[i + hd/2] cos[i] + x[i] sin[i].
std::vector<torch::Tensor> rope_qkv_fwd(torch::Tensor qkv, torch::Tensor cos, torch::Tensor sin,
                                        int64_t h, int64_t hkv) {
  const int64_t B = qkv.size(0), T = qkv.size(1), NH = qkv.size(2), hd = qkv.size(3), half = hd / 2;
  TORCH_CHECK(NH == h + 2 * hkv && hd % 2 == 0, "rope_qkv: bad head counts");
  auto q = torch::empty({B, T, h, hd}, qkv.options());
  auto k = torch::empty({B, T, hkv, hd}, qkv.options());
  auto v = torch::empty({B, T, hkv, hd}, qkv.options());
  dispatch(qkv, [&](auto zero) {
    using scalar_t = decltype(zero);
    const scalar_t* px = qkv.data_ptr<scalar_t>();
    const scalar_t* pc = cos.data_ptr<scalar_t>();
    const scalar_t* ps = sin.data_ptr<scalar_t>();
    scalar_t* pq = q.data_ptr<scalar_t>();
    scalar_t* pk = k.data_ptr<scalar_t>();
    scalar_t* pv = v.data_ptr<scalar_t>();
    at::parallel_for(0, B * T, 16, [&](int64_t begin, int64_t end) {
      for (int64_t bt = begin; bt < end; ++bt) {
        const int64_t t = bt % T;
        const scalar_t* c = pc + t * half;
        const scalar_t* s = ps + t * half;
        for (int64_t head = 0; head < NH; ++head) {
          const scalar_t* x = px + (bt * NH + head) * hd;
          if (head >= h + hkv) {
            std::memcpy(pv + (bt * hkv + head - h - hkv) * hd, x, hd * sizeof(scalar_t));
            continue;
          }
          scalar_t* o = head < h ? pq + (bt * h + head) * hd : pk + (bt * hkv + head - h) * hd;
#pragma omp simd
          for (int64_t i = 0; i < half; ++i) {
            const scalar_t x1 = x[i], x2 = x[i + half];
            o[i] = x1 * c[i] - x2 * s[i];
            o[i + half] = x2 * c[i] + x1 * s[i];
          }
        }
      }
    });
  });
  return {q, k, v};
}

// The transpose: d x1 = dy1 cos + dy2 sin, d x2 = dy2 cos - dy1 sin, written as d(qkv).
torch::Tensor rope_qkv_bwd(torch::Tensor dq, torch::Tensor dk, torch::Tensor dv,
                           torch::Tensor cos, torch::Tensor sin) {
  const int64_t B = dq.size(0), T = dq.size(1), h = dq.size(2), hd = dq.size(3), half = hd / 2;
  const int64_t hkv = dk.size(2), NH = h + 2 * hkv;
  auto dqkv = torch::empty({B, T, NH, hd}, dq.options());
  dispatch(dq, [&](auto zero) {
    using scalar_t = decltype(zero);
    const scalar_t* pq = dq.data_ptr<scalar_t>();
    const scalar_t* pk = dk.data_ptr<scalar_t>();
    const scalar_t* pv = dv.data_ptr<scalar_t>();
    const scalar_t* pc = cos.data_ptr<scalar_t>();
    const scalar_t* ps = sin.data_ptr<scalar_t>();
    scalar_t* px = dqkv.data_ptr<scalar_t>();
    at::parallel_for(0, B * T, 16, [&](int64_t begin, int64_t end) {
      for (int64_t bt = begin; bt < end; ++bt) {
        const int64_t t = bt % T;
        const scalar_t* c = pc + t * half;
        const scalar_t* s = ps + t * half;
        for (int64_t head = 0; head < NH; ++head) {
          scalar_t* x = px + (bt * NH + head) * hd;
          if (head >= h + hkv) {
            std::memcpy(x, pv + (bt * hkv + head - h - hkv) * hd, hd * sizeof(scalar_t));
            continue;
          }
          const scalar_t* g = head < h ? pq + (bt * h + head) * hd : pk + (bt * hkv + head - h) * hd;
#pragma omp simd
          for (int64_t i = 0; i < half; ++i) {
            const scalar_t g1 = g[i], g2 = g[i + half];
            x[i] = g1 * c[i] + g2 * s[i];
            x[i + half] = g2 * c[i] - g1 * s[i];
          }
        }
      }
    });
  });
  return dqkv;
}
"""

# -fopenmp (compile and link): at::parallel_for is inline and only runs in parallel
# when built with OpenMP; the process shares torch's own libgomp.
# -fno-trapping-math: without it gcc 12 won't vectorise vexp's clamp and floor (it
# must not raise FP exceptions the scalar code wouldn't); values are unchanged.
_EXT = CppExtension("cambrian_fused_ops", CPP_SOURCE,
                    ["rms_norm_fwd", "rms_norm_bwd", "swiglu_fwd", "swiglu_bwd",
                     "rope_qkv_fwd", "rope_qkv_bwd"],
                    what="fused RMSNorm / SwiGLU / RoPE kernels",
                    fallback="their pure-torch versions",
                    cflags=CFLAGS + ["-fno-trapping-math", "-fopenmp"], ldflags=["-fopenmp"])


def available() -> bool:
    return _EXT.load() is not None


def usable(*tensors: torch.Tensor) -> bool:
    """True when the kernels apply: CPU tensors of one dtype, float32 or float64, built extension."""
    dtype = tensors[0].dtype
    return (dtype in (torch.float32, torch.float64)
            and all(not t.is_cuda and t.device.type == "cpu" and t.dtype == dtype for t in tensors)
            and available())


class _RMSNormFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, eps: float):
        x2 = x.contiguous().view(-1, x.size(-1))  # (N, D)
        w = weight.contiguous()
        y, rstd = _EXT.load().rms_norm_fwd(x2, w, eps)
        ctx.save_for_backward(x2, w, rstd)
        return y.view(x.shape)

    @staticmethod
    def backward(ctx, dy):
        x2, w, rstd = ctx.saved_tensors
        dx, dw = _EXT.load().rms_norm_bwd(dy.contiguous().view(x2.shape), x2, w, rstd)
        return dx.view(dy.shape), dw, None


class _SwiGLUFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, gu):
        gu2 = gu.contiguous().view(-1, gu.size(-1))  # (N, 2H)
        ctx.save_for_backward(gu2)
        return _EXT.load().swiglu_fwd(gu2).view(*gu.shape[:-1], gu.size(-1) // 2)

    @staticmethod
    def backward(ctx, dout):
        (gu2,) = ctx.saved_tensors
        dgu = _EXT.load().swiglu_bwd(dout.contiguous().view(gu2.size(0), -1), gu2)
        return dgu.view(*dout.shape[:-1], gu2.size(-1))


class _RopeQKVFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, qkv, cos, sin, h: int, hkv: int):  # -> (B, T, heads, hd) x 3
        ctx.save_for_backward(cos, sin)
        return tuple(_EXT.load().rope_qkv_fwd(qkv.contiguous(), cos, sin, h, hkv))

    @staticmethod
    def backward(ctx, dq, dk, dv):
        cos, sin = ctx.saved_tensors
        # outputs the loss didn't use come as zeros (autograd materialises them)
        grads = [g.contiguous() for g in (dq, dk, dv)]
        return _EXT.load().rope_qkv_bwd(*grads, cos, sin), None, None, None, None


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """RMSNorm over the last dim. x: (..., D), weight: (D,)."""
    return _RMSNormFn.apply(x, weight, eps)


def swiglu(gu: torch.Tensor) -> torch.Tensor:
    """(..., 2H) gate then up -> silu(gate) * up (..., H)."""
    return _SwiGLUFn.apply(gu)


def rope_qkv(qkv: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, h: int, hkv: int):
    """qkv (B, T, h + 2 hkv, hd); cos, sin (T, hd/2) -> q (B, h, T, hd), k, v (B, hkv, T, hd)."""
    return tuple(z.transpose(1, 2) for z in _RopeQKVFn.apply(qkv, cos, sin, h, hkv))
