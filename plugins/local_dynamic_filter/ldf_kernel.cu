// CUDA kernels of the local dynamic filter.
//
// Tiled kernel (the fast path): a block owns a tile of kTileW x TH output pixels of one image and a chunk of
// up to kMaxChannelsPerBlock channels. It keeps the tile's spatial filters (registers for K <= 3, shared
// memory above) and the chunk's channel filters for the whole chunk, and for each channel stages the input
// tile plus its halo in shared memory as FP32. Global loads are 16-byte vectors wherever a row segment is
// aligned and inside the image (scalar loads with zero padding at the borders), and the next channel's tile
// is fetched into registers while the current one is computed. Each thread computes 4 neighbouring outputs
// of a row; stores are vectorized when aligned.
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

namespace gldfn
{
namespace
{

constexpr int kThreadsX = 16;
constexpr int kOutPerThread = 4;
constexpr int kTileW = kThreadsX * kOutPerThread;
constexpr int kMaxChannelsPerBlock = 16;
constexpr int kPrefetchItems = 4;
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

__device__ __forceinline__ void storeFour(float* dst, float const (&v)[kOutPerThread])
{
    *reinterpret_cast<float4*>(dst) = make_float4(v[0], v[1], v[2], v[3]);
}

__device__ __forceinline__ void storeFour(__half* dst, float const (&v)[kOutPerThread])
{
    __half2 const lo = __floats2half2_rn(v[0], v[1]);
    __half2 const hi = __floats2half2_rn(v[2], v[3]);
    uint2 packed;
    packed.x = *reinterpret_cast<unsigned int const*>(&lo);
    packed.y = *reinterpret_cast<unsigned int const*>(&hi);
    *reinterpret_cast<uint2*>(dst) = packed;
}

//! Geometry of the shared-memory input tile; the same arithmetic runs on the host (planning) and the device.
struct TileGeometry
{
    int radius;
    int rows;
    int cols;
    int pitch; //!< cols rounded up to a multiple of 4 floats, so compute reads are float4-aligned
    int slots; //!< 16-byte load slots per row, enough for any alignment of the row's first element

