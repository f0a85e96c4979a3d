// CUDA kernels of the local dynamic filter and the launch planning and dispatch around them. Included by
// ldf_kernel.cu, which launches them on a GPU, and by plugins/tests/kernel_emulation.cpp, which runs the very
// same kernel code block by block on CPU threads so that CI checks it without a GPU.
//
// Tiled kernel (the fast path): a block owns a tile of kTileW x TH output pixels of one image and a chunk of
// up to kMaxChannelsPerBlock channels. It keeps the tile's spatial filters (registers for K <= 3, shared
// memory above) and the chunk's channel filters for the whole chunk, and stages the input tiles (plus halo)
// of up to 4 channels at a time in shared memory. Each tile row is read from global memory as 16-byte items that
// start at 16-byte aligned addresses (vector loads wherever an item lies inside the image, scalar loads with zero
// padding at the borders) and is staged as those raw items, one 16-byte shared store each, in the input's own
// type: the row's first element then sits at a per-row phase (its address modulo 16 bytes), which the reads
// apply, converting to FP32 as they go (FP16: 32-bit reads realigned by a funnel shift; FP32: 64-bit reads and a
// select by parity). Converting while staging instead took 8 scalar stores per item that hit the same 4 banks
// across a warp. The next stage is fetched into registers while the current one is computed. A warp covers one
// tile row and each thread computes 2 neighbouring outputs of it, so a warp's shared reads are consecutive
// 32-bit (FP16) or 64-bit (FP32) words, free of bank conflicts for any row pitch and phase (with 4 outputs per
// thread and half-warps on two rows, the first H200 run measured 35 % (FP16) and 67 % (FP32) of the shared-load
// wavefronts as conflicts); stores are vectorized when aligned.
//
// Direct kernel (fallback): one output per thread straight from global memory, for windows whose halo does
// not fit the tiled kernel's shared-memory and register budget (large kernel_size x dilation).
#include "ldf_arithmetic.h"
#include "ldf_kernel.h"

#include <cuda_fp16.h>

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>

#ifndef GLDFN_DYNAMIC_SHARED_MEMORY
#define GLDFN_DYNAMIC_SHARED_MEMORY(type, name) extern __shared__ type name[]
#endif

namespace gldfn
{
namespace detail
{

constexpr int kThreadsX = 32; // a warp covers one tile row, so its shared reads are consecutive words
constexpr int kOutPerThread = 2;
constexpr int kTileW = kThreadsX * kOutPerThread;
static_assert(kOutPerThread == 2, "storeTwo and spatialAt handle two outputs per thread");
constexpr int kMaxChannelsPerBlock = 8;
constexpr int kVecBytes = 16;
constexpr size_t kMaxTiledSharedBytes = 48 * 1024;
constexpr int kDirectThreads = 256;

template <int K>
__host__ __device__ constexpr int tileRows()
{
    return K <= 3 ? 8 : (K == 5 ? 4 : 2);
}

template <int K>
__host__ __device__ constexpr bool spatialInRegisters()
{
    return K <= 3;
}

__device__ __forceinline__ float toFloat(float v)
{
    return v;
}

__device__ __forceinline__ float toFloat(__half v)
{
    return __half2float(v);
}

template <typename T>
__device__ __forceinline__ T fromFloat(float v);

template <>
__device__ __forceinline__ float fromFloat<float>(float v)
{
    return v;
}

template <>
__device__ __forceinline__ __half fromFloat<__half>(float v)
{
    return __float2half_rn(v);
}

__device__ __forceinline__ void storeTwo(float* dst, float const (&v)[kOutPerThread])
{
    *reinterpret_cast<float2*>(dst) = make_float2(v[0], v[1]);
}

__device__ __forceinline__ void storeTwo(__half* dst, float const (&v)[kOutPerThread])
{
    *reinterpret_cast<__half2*>(dst) = __floats2half2_rn(v[0], v[1]);
}

//! Geometry of the shared-memory input tile; the same arithmetic runs on the host (planning) and the device.
struct TileGeometry
{
    int radius;
    int rows;
    int cols;
    int slots;    //!< 16-byte load slots per row, enough for any alignment of the row's first element
    int rowBytes; //!< a staged row: its slots and one spare, which the last funnel-shifted read of a row may touch

