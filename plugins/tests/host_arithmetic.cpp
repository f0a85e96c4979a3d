// The kernels' per-output arithmetic (ldf_arithmetic.h) compiled for the host, so CI can compare it with the
// PyTorch reference without a GPU. Built as a shared library and called through ctypes by
// tests/test_plugin_kernel.py. FP32 tensors, NCHW, contiguous.
#include "ldf_arithmetic.h"

#include <cstdint>

namespace
{
template <int K>
void filterAll(float const* x, float const* spatial, float const* channel, float* out, int64_t n, int64_t c,
    int64_t h, int64_t w, int dilation)
{
    int64_t const hw = h * w;
    int64_t const radius = (K / 2) * dilation;
    for (int64_t b = 0; b < n; ++b)
        for (int64_t ch = 0; ch < c; ++ch)
            for (int64_t y = 0; y < h; ++y)
                for (int64_t xx = 0; xx < w; ++xx)
                {
                    float const* plane = x + (b * c + ch) * hw;
                    out[(b * c + ch) * hw + y * w + xx] = gldfn::ldfOutput<K>(
                        dilation,
                        [&](int dy, int dx) {
                            int64_t const yy = y - radius + dy;
                            int64_t const xc = xx - radius + dx;
                            return (yy >= 0 && yy < h && xc >= 0 && xc < w) ? plane[yy * w + xc] : 0.F;
                        },
                        [&](int t) { return spatial[(b * K * K + t) * hw + y * w + xx]; },
                        [&](int t) { return channel[(b * c + ch) * K * K + t]; });
                }
}
} // namespace

extern "C" int ldf_host_filter(float const* x, float const* spatial, float const* channel, float* out, int64_t n,
    int64_t c, int64_t h, int64_t w, int kernelSize, int dilation)
{
    switch (kernelSize)
    {
    case 1: filterAll<1>(x, spatial, channel, out, n, c, h, w, dilation); return 0;
    case 3: filterAll<3>(x, spatial, channel, out, n, c, h, w, dilation); return 0;
    case 5: filterAll<5>(x, spatial, channel, out, n, c, h, w, dilation); return 0;
    case 7: filterAll<7>(x, spatial, channel, out, n, c, h, w, dilation); return 0;
    default: return -1;
    }
}
