// What the ONNX Runtime custom op's CPU and CUDA kernels share: the checked inputs and output of one call.
#pragma once

#include <onnxruntime_c_api.h>

#include <cstdint>

namespace gldfn::ort
{

//! The OrtApi version the library asks for (ONNX Runtime 1.17: KernelContext_ParallelFor and shape inference
//! for custom ops); it loads into any ONNX Runtime from then on.
constexpr uint32_t kOrtApiVersion = 17;

//! One call: inputs checked against each other and the attributes, output allocated on the kernel's device.
struct LdfCall
{
    void const* x;
    void const* spatial;
    void const* channel;
    void* out;
    int64_t batch;
    int64_t channels;
    int64_t height;
    int64_t width;
    int32_t kernelSize;
    int32_t dilation;
    bool half;
};

#if defined(GLDFN_ORT_WITH_CUDA)
//! Queues the call on ONNX Runtime's CUDA compute stream through the plugin's launcher (ldf_kernel.h).
OrtStatus* ldfCudaCompute(OrtApi const& api, OrtKernelContext* context, LdfCall const& call);
#endif

} // namespace gldfn::ort
