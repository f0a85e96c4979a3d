// Runs the plugin's CUDA kernels (ldf_kernel_impl.cuh: planning, dispatch, tiled and direct kernels) on the
// CPU: each block's threads are std::threads meeting at a std::barrier for __syncthreads, shared memory is a
// buffer filled with NaN before every block, so a read of an unstaged element poisons the result. Compiled
// with g++ by tests/test_plugin_kernel.py and called through ctypes; no GPU involved. Slow, for small shapes.
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstring>
#include <limits>
#include <thread>
#include <vector>

namespace emu
{
thread_local dim3 threadIndex;
thread_local dim3 blockIndex;
dim3 blockDimension;
dim3 gridDimension;
std::barrier<>* blockBarrier = nullptr;
alignas(16) unsigned char sharedMemory[64 * 1024];

inline void syncthreads()
{
    blockBarrier->arrive_and_wait();
}
} // namespace emu

using std::min;
#undef __global__
#define __global__
#undef __launch_bounds__
#define __launch_bounds__(...)
#define threadIdx emu::threadIndex
#define blockIdx emu::blockIndex
#define blockDim emu::blockDimension
#define gridDim emu::gridDimension
#define __syncthreads() emu::syncthreads()
#define GLDFN_DYNAMIC_SHARED_MEMORY(type, name) type* name = reinterpret_cast<type*>(emu::sharedMemory)

#include "ldf_kernel_impl.cuh"

namespace
{
int gLastPath = 0; // 1: tiled kernel, 2: direct kernel

template <typename Body>
void runBlocks(unsigned blocks, dim3 block, Body const& body)
{
    emu::blockDimension = block;
    emu::gridDimension = dim3(blocks);
    unsigned const threads = block.x * block.y * block.z;
    float const nan = std::numeric_limits<float>::quiet_NaN();
    for (unsigned b = 0; b < blocks; ++b)
    {
        std::fill_n(reinterpret_cast<float*>(emu::sharedMemory), sizeof(emu::sharedMemory) / sizeof(float), nan);
        std::barrier<> barrier(threads);
        emu::blockBarrier = &barrier;
        std::vector<std::thread> pool;
        pool.reserve(threads);
        for (unsigned t = 0; t < threads; ++t)
        {
            pool.emplace_back([&, b, t] {
                emu::blockIndex = dim3(b);
                emu::threadIndex = dim3(t % block.x, (t / block.x) % block.y, t / (block.x * block.y));
                body();
            });
        }
        for (std::thread& thread : pool)
        {
            thread.join();
        }
    }
}

struct EmulatedLauncher
{
    template <typename T, int K, int D>
    cudaError_t tiled(gldfn::detail::TiledLaunch const& plan, gldfn::LdfShape const& s, int dilation, T const* x,
        T const* sp, T const* ch, T* out)
    {
        if (plan.sharedBytes > sizeof(emu::sharedMemory))
        {
            return cudaErrorInvalidValue;
        }
        gLastPath = 1;
        runBlocks(plan.blocks, dim3(gldfn::detail::kThreadsX, plan.tileRows), [&] {
            gldfn::detail::ldfTiledKernel<T, K, D>(x, sp, ch, out, static_cast<int>(s.channels),
                static_cast<int>(s.height), static_cast<int>(s.width), dilation, plan.channelsPerBlock, plan.tilesX,
                plan.tilesY, plan.chunks);
        });
        return cudaSuccess;
    }

    template <typename T, int K>
    cudaError_t direct(gldfn::detail::DirectLaunch const& plan, gldfn::LdfShape const& s, int dilation, T const* x,
        T const* sp, T const* ch, T* out)
    {
        // No barriers in this kernel: one OS thread can play every CUDA thread in turn.
        gLastPath = 2;
        emu::blockDimension = dim3(plan.threads);
        emu::gridDimension = dim3(plan.blocks);
        for (unsigned b = 0; b < plan.blocks; ++b)
        {
            for (int t = 0; t < plan.threads; ++t)
            {
                emu::blockIndex = dim3(b);
                emu::threadIndex = dim3(t);
                gldfn::detail::ldfDirectKernel<T, K>(x, sp, ch, out, s.channels, s.height, s.width, dilation, plan.total);
            }
        }
        return cudaSuccess;
    }
};
} // namespace

extern "C"
{

//! The plugin's launch path on the CPU. dtype: 0 FP32, 1 FP16 (raw IEEE halves). Returns the cudaError_t.
int ldf_emulate(int dtype, int64_t n, int64_t c, int64_t h, int64_t w, int kernelSize, int dilation, void const* x,
    void const* spatial, void const* channel, void* out)
{
    EmulatedLauncher launcher;
    gLastPath = 0;
    return static_cast<int>(gldfn::detail::dispatchLocalDynamicFilter(launcher,
        dtype == 0 ? gldfn::LdfDataType::kFLOAT32 : gldfn::LdfDataType::kFLOAT16, gldfn::LdfShape{n, c, h, w},
        kernelSize, dilation, x, spatial, channel, out));
}

//! Which kernel the last ldf_emulate call ran: 1 tiled, 2 direct, 0 none.
int ldf_emulate_last_path()
{
    return gLastPath;
}

} // extern "C"
