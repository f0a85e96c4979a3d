// The per-output arithmetic of the local dynamic filter, shared by the CUDA kernels and the host-compiled
// check against the PyTorch reference (plugins/tests/host_arithmetic.cpp):
//   out[n,c,y,x] = sum over taps t = (i, j) of a K x K window, row-major,
//                  spatial[n,t,y,x] * channel[n,c,t] * x[n,c, y + (i - K/2)*d, x + (j - K/2)*d]
// with zero padding and no kernel flip. Every kernel path accumulates in FP32 through ldfTapTerm, tap by tap
// in this order, so the host check covers the kernels' rounding too.
#pragma once

#include <cmath>

#if defined(__CUDACC__)
#define GLDFN_HOST_DEVICE __host__ __device__
#else
#define GLDFN_HOST_DEVICE
#endif

namespace gldfn
{

//! One tap's contribution added to an FP32 accumulator.
GLDFN_HOST_DEVICE inline float ldfTapTerm(float acc, float spatial, float channel, float x)
{
    return fmaf(spatial * channel, x, acc);
}

//! One output value. The accessors take the tap index t (spatialAt, channelAt) or the tap's offset from the
//! window's top-left corner in rows and columns (xAt), and return 0 for positions in the zero padding.
template <int K, typename XAt, typename SpatialAt, typename ChannelAt>
GLDFN_HOST_DEVICE inline float ldfOutput(int dilation, XAt const& xAt, SpatialAt const& spatialAt, ChannelAt const& channelAt)
{
    float acc = 0.F;
#if defined(__CUDACC__)
#pragma unroll
#endif
    for (int i = 0; i < K; ++i)
    {
#if defined(__CUDACC__)
#pragma unroll
#endif
        for (int j = 0; j < K; ++j)
        {
            int const t = i * K + j;
            acc = ldfTapTerm(acc, spatialAt(t), channelAt(t), xAt(i * dilation, j * dilation));
        }
    }
    return acc;
}

} // namespace gldfn
