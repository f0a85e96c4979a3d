// The vectorised CPU kernel, generic over an instruction set S (included by ldf_cpu_avx2.cpp and
// ldf_cpu_avx512.cpp, each compiled for its own set). S provides V (a vector of S::kLanes floats) and
// zero/set1/mul/fma, load/loadLanes/store/storeLanes for float and for IEEE half (uint16_t) storage.
//
// Per output row (image n, line y) and block of kChannelBlock channels: for each kLanes-wide run of columns, each
// tap t in row-major order loads the spatial weights once, multiplies them by each channel's weight and adds
// weight * shifted input to that channel's accumulator with one FMA: ldfTapTerm's arithmetic, tap by tap from
// 0, as the CUDA kernels do. Taps whose input row is outside the image are skipped (they add exact zeros);
// columns outside it are read as zeros through lane masks, only in the runs at the image's left and right edges.
#pragma once

#include "ldf_cpu.h"

#include <algorithm>
#include <cstdint>

// The tap and channel loops must unroll so that the accumulators stay in registers.
#define GLDFN_UNROLL _Pragma("GCC unroll 16")

namespace gldfn::cpu::simd
{

constexpr int kChannelBlock = 4; // channels sharing one load of the spatial weights

template <class S, class T, int K, int CB>
inline void channelBlock(T const* spatialRow, int64_t plane, T const* x, T* out, T const* channel, bool const* rowValid,
    int64_t const* rowOffset, int64_t width, int32_t dilation)
{
    using V = typename S::V;
    constexpr int kTaps = K * K;
    constexpr int kHalf = K / 2;
    constexpr int L = S::kLanes;
    int64_t const reach = static_cast<int64_t>(kHalf) * dilation;

    float weight[CB][kTaps];
    for (int cb = 0; cb < CB; ++cb)
    {
        for (int t = 0; t < kTaps; ++t)
        {
            if constexpr (sizeof(T) == sizeof(float))
            {
                weight[cb][t] = channel[cb * kTaps + t];
            }
            else
            {
                weight[cb][t] = S::halfToFloat(channel[cb * kTaps + t]);
            }
        }
    }

    for (int64_t x0 = 0; x0 < width; x0 += L)
    {
        int const lanes = static_cast<int>(std::min<int64_t>(L, width - x0));
        bool const interior = lanes == L && x0 >= reach && x0 + L + reach <= width;
        V acc[CB];
        GLDFN_UNROLL for (int cb = 0; cb < CB; ++cb)
        {
            acc[cb] = S::zero();
        }
        GLDFN_UNROLL for (int i = 0; i < K; ++i)
        {
            if (!rowValid[i])
            {
                continue;
            }
            GLDFN_UNROLL for (int j = 0; j < K; ++j)
            {
                int const t = i * K + j;
                int64_t const column = x0 + static_cast<int64_t>(j - kHalf) * dilation;
                T const* spatial = spatialRow + t * plane + x0;
                V const s = lanes == L ? S::load(spatial) : S::loadLanes(spatial, 0, lanes);
                if (interior)
                {
                    GLDFN_UNROLL for (int cb = 0; cb < CB; ++cb)
                    {
                        V const w = S::mul(s, S::set1(weight[cb][t]));
                        acc[cb] = S::fma(w, S::load(x + cb * plane + rowOffset[i] + column), acc[cb]);
                    }
                }
                else
                {
                    // Lanes whose column lies in the image: [lo, hi); the others read the zero padding.
                    int const lo = static_cast<int>(std::clamp<int64_t>(-column, 0, L));
                    int const hi = static_cast<int>(std::clamp<int64_t>(width - column, lo, L));
                    GLDFN_UNROLL for (int cb = 0; cb < CB; ++cb)
                    {
                        V const w = S::mul(s, S::set1(weight[cb][t]));
                        acc[cb] = S::fma(w, S::loadLanes(x + cb * plane + rowOffset[i] + column, lo, hi), acc[cb]);
                    }
                }
            }
        }
        GLDFN_UNROLL for (int cb = 0; cb < CB; ++cb)
        {
            T* o = out + cb * plane + x0;
            if (lanes == L)
            {
                S::store(o, acc[cb]);
            }
            else
            {
                S::storeLanes(o, acc[cb], lanes);
            }
        }
    }
}

template <class S, class T, int K>
void rowsOf(LdfArgs const& a, int64_t rowBegin, int64_t rowEnd)
{
    constexpr int kTaps = K * K;
    constexpr int kHalf = K / 2;
    int64_t const channels = a.channels;
    int64_t const height = a.height;
    int64_t const width = a.width;
    int64_t const plane = height * width;
    auto const* x = static_cast<T const*>(a.x);
    auto const* spatial = static_cast<T const*>(a.spatial);
    auto const* channel = static_cast<T const*>(a.channel);
    auto* out = static_cast<T*>(a.out);

    for (int64_t r = rowBegin; r < rowEnd; ++r)
    {
        int64_t const n = r / height;
        int64_t const y = r % height;
        T const* spatialRow = spatial + n * kTaps * plane + y * width;
        bool rowValid[K];
        int64_t rowOffset[K];
        for (int i = 0; i < K; ++i)
        {
            int64_t const yy = y + static_cast<int64_t>(i - kHalf) * a.dilation;
            rowValid[i] = yy >= 0 && yy < height;
            rowOffset[i] = yy * width;
        }
        int64_t c = 0;
        for (; c + kChannelBlock <= channels; c += kChannelBlock)
        {
            int64_t const first = n * channels + c;
            channelBlock<S, T, K, kChannelBlock>(spatialRow, plane, x + first * plane, out + first * plane + y * width,
                channel + first * kTaps, rowValid, rowOffset, width, a.dilation);
        }
        for (; c < channels; ++c)
        {
            int64_t const first = n * channels + c;
            channelBlock<S, T, K, 1>(spatialRow, plane, x + first * plane, out + first * plane + y * width,
                channel + first * kTaps, rowValid, rowOffset, width, a.dilation);
        }
    }
}

template <class S, class T>
void rowsOfType(LdfArgs const& a, int64_t rowBegin, int64_t rowEnd)
{
    switch (a.kernelSize)
    {
    case 1: rowsOf<S, T, 1>(a, rowBegin, rowEnd); break;
    case 3: rowsOf<S, T, 3>(a, rowBegin, rowEnd); break;
    case 5: rowsOf<S, T, 5>(a, rowBegin, rowEnd); break;
    case 7: rowsOf<S, T, 7>(a, rowBegin, rowEnd); break;
    default: break; // refused when the kernel is created
    }
}

template <class S>
void rows(LdfArgs const& a, int64_t rowBegin, int64_t rowEnd)
{
    if (a.half)
    {
        rowsOfType<S, uint16_t>(a, rowBegin, rowEnd);
    }
    else
    {
        rowsOfType<S, float>(a, rowBegin, rowEnd);
    }
}

//! Half loads and stores of a partial vector through a small zero-filled buffer (edges and tails only).
template <class S>
typename S::V loadHalfLanes(uint16_t const* p, int lo, int hi)
{
    alignas(64) uint16_t buffer[S::kLanes] = {};
    for (int l = lo; l < hi; ++l)
    {
        buffer[l] = p[l];
    }
    return S::load(static_cast<uint16_t const*>(buffer));
}

template <class S>
void storeHalfLanes(uint16_t* p, typename S::V v, int lanes)
{
    alignas(64) uint16_t buffer[S::kLanes];
    S::store(static_cast<uint16_t*>(buffer), v);
    std::copy_n(buffer, lanes, p);
}

} // namespace gldfn::cpu::simd