    __host__ __device__ TileGeometry(int kernelSize, int tileRowsCount, int dilation, int elementBytes)
    {
        int const vec = kVecBytes / elementBytes;
        radius = (kernelSize / 2) * dilation;
        rows = tileRowsCount + 2 * radius;
        cols = kTileW + 2 * radius;
        pitch = (cols + 3) / 4 * 4;
        slots = (cols + 2 * vec - 2) / vec;
    }
};

__host__ __device__ inline size_t tiledSharedBytes(int kernelSize, int tileRowsCount, bool spatialShared, TileGeometry const& g)
{
    size_t const taps = static_cast<size_t>(kernelSize) * kernelSize;
    return sizeof(float)
        * (static_cast<size_t>(g.rows) * g.pitch + kMaxChannelsPerBlock * taps
            + (spatialShared ? taps * tileRowsCount * kTileW : 0));
}

template <typename T, int K, int D>
__global__ void __launch_bounds__(kThreadsX * tileRows<K>()) ldfTiledKernel(T const* __restrict__ x,
    T const* __restrict__ spatial, T const* __restrict__ channel, T* __restrict__ out, int channels, int height,
    int width, int runtimeDilation, int channelsPerBlock, int tilesX, int tilesY, int chunks)
{
    constexpr int TH = tileRows<K>();
    constexpr int KK = K * K;
    constexpr int V = kVecBytes / static_cast<int>(sizeof(T));
    constexpr int kThreads = kThreadsX * TH;
    constexpr bool kSpatialRegs = spatialInRegisters<K>();

    int const d = D > 0 ? D : runtimeDilation;
    TileGeometry const g(K, TH, d, sizeof(T));
    int const items = g.rows * g.slots;

    extern __shared__ float4 sharedRaw[];
    float* xs = reinterpret_cast<float*>(sharedRaw);
    float* chS = xs + g.rows * g.pitch;
    float* spS = chS + kMaxChannelsPerBlock * KK;

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
        chS[i] = toFloat(channel[(n * channels + c0) * KK + i]);
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

    // Load slot s of tile row sr covers the V elements starting at global column slotColumn(); slot starts
    // are 16-byte aligned in memory, so a slot fully inside the image is one vector load.
    auto slotColumn = [&](T const* plane, int gy, int s) {
        uintptr_t const addr = reinterpret_cast<uintptr_t>(plane)
            + static_cast<uintptr_t>((static_cast<int64_t>(gy) * width + gx0) * static_cast<int64_t>(sizeof(T)));
        int const misalignment = static_cast<int>((addr % kVecBytes) / sizeof(T));
        return gx0 - misalignment + s * V;
    };

    uint4 raw[kPrefetchItems];
    auto fetch = [&](int c) {
        T const* plane = x + (n * channels + c) * hw;
#pragma unroll
        for (int k = 0; k < kPrefetchItems; ++k)
        {
            int const item = tid + k * kThreads;
            if (item < items)
            {
                int const sr = item / g.slots;
                int const gy = gy0 + sr;
                int const gxs = slotColumn(plane, gy, item - sr * g.slots);
                bool const rowInside = gy >= 0 && gy < height;
                if (rowInside && gxs >= 0 && gxs + V <= width)
                {
                    raw[k] = *reinterpret_cast<uint4 const*>(plane + static_cast<int64_t>(gy) * width + gxs);
                }
                else
                {
                    T* e = reinterpret_cast<T*>(&raw[k]);
#pragma unroll
                    for (int q = 0; q < V; ++q)
                    {
                        int const gx = gxs + q;
                        e[q] = (rowInside && gx >= 0 && gx < width) ? plane[static_cast<int64_t>(gy) * width + gx]
                                                                    : fromFloat<T>(0.F);
                    }
                }
            }
        }
    };
    auto stage = [&](int c) {
        T const* plane = x + (n * channels + c) * hw;
#pragma unroll
        for (int k = 0; k < kPrefetchItems; ++k)
        {
            int const item = tid + k * kThreads;
            if (item < items)
            {
                int const sr = item / g.slots;
                int const firstCol = slotColumn(plane, gy0 + sr, item - sr * g.slots) - gx0;
                T const* e = reinterpret_cast<T const*>(&raw[k]);
#pragma unroll
                for (int q = 0; q < V; ++q)
                {
                    int const sc = firstCol + q;
                    if (sc >= 0 && sc < g.cols)
                    {
                        xs[sr * g.pitch + sc] = toFloat(e[q]);
                    }
                }
            }
        }
    };
    auto spatialAt = [&](int t, int p) {
        if constexpr (kSpatialRegs)
        {
            return spR[t][p];
        }
        else
        {
            return spS[(t * TH + ty) * kTileW + tx * kOutPerThread + p];
        }
    };

    if (c0 < cEnd)
    {
        fetch(c0);
    }
    for (int c = c0; c < cEnd; ++c)
    {
        __syncthreads(); // the previous channel's reads of xs are done (first pass: filters are staged)
        stage(c);
        __syncthreads();
        if (c + 1 < cEnd)
        {
            fetch(c + 1); // in flight while this channel is computed
        }
        if (!active)
        {
            continue;
        }
        float w[KK];
#pragma unroll
        for (int t = 0; t < KK; ++t)
        {
            w[t] = chS[(c - c0) * KK + t];
        }
        float acc[kOutPerThread] = {0.F, 0.F, 0.F, 0.F};
#pragma unroll
        for (int i = 0; i < K; ++i)
        {
            float const* row = xs + (ty + i * d) * g.pitch + tx * kOutPerThread;
            if constexpr (D > 0)
            {
                constexpr int kSegVecs = (kOutPerThread + (K - 1) * D + 3) / 4;
                float seg[kSegVecs * 4];
#pragma unroll
                for (int v = 0; v < kSegVecs; ++v)
                {
                    float4 const f = reinterpret_cast<float4 const*>(row)[v];
                    seg[4 * v] = f.x;
                    seg[4 * v + 1] = f.y;
                    seg[4 * v + 2] = f.z;
                    seg[4 * v + 3] = f.w;
                }
#pragma unroll
                for (int j = 0; j < K; ++j)
                {
#pragma unroll
                    for (int p = 0; p < kOutPerThread; ++p)
                    {
                        acc[p] = ldfTapTerm(acc[p], spatialAt(i * K + j, p), w[i * K + j], seg[p + j * D]);
                    }
                }
            }
            else
            {
#pragma unroll
                for (int j = 0; j < K; ++j)
                {
#pragma unroll
                    for (int p = 0; p < kOutPerThread; ++p)
                    {
                        acc[p] = ldfTapTerm(acc[p], spatialAt(i * K + j, p), w[i * K + j], row[p + j * d]);
                    }
                }
            }
        }
        T* outRow = out + (n * channels + c) * hw + static_cast<int64_t>(oy) * width;
        if (ox + kOutPerThread <= width
            && reinterpret_cast<uintptr_t>(outRow + ox) % (kOutPerThread * sizeof(T)) == 0)
        {
            storeFour(outRow + ox, acc);
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

template <typename T, int K, int D>
cudaError_t launchTiled(LdfShape const& s, int dilation, T const* x, T const* sp, T const* ch, T* out,
    cudaStream_t stream, bool& launched)
{
    constexpr int TH = tileRows<K>();
    constexpr int kThreads = kThreadsX * TH;
    launched = false;
    TileGeometry const g(K, TH, dilation, sizeof(T));
    size_t const sharedBytes = tiledSharedBytes(K, TH, !spatialInRegisters<K>(), g);
    int const channelsPerBlock = static_cast<int>(std::min<int64_t>(s.channels, kMaxChannelsPerBlock));
    int64_t const chunks = (s.channels + channelsPerBlock - 1) / channelsPerBlock;
    int64_t const tilesX = (s.width + kTileW - 1) / kTileW;
    int64_t const tilesY = (s.height + TH - 1) / TH;
    int64_t const blocks = chunks * tilesX * tilesY * s.batch;
    bool const fits = sharedBytes <= kMaxTiledSharedBytes && g.rows * g.slots <= kPrefetchItems * kThreads
        && blocks <= INT_MAX && s.height <= INT_MAX && s.width <= INT_MAX && s.channels <= INT_MAX;
    if (!fits)
    {
        return cudaSuccess;
    }
    ldfTiledKernel<T, K, D><<<static_cast<unsigned>(blocks), dim3(kThreadsX, TH), sharedBytes, stream>>>(x, sp, ch,
        out, static_cast<int>(s.channels), static_cast<int>(s.height), static_cast<int>(s.width), dilation,
        channelsPerBlock, static_cast<int>(tilesX), static_cast<int>(tilesY), static_cast<int>(chunks));
    launched = true;
    return cudaGetLastError();
}

template <typename T, int K>
cudaError_t launchForKernelSize(LdfShape const& s, int dilation, T const* x, T const* sp, T const* ch, T* out,
    cudaStream_t stream)
{
    bool launched = false;
    cudaError_t status = cudaSuccess;
    if constexpr (K == 1)
    {
        status = launchTiled<T, K, 1>(s, 1, x, sp, ch, out, stream, launched);
    }
    else
    {
        status = dilation == 1 ? launchTiled<T, K, 1>(s, 1, x, sp, ch, out, stream, launched)
                               : launchTiled<T, K, 0>(s, dilation, x, sp, ch, out, stream, launched);
    }
    if (launched || status != cudaSuccess)
    {
        return status;
    }
    int64_t const total = s.batch * s.channels * s.height * s.width;
    int64_t const blocks = std::min<int64_t>((total + kDirectThreads - 1) / kDirectThreads, int64_t{1} << 20);
    ldfDirectKernel<T, K><<<static_cast<unsigned>(blocks), kDirectThreads, 0, stream>>>(
        x, sp, ch, out, s.channels, s.height, s.width, dilation, total);
    return cudaGetLastError();
}

template <typename T>
cudaError_t launchTyped(LdfShape const& s, int32_t kernelSize, int32_t dilation, void const* x, void const* sp,
    void const* ch, void* out, cudaStream_t stream)
{
    auto const* xt = static_cast<T const*>(x);
    auto const* st = static_cast<T const*>(sp);
    auto const* ct = static_cast<T const*>(ch);
    auto* ot = static_cast<T*>(out);
    switch (kernelSize)
    {
    case 1: return launchForKernelSize<T, 1>(s, dilation, xt, st, ct, ot, stream);
    case 3: return launchForKernelSize<T, 3>(s, dilation, xt, st, ct, ot, stream);
    case 5: return launchForKernelSize<T, 5>(s, dilation, xt, st, ct, ot, stream);
    case 7: return launchForKernelSize<T, 7>(s, dilation, xt, st, ct, ot, stream);
    default: return cudaErrorInvalidValue;
    }
}

} // namespace

cudaError_t launchLocalDynamicFilter(LdfDataType dtype, LdfShape const& shape, int32_t kernelSize, int32_t dilation,
    void const* x, void const* spatial, void const* channel, void* out, cudaStream_t stream)
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
        return launchTyped<float>(shape, kernelSize, dilation, x, spatial, channel, out, stream);
    case LdfDataType::kFLOAT16:
        return launchTyped<__half>(shape, kernelSize, dilation, x, spatial, channel, out, stream);
    }
    return cudaErrorInvalidValue;
}

} // namespace gldfn
