// Launches the local dynamic filter kernels (ldf_kernel_impl.cuh) on a GPU.
#include "ldf_kernel.h"
#include "ldf_kernel_impl.cuh"

namespace gldfn
{
namespace
{

struct CudaLauncher
{
    cudaStream_t stream;

    template <typename T, int K, int D>
    cudaError_t tiled(detail::TiledLaunch const& plan, LdfShape const& s, int dilation, T const* x, T const* sp,
        T const* ch, T* out)
    {
        detail::ldfTiledKernel<T, K, D><<<plan.blocks, dim3(detail::kThreadsX, plan.tileRows), plan.sharedBytes,
            stream>>>(x, sp, ch, out, static_cast<int>(s.channels), static_cast<int>(s.height),
            static_cast<int>(s.width), dilation, plan.channelsPerBlock, plan.tilesX, plan.tilesY, plan.chunks);
        return cudaGetLastError();
    }

    template <typename T, int K>
    cudaError_t direct(detail::DirectLaunch const& plan, LdfShape const& s, int dilation, T const* x, T const* sp,
        T const* ch, T* out)
    {
        detail::ldfDirectKernel<T, K><<<plan.blocks, plan.threads, 0, stream>>>(
            x, sp, ch, out, s.channels, s.height, s.width, dilation, plan.total);
        return cudaGetLastError();
    }
};

} // namespace

cudaError_t launchLocalDynamicFilter(LdfDataType dtype, LdfShape const& shape, int32_t kernelSize, int32_t dilation,
    void const* x, void const* spatial, void const* channel, void* out, cudaStream_t stream)
{
    CudaLauncher launcher{stream};
    return detail::dispatchLocalDynamicFilter(launcher, dtype, shape, kernelSize, dilation, x, spatial, channel, out);
}

} // namespace gldfn
