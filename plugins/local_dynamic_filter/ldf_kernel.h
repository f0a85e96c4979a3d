// Launcher of the local dynamic filter CUDA kernels: plain pointers, shapes, dtype and a stream, no TensorRT
// types, so the plugin, the GPU harness and other callers share it.
#pragma once

#include <cstdint>
#include <cuda_runtime_api.h>

namespace gldfn
{

enum class LdfDataType : int32_t
{
    kFLOAT32 = 0,
    kFLOAT16 = 1, //!< FP16 storage, FP32 accumulation
};

//! Shape of x and of the output, N x C x H x W, linear (NCHW) layout. spatial is N x K*K x H x W and channel
//! is N x C x K*K, both of the same data type as x.
struct LdfShape
{
    int64_t batch;
    int64_t channels;
    int64_t height;
    int64_t width;
};

//! Kernel sizes the kernels are compiled for.
constexpr bool ldfKernelSizeSupported(int32_t kernelSize)
{
    return kernelSize == 1 || kernelSize == 3 || kernelSize == 5 || kernelSize == 7;
}

//! Queue the filter on stream. Returns cudaErrorInvalidValue for an unsupported kernel size, a dilation < 1,
//! negative sizes or null pointers (with a non-empty shape), otherwise the launch's error.
cudaError_t launchLocalDynamicFilter(LdfDataType dtype, LdfShape const& shape, int32_t kernelSize, int32_t dilation,
    void const* x, void const* spatial, void const* channel, void* out, cudaStream_t stream);

} // namespace gldfn
