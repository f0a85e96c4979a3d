// PyTorch binding of the local dynamic filter CUDA kernel: the operator gldfn_cuda::local_dynamic_filter_forward
// for CUDA tensors, which runs launchLocalDynamicFilter on the current CUDA stream. gldfn_model/cuda_ops.py
// compiles this file together with plugins/local_dynamic_filter/ldf_kernel.cu (torch.utils.cpp_extension.load)
// and routes the CUDA forward of gldfn::local_dynamic_filter here.
#include "ldf_kernel.h"

#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <cstdint>
#include <limits>

// The op contract's dilation range (gldfn_model/ops/contracts/local_dynamic_filter.json), passed by cuda_ops.py.
#if !defined(GLDFN_LDF_MIN_DILATION) || !defined(GLDFN_LDF_MAX_DILATION)
#error "build this file through gldfn_model/ops/cuda_ops.py, which defines the op contract's dilation range"
#endif

namespace
{

gldfn::LdfDataType ldfDataType(at::ScalarType type)
{
    switch (type)
    {
    case at::kFloat: return gldfn::LdfDataType::kFLOAT32;
    case at::kHalf: return gldfn::LdfDataType::kFLOAT16;
    default: break;
    }
    TORCH_CHECK(false, "local_dynamic_filter_forward supports float32 and float16 tensors, got ", type);
}

at::Tensor localDynamicFilterForward(
    at::Tensor const& x, at::Tensor const& spatial, at::Tensor const& channel, int64_t kernelSize, int64_t dilation)
{
    TORCH_CHECK(x.is_cuda() && spatial.device() == x.device() && channel.device() == x.device(),
        "local_dynamic_filter_forward needs x, spatial and channel on one CUDA device, got ", x.device(), ", ",
        spatial.device(), ", ", channel.device());
    TORCH_CHECK(spatial.scalar_type() == x.scalar_type() && channel.scalar_type() == x.scalar_type(),
        "local_dynamic_filter_forward needs x, spatial and channel of one dtype, got ", x.scalar_type(), ", ",
        spatial.scalar_type(), ", ", channel.scalar_type());
    TORCH_CHECK(kernelSize <= std::numeric_limits<int32_t>::max() && gldfn::ldfKernelSizeSupported(
                    static_cast<int32_t>(kernelSize)),
        "local_dynamic_filter_forward has kernels for kernel_size 1, 3, 5 and 7, got ", kernelSize);
    TORCH_CHECK(dilation >= GLDFN_LDF_MIN_DILATION && dilation <= GLDFN_LDF_MAX_DILATION,
        "local_dynamic_filter_forward needs ", GLDFN_LDF_MIN_DILATION, " <= dilation <= ", GLDFN_LDF_MAX_DILATION,
        " (the op contract's range), got ", dilation);
    TORCH_CHECK(x.dim() == 4, "x must be N x C x H x W, got ", x.sizes());
    int64_t const taps = kernelSize * kernelSize;
    int64_t const n = x.size(0);
    int64_t const c = x.size(1);
    int64_t const h = x.size(2);
    int64_t const w = x.size(3);
    TORCH_CHECK(spatial.sizes() == at::IntArrayRef({n, taps, h, w}), "spatial filter must be ",
        at::IntArrayRef({n, taps, h, w}), ", got ", spatial.sizes());
    TORCH_CHECK(channel.sizes() == at::IntArrayRef({n, c, taps}), "channel filter must be ",
        at::IntArrayRef({n, c, taps}), ", got ", channel.sizes());

    c10::cuda::CUDAGuard const deviceGuard(x.device());
    at::Tensor const xc = x.contiguous();
    at::Tensor const spatialC = spatial.contiguous();
    at::Tensor const channelC = channel.contiguous();
    at::Tensor out = at::empty(xc.sizes(), xc.options());
    C10_CUDA_CHECK(gldfn::launchLocalDynamicFilter(ldfDataType(x.scalar_type()), gldfn::LdfShape{n, c, h, w},
        static_cast<int32_t>(kernelSize), static_cast<int32_t>(dilation), xc.const_data_ptr(),
        spatialC.const_data_ptr(), channelC.const_data_ptr(), out.mutable_data_ptr(),
        c10::cuda::getCurrentCUDAStream()));
    return out;
}

} // namespace

TORCH_LIBRARY(gldfn_cuda, m)
{
    m.def("local_dynamic_filter_forward(Tensor x, Tensor spatial, Tensor channel, int kernel_size, int dilation) "
          "-> Tensor");
}

TORCH_LIBRARY_IMPL(gldfn_cuda, CUDA, m)
{
    m.impl("local_dynamic_filter_forward", &localDynamicFilterForward);
}
