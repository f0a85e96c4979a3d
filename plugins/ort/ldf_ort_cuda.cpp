// The CUDA execution provider's kernel: the TensorRT plugin's launcher (ldf_kernel.h) on ONNX Runtime's compute
// stream. Built only when CMake finds nvcc.
#include "ldf_kernel.h"
#include "ldf_ort_op.h"

#include <string>

namespace gldfn::ort
{

OrtStatus* ldfCudaCompute(OrtApi const& api, OrtKernelContext* context, LdfCall const& call)
{
    void* stream = nullptr;
    if (OrtStatus* status = api.KernelContext_GetGPUComputeStream(context, &stream))
    {
        return status;
    }
    LdfShape const shape{call.batch, call.channels, call.height, call.width};
    cudaError_t const error = launchLocalDynamicFilter(call.half ? LdfDataType::kFLOAT16 : LdfDataType::kFLOAT32, shape,
        call.kernelSize, call.dilation, call.x, call.spatial, call.channel, call.out,
        static_cast<cudaStream_t>(stream));
    if (error != cudaSuccess)
    {
        std::string const message = std::string("gldfn::GLDFN_LocalDynamicFilter CUDA kernel: ") + cudaGetErrorName(error)
            + ": " + cudaGetErrorString(error);
        return api.CreateStatus(ORT_EP_FAIL, message.c_str());
    }
    return nullptr;
}

} // namespace gldfn::ort