    __host__ __device__ constexpr TileGeometry(int kernelSize, int tileRowsCount, int dilation, int elementBytes)
        : radius((kernelSize / 2) * dilation)
        , rows(tileRowsCount + 2 * radius)
        , cols(kTileW + 2 * radius)
        , slots((cols + 2 * (kVecBytes / elementBytes) - 2) / (kVecBytes / elementBytes))
        , rowBytes((slots + 1) * kVecBytes)
    {
    }

    __host__ __device__ constexpr int itemsPerChannel() const
    {
        return rows * slots;
    }

    __host__ __device__ constexpr int tileBytes() const
    {
        return rows * rowBytes;
    }
};

//! S consecutive values of a staged row from element ``first`` on, as FP32.
template <int S>
__device__ __forceinline__ void readRow(float const* row, int first, float (&seg)[S])
{
    // 64-bit reads from the even element at or below ``first`` (lanes read consecutive pairs: no bank
    // conflicts), then a select by the parity of ``first``; the last pair may lie in the row's spare slot.
    constexpr int kPairs = S / 2 + 1;
    auto const* pairs = reinterpret_cast<float2 const*>(row) + (first >> 1);
    bool const odd = (first & 1) != 0;
    float v[2 * kPairs];
#pragma unroll
    for (int k = 0; k < kPairs; ++k)
    {
        float2 const pair = pairs[k];
        v[2 * k] = pair.x;
        v[2 * k + 1] = pair.y;
    }
#pragma unroll
    for (int s = 0; s < S; ++s)
    {
        seg[s] = odd ? v[s + 1] : v[s];
    }
}

template <int S>
__device__ __forceinline__ void readRow(__half const* row, int first, float (&seg)[S])
{
    // 32-bit reads from the even element at or below ``first``, realigned by 16 bits when ``first`` is odd (a
    // funnel shift); the last pair's upper word may lie in the row's spare slot.
    auto const* words = reinterpret_cast<unsigned int const*>(row) + (first >> 1);
    unsigned int const shift = (first & 1) * 16U;
#pragma unroll
    for (int k = 0; k < (S + 1) / 2; ++k)
    {
        unsigned long long const pair
            = (static_cast<unsigned long long>(words[k + 1]) << 32) | static_cast<unsigned long long>(words[k]);
        unsigned int const aligned = static_cast<unsigned int>(pair >> shift);
        __half_raw lo;
        lo.x = static_cast<unsigned short>(aligned & 0xFFFFU);
        seg[2 * k] = __half2float(__half(lo));
        if (2 * k + 1 < S)
        {
            __half_raw hi;
            hi.x = static_cast<unsigned short>(aligned >> 16);
            seg[2 * k + 1] = __half2float(__half(hi));
        }
    }
}

//! Compile-time plan of one tiled-kernel instantiation. With a compile-time dilation (D > 0) a stage loads
//! as many channels' tiles (up to 4) as kMaxItemsPerThread 16-byte loads per thread allow, which keeps more
//! bytes in flight per block; with a runtime dilation a stage is one channel.
//!
//! Occupancy of the main case (k = 3, dilation 1): each thread keeps its 2 outputs' 18 spatial filter values in
//! registers and at most 2 loads of 16 bytes in flight (FP16: 4 channels per stage, FP32: 2), which fits the 64
//! registers kMinBlocksPerSm = 4 asks of ptxas for 256-thread blocks (SM 90, nvcc 13.0: FP16 62, FP32 64, no
//! spills): 4 blocks, 32 of 64 warps (50 %). With 4 outputs per thread and 128-thread blocks the kernel needed
//! 93-94 registers, 5 blocks per SM, 31 % (measured on an H200). Shared memory (FP16: 7.2 KB per block, FP32:
//! 6.2 KB) does not limit. The k > 3 kernels keep no bound (0).
template <typename T, int K, int D>
struct TiledPlan
{
    static constexpr bool kCompact = K <= 3 && D > 0;
    static constexpr int kTileRows = tileRows<K>();
    static constexpr int kThreads = kThreadsX * kTileRows;
    static constexpr int kMaxItemsPerThread = 2;
    static constexpr int kMinBlocksPerSm = K <= 3 ? 4 : 0;
    static constexpr int kItemsPerChannel
        = D > 0 ? TileGeometry(K, kTileRows, D, sizeof(T)).itemsPerChannel() : kMaxItemsPerThread * kThreads;
    static constexpr int kChannelsPerStage = std::min(4, kMaxItemsPerThread * kThreads / kItemsPerChannel);
    static constexpr int kItemsPerThread
        = D > 0 ? (kChannelsPerStage * kItemsPerChannel + kThreads - 1) / kThreads : kMaxItemsPerThread;
};

//! Channel filter values per channel in shared memory: the taps padded to whole 16-byte vectors, so that a thread
//! reads a channel's filter with k*k/4 rounded up 128-bit broadcast reads.
__host__ __device__ constexpr int paddedTaps(int kernelSize)
{
    return (kernelSize * kernelSize + 3) / 4 * 4;
}

__host__ __device__ inline size_t tiledSharedBytes(
    int kernelSize, int tileRowsCount, int channelsPerStage, bool spatialShared, TileGeometry const& g)
{
    size_t const taps = static_cast<size_t>(kernelSize) * kernelSize;
    return static_cast<size_t>(channelsPerStage) * g.tileBytes()
        + sizeof(float)
        * (kMaxChannelsPerBlock * static_cast<size_t>(paddedTaps(kernelSize))
            + (spatialShared ? taps * tileRowsCount * kTileW : 0));
}

template <typename T, int K, int D>
__global__ void __launch_bounds__(TiledPlan<T, K, D>::kThreads, TiledPlan<T, K, D>::kMinBlocksPerSm)
    ldfTiledKernel(T const* __restrict__ x,
    T const* __restrict__ spatial, T const* __restrict__ channel, T* __restrict__ out, int channels, int height,
    int width, int runtimeDilation, int channelsPerBlock, int tilesX, int tilesY, int chunks)
{
    using Plan = TiledPlan<T, K, D>;
    constexpr int TH = Plan::kTileRows;
    constexpr int KK = K * K;
    constexpr int KP = paddedTaps(K);
    constexpr int V = kVecBytes / static_cast<int>(sizeof(T));
    constexpr int kThreads = Plan::kThreads;
    constexpr int CS = Plan::kChannelsPerStage;
    constexpr bool kSpatialRegs = spatialInRegisters<K>();

    int const d = D > 0 ? D : runtimeDilation;
    TileGeometry const g(K, TH, d, sizeof(T));
    int const itemsPerChannel = g.itemsPerChannel();
    int const stageItems = CS * itemsPerChannel;
    int const tileBytes = g.tileBytes();

    GLDFN_DYNAMIC_SHARED_MEMORY(float4, sharedRaw);
    unsigned char* xs = reinterpret_cast<unsigned char*>(sharedRaw); // CS input tiles, raw items of T
    float* chS = reinterpret_cast<float*>(xs + CS * tileBytes);
    float* spS = chS + kMaxChannelsPerBlock * KP;

    int64_t block = blockIdx.x;
    int const chunk = static_cast<int>(block % chunks);
    block /= chunks;
    int const tileX = static_cast<int>(block % tilesX);
    block /= tilesX;
    int const tileY = static_cast<int>(block % tilesY);
    int64_t const n = block / tilesY;

    int const c0 = chunk * channelsPerBlock;
    int const cEnd = min(channels, c0 + channelsPerBlock);
    int const tx = threadIdx.x;
    int const ty = threadIdx.y;
    int const tid = ty * kThreadsX + tx;
    int const oy = tileY * TH + ty;
    int const ox = tileX * kTileW + tx * kOutPerThread;
    int const gy0 = tileY * TH - g.radius;
    int const gx0 = tileX * kTileW - g.radius;
    int64_t const hw = static_cast<int64_t>(height) * width;
    bool const active = oy < height && ox < width;

    for (int i = tid; i < (cEnd - c0) * KK; i += kThreads)
    {
        chS[(i / KK) * KP + i % KK] = toFloat(channel[(n * channels + c0) * KK + i]);
    }

    float spR[kSpatialRegs ? KK : 1][kOutPerThread];
    if constexpr (kSpatialRegs)
    {
#pragma unroll
        for (int t = 0; t < KK; ++t)
        {
#pragma unroll
            for (int p = 0; p < kOutPerThread; ++p)
            {
                spR[t][p] = (active && ox + p < width)
                    ? toFloat(spatial[(n * KK + t) * hw + static_cast<int64_t>(oy) * width + ox + p])
                    : 0.F;
            }
        }
    }
    else
    {
        for (int i = tid; i < KK * TH * kTileW; i += kThreads)
        {
            int const t = i / (TH * kTileW);
            int const yy = tileY * TH + (i / kTileW) % TH;
            int const xx = tileX * kTileW + i % kTileW;
            spS[i] = (yy < height && xx < width)
                ? toFloat(spatial[(n * KK + t) * hw + static_cast<int64_t>(yy) * width + xx])
                : 0.F;
        }
    }

    // A row's phase: the element index of its first tile column (global column gx0) modulo V, which is where that
    // element sits in the row's first 16-byte item. For channel c and tile row r it is
    // (phase0 + c * hw + r * width) mod V, with phase0 that of channel 0, tile row 0 (V is a power of two).
    int const phase0 = static_cast<int>(
        (reinterpret_cast<uintptr_t>(x) / sizeof(T) + static_cast<uint64_t>(n * channels * hw)
            + static_cast<uint64_t>(static_cast<int64_t>(gy0) * width + gx0))
        & (V - 1));
    int const hwPhase = static_cast<int>(hw & (V - 1));
    int const widthPhase = width & (V - 1);
    auto channelPhase = [&](int c) { return (c & (V - 1)) * hwPhase; };

    // Item = (channel of the stage, tile row, load slot) of the thread's k-th item; no address arithmetic (with a
    // compile-time dilation the divisors are constants), so recomputing it costs less than keeping it in registers.
    struct Item
    {
        int cs;
        int row;
        int slot;
    };
    auto decode = [&](int k) {
        int const item = tid + k * kThreads;
        Item it;
        it.cs = item / itemsPerChannel;
        int const rem = item - it.cs * itemsPerChannel;
        it.row = rem / g.slots;
        it.slot = rem - it.row * g.slots;
        return it;
    };
    auto hasItem = [&](int k, int cBase) {
        int const item = tid + k * kThreads;
        return item < stageItems && cBase + item / itemsPerChannel < cEnd;
    };

    uint4 raw[Plan::kItemsPerThread];
    auto fetch = [&](int cBase) {
#pragma unroll
        for (int k = 0; k < Plan::kItemsPerThread; ++k)
        {
            if (hasItem(k, cBase))
            {
                Item const it = decode(k);
                int const c = cBase + it.cs;
                int const phase = (phase0 + channelPhase(c) + it.row * widthPhase) & (V - 1);
                int const firstCol = gx0 - phase + it.slot * V;
                int const gy = gy0 + it.row;
                T const* plane = x + (n * channels + c) * hw;
                bool const rowInside = gy >= 0 && gy < height;
                if (rowInside && firstCol >= 0 && firstCol + V <= width)
                {
                    raw[k] = *reinterpret_cast<uint4 const*>(plane + static_cast<int64_t>(gy) * width + firstCol);
                }
                else
                {
                    T* e = reinterpret_cast<T*>(&raw[k]);
#pragma unroll
                    for (int q = 0; q < V; ++q)
                    {
                        int const gx = firstCol + q;
                        e[q] = (rowInside && gx >= 0 && gx < width) ? plane[static_cast<int64_t>(gy) * width + gx]
                                                                    : fromFloat<T>(0.F);
                    }
                }
            }
        }
    };
    auto stage = [&](int cBase) {
#pragma unroll
        for (int k = 0; k < Plan::kItemsPerThread; ++k)
        {
            if (hasItem(k, cBase))
            {
                Item const it = decode(k);
                *reinterpret_cast<uint4*>(xs + it.cs * tileBytes + it.row * g.rowBytes + it.slot * kVecBytes) = raw[k];
            }
        }
    };
    // The thread's spatial filter values of tap t (shared memory: one 64-bit read, lanes consecutive).
    auto spatialAt = [&](int t, float (&sp)[kOutPerThread]) {
        if constexpr (kSpatialRegs)
        {
            sp[0] = spR[t][0];
            sp[1] = spR[t][1];
        }
        else
        {
            float2 const pair = *reinterpret_cast<float2 const*>(spS + (t * TH + ty) * kTileW + tx * kOutPerThread);
            sp[0] = pair.x;
            sp[1] = pair.y;
        }
    };
    int const rowPhase = phase0 + ty * widthPhase; // this thread's first window row, channel 0
    auto compute = [&](int c, unsigned char const* tile) {
        float w[KP];
        auto const* wv = reinterpret_cast<float4 const*>(chS + (c - c0) * KP);
#pragma unroll
        for (int q = 0; q < KP / 4; ++q)
        {
            float4 const f = wv[q];
            w[4 * q] = f.x;
            w[4 * q + 1] = f.y;
            w[4 * q + 2] = f.z;
            w[4 * q + 3] = f.w;
        }
        float acc[kOutPerThread] = {0.F, 0.F};
        int const cPhase = channelPhase(c);
#pragma unroll
        for (int i = 0; i < K; ++i)
        {
            T const* row = reinterpret_cast<T const*>(tile + (ty + i * d) * g.rowBytes);
            int const first = ((rowPhase + cPhase + i * d * widthPhase) & (V - 1)) + tx * kOutPerThread;
            if constexpr (D > 0)
            {
                float seg[kOutPerThread + (K - 1) * D];
                readRow(row, first, seg);
#pragma unroll
                for (int j = 0; j < K; ++j)
                {
                    float sp[kOutPerThread];
                    spatialAt(i * K + j, sp);
#pragma unroll
                    for (int p = 0; p < kOutPerThread; ++p)
                    {
                        acc[p] = ldfTapTerm(acc[p], sp[p], w[i * K + j], seg[p + j * D]);
                    }
                }
            }
            else
            {
#pragma unroll
                for (int j = 0; j < K; ++j)
                {
                    float sp[kOutPerThread];
                    spatialAt(i * K + j, sp);
#pragma unroll
                    for (int p = 0; p < kOutPerThread; ++p)
                    {
                        acc[p] = ldfTapTerm(acc[p], sp[p], w[i * K + j], toFloat(row[first + p + j * d]));
                    }
                }
            }
        }
        T* outRow = out + (n * channels + c) * hw + static_cast<int64_t>(oy) * width;
        if (ox + kOutPerThread <= width
            && reinterpret_cast<uintptr_t>(outRow + ox) % (kOutPerThread * sizeof(T)) == 0)
        {
            storeTwo(outRow + ox, acc);
        }
        else
        {
#pragma unroll
            for (int p = 0; p < kOutPerThread; ++p)
            {
                if (ox + p < width)
                {
                    outRow[ox + p] = fromFloat<T>(acc[p]);
                }
            }
        }
    };

    if (c0 < cEnd)
    {
        fetch(c0);
    }
    for (int cBase = c0; cBase < cEnd; cBase += CS)
    {
        __syncthreads(); // the previous stage's reads of xs are done (first pass: the filters are staged)
        stage(cBase);
        __syncthreads();
        if (cBase + CS < cEnd)
        {
            fetch(cBase + CS); // in flight while this stage is computed
        }
        if (active)
        {
#pragma unroll
            for (int cs = 0; cs < CS; ++cs)
            {
                if (cBase + cs < cEnd)
                {
                    compute(cBase + cs, xs + cs * tileBytes);
                }
            }
        }
    }
}

template <typename T, int K>
__global__ void __launch_bounds__(kDirectThreads) ldfDirectKernel(T const* __restrict__ x,
    T const* __restrict__ spatial, T const* __restrict__ channel, T* __restrict__ out, int64_t channels,
    int64_t height, int64_t width, int dilation, int64_t total)
{
    constexpr int KK = K * K;
    int64_t const hw = height * width;
    int64_t const radius = (K / 2) * dilation;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    {
        int64_t const ox = i % width;
        int64_t const oy = (i / width) % height;
        int64_t const nc = i / hw;
        int64_t const n = nc / channels;
        T const* plane = x + nc * hw;
        float const v = ldfOutput<K>(
            dilation,
            [&](int dy, int dx) {
                int64_t const yy = oy - radius + dy;
                int64_t const xx = ox - radius + dx;
                return (yy >= 0 && yy < height && xx >= 0 && xx < width) ? toFloat(plane[yy * width + xx]) : 0.F;
            },
            [&](int t) { return toFloat(spatial[(n * KK + t) * hw + oy * width + ox]); },
            [&](int t) { return toFloat(channel[nc * KK + t]); });
        out[i] = fromFloat<T>(v);
    }
}

//! Launch configuration of the tiled kernel for one instantiation; planTiled() fills it when the window fits.
struct TiledLaunch
{
    unsigned blocks;
    int tileRows;
    size_t sharedBytes;
    int channelsPerBlock;
    int tilesX;
    int tilesY;
    int chunks;
};

struct DirectLaunch
{
    unsigned blocks;
    int threads;
    int64_t total;
};

template <typename T, int K, int D>
bool planTiled(LdfShape const& s, int dilation, TiledLaunch& plan)
{
    using Plan = TiledPlan<T, K, D>;
    static_assert(Plan::kItemsPerThread >= 0, "a negative load budget");
    if constexpr (Plan::kChannelsPerStage < 1)
    {
        return false; // this window's tile does not fit the per-thread load budget
    }
    else
    {
        constexpr int TH = Plan::kTileRows;
        TileGeometry const g(K, TH, dilation, sizeof(T));
        size_t const sharedBytes = tiledSharedBytes(K, TH, Plan::kChannelsPerStage, !spatialInRegisters<K>(), g);
        int const channelsPerBlock = static_cast<int>(std::min<int64_t>(s.channels, kMaxChannelsPerBlock));
        int64_t const chunks = (s.channels + channelsPerBlock - 1) / channelsPerBlock;
        int64_t const tilesX = (s.width + kTileW - 1) / kTileW;
        int64_t const tilesY = (s.height + TH - 1) / TH;
        int64_t const blocks = chunks * tilesX * tilesY * s.batch;
        bool const fits = sharedBytes <= kMaxTiledSharedBytes
            && Plan::kChannelsPerStage * g.itemsPerChannel() <= Plan::kItemsPerThread * Plan::kThreads
            && blocks <= INT_MAX && s.height <= INT_MAX && s.width <= INT_MAX && s.channels <= INT_MAX;
        if (fits)
        {
            plan = TiledLaunch{static_cast<unsigned>(blocks), TH, sharedBytes, channelsPerBlock,
                static_cast<int>(tilesX), static_cast<int>(tilesY), static_cast<int>(chunks)};
        }
        return fits;
    }
}

inline DirectLaunch planDirect(LdfShape const& s)
{
    int64_t const total = s.batch * s.channels * s.height * s.width;
    int64_t const blocks = std::min<int64_t>((total + kDirectThreads - 1) / kDirectThreads, int64_t{1} << 20);
    return DirectLaunch{static_cast<unsigned>(blocks), kDirectThreads, total};
}

//! Picks the kernel for (T, K, dilation) and hands it with its plan to the launcher, which provides
//! tiled<T, K, D>(plan, ...) and direct<T, K>(plan, ...).
template <typename T, int K, typename Launcher>
cudaError_t dispatchKernelSize(Launcher& launcher, LdfShape const& s, int dilation, T const* x, T const* sp,
    T const* ch, T* out)
{
    TiledLaunch plan{};
    if (K == 1 || dilation == 1)
    {
        if (planTiled<T, K, 1>(s, 1, plan))
        {
            if constexpr (TiledPlan<T, K, 1>::kChannelsPerStage >= 1)
            {
                return launcher.template tiled<T, K, 1>(plan, s, 1, x, sp, ch, out);
            }
        }
    }
    else if constexpr (K > 1)
    {
        if (planTiled<T, K, 0>(s, dilation, plan))
        {
            return launcher.template tiled<T, K, 0>(plan, s, dilation, x, sp, ch, out);
        }
    }
    return launcher.template direct<T, K>(planDirect(s), s, dilation, x, sp, ch, out);
}

template <typename T, typename Launcher>
cudaError_t dispatchTyped(Launcher& launcher, LdfShape const& s, int32_t kernelSize, int32_t dilation, void const* x,
    void const* sp, void const* ch, void* out)
{
    auto const* xt = static_cast<T const*>(x);
    auto const* st = static_cast<T const*>(sp);
    auto const* ct = static_cast<T const*>(ch);
    auto* ot = static_cast<T*>(out);
    switch (kernelSize)
    {
    case 1: return dispatchKernelSize<T, 1>(launcher, s, dilation, xt, st, ct, ot);
    case 3: return dispatchKernelSize<T, 3>(launcher, s, dilation, xt, st, ct, ot);
    case 5: return dispatchKernelSize<T, 5>(launcher, s, dilation, xt, st, ct, ot);
    case 7: return dispatchKernelSize<T, 7>(launcher, s, dilation, xt, st, ct, ot);
    default: return cudaErrorInvalidValue;
    }
}

//! Argument checks and dtype dispatch shared by every launcher.
template <typename Launcher>
cudaError_t dispatchLocalDynamicFilter(Launcher& launcher, LdfDataType dtype, LdfShape const& shape,
    int32_t kernelSize, int32_t dilation, void const* x, void const* spatial, void const* channel, void* out)
{
    if (!ldfKernelSizeSupported(kernelSize) || dilation < 1 || shape.batch < 0 || shape.channels < 0
        || shape.height < 0 || shape.width < 0)
    {
        return cudaErrorInvalidValue;
    }
    if (shape.batch == 0 || shape.channels == 0 || shape.height == 0 || shape.width == 0)
    {
        return cudaSuccess;
    }
    if (x == nullptr || spatial == nullptr || channel == nullptr || out == nullptr)
    {
        return cudaErrorInvalidValue;
    }
    switch (dtype)
    {
    case LdfDataType::kFLOAT32:
        return dispatchTyped<float>(launcher, shape, kernelSize, dilation, x, spatial, channel, out);
    case LdfDataType::kFLOAT16:
        return dispatchTyped<__half>(launcher, shape, kernelSize, dilation, x, spatial, channel, out);
    }
    return cudaErrorInvalidValue;
}

} // namespace detail
} // namespace gldfn
