// ONNX Runtime custom ops for gldfn::GLDFN_LocalDynamicFilter: a CPU kernel (ldf_cpu.h, rows split over the
// session's intra-op thread pool) and, when built with CUDA, a CUDA execution provider kernel calling the TensorRT
// plugin's launcher. Written against the C API only, through the OrtApi pointer ONNX Runtime passes to
// RegisterCustomOps: the library links no libonnxruntime and loads into any ONNX Runtime >= 1.17.
//
// Name, domain, attribute names and ranges come from the op contract (ldf_contract.h, generated from
// gldfn_model/ops/contracts/local_dynamic_filter.json). A registered op takes precedence over the model-local
// ONNX function of the same domain and name, which ONNX Runtime otherwise inlines.
#include "ldf_contract.h"
#include "ldf_cpu.h"
#include "ldf_ort_op.h"

#include <onnxruntime_c_api.h>

#include <atomic>
#include <climits>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace gldfn::ort
{
namespace
{

constexpr char const* kCpuProvider = "CPUExecutionProvider";
constexpr char const* kCudaProvider = "CUDAExecutionProvider";
constexpr char const* kIsaEnv = "GLDFN_ORT_LDF_ISA"; // forces the CPU kernel's instruction set (tests, benchmarks)
constexpr int64_t kRowsPerBatch = 4; // contiguous output rows per thread-pool work item: neighbours share input rows

// The API of the ONNX Runtime that registered the ops, for the callbacks that receive none (shape inference).
std::atomic<OrtApi const*> gApi{nullptr};

struct LdfKernel
{
    OrtApi const* api;
    int32_t kernelSize;
    int32_t dilation;
    bool cuda;
    cpu::Isa isa;
};

OrtStatus* fail(OrtApi const* api, OrtErrorCode code, std::string const& message)
{
    std::string const text = std::string(contract::kPluginNamespace) + "::" + contract::kPluginName + ": " + message;
    return api->CreateStatus(code, text.c_str());
}

constexpr bool contractKernelSizesCompiled()
{
    for (int32_t size : contract::kAllowedKernelSizes)
    {
        if (!cpu::kernelSizeCompiled(size))
        {
            return false;
        }
    }
    return true;
}
static_assert(contractKernelSizesCompiled(), "the op contract allows a kernel_size the CPU kernels lack");

bool kernelSizeAllowed(int64_t kernelSize)
{
    for (int32_t size : contract::kAllowedKernelSizes)
    {
        if (size == kernelSize)
        {
            return true;
        }
    }
    return false;
}

std::string allowedKernelSizes()
{
    std::string text;
    for (int32_t size : contract::kAllowedKernelSizes)
    {
        text += (text.empty() ? "" : ", ") + std::to_string(size);
    }
    return "{" + text + "}";
}

//! An INT attribute, or `fallback` (the contract's default) when the node does not carry it.
int64_t intAttribute(OrtApi const* api, OrtKernelInfo const* info, char const* name, int64_t fallback)
{
    int64_t value = fallback;
    if (OrtStatus* status = api->KernelInfoGetAttribute_int64(info, name, &value))
    {
        api->ReleaseStatus(status);
        value = fallback;
    }
    return value;
}

OrtStatus* cpuIsa(OrtApi const* api, cpu::Isa& isa)
{
    isa = cpu::bestIsa();
    char const* forced = std::getenv(kIsaEnv);
    if (forced == nullptr || *forced == '\0')
    {
        return nullptr;
    }
    if (!cpu::parseIsa(forced, isa))
    {
        return fail(api, ORT_INVALID_ARGUMENT,
            std::string(kIsaEnv) + "='" + forced + "' is not one of scalar, avx2, avx512");
    }
    if (!cpu::isaSupported(isa))
    {
        return fail(api, ORT_INVALID_ARGUMENT,
            std::string(kIsaEnv) + "=" + forced + ": this CPU lacks that instruction set (best: "
                + cpu::isaName(cpu::bestIsa()) + ")");
    }
    return nullptr;
}

OrtStatus* createKernel(OrtApi const* api, OrtKernelInfo const* info, bool cuda, void** kernel)
{
    int64_t const kernelSize = intAttribute(api, info, contract::kFieldKernelSize, contract::kDefaultKernelSize);
    int64_t const dilation = intAttribute(api, info, contract::kFieldDilation, contract::kDefaultDilation);
    if (!kernelSizeAllowed(kernelSize))
    {
        return fail(api, ORT_INVALID_ARGUMENT,
            std::string(contract::kFieldKernelSize) + "=" + std::to_string(kernelSize) + " is not one of "
                + allowedKernelSizes());
    }
    if (dilation < contract::kMinDilation || dilation > contract::kMaxDilation)
    {
        return fail(api, ORT_INVALID_ARGUMENT,
            std::string(contract::kFieldDilation) + "=" + std::to_string(dilation) + " is outside ["
                + std::to_string(contract::kMinDilation) + ", " + std::to_string(contract::kMaxDilation) + "]");
    }
    cpu::Isa isa = cpu::Isa::kScalar;
    if (!cuda)
    {
        if (OrtStatus* status = cpuIsa(api, isa))
        {
            return status;
        }
    }
    *kernel = new LdfKernel{api, static_cast<int32_t>(kernelSize), static_cast<int32_t>(dilation), cuda, isa};
    return nullptr;
}

//! Element type and dimensions of input `index`.
OrtStatus* inputShape(OrtApi const* api, OrtKernelContext* context, size_t index, OrtValue const*& value,
    ONNXTensorElementDataType& type, std::vector<int64_t>& dims)
{
    if (OrtStatus* status = api->KernelContext_GetInput(context, index, &value))
    {
        return status;
    }
    OrtTensorTypeAndShapeInfo* info = nullptr;
    if (OrtStatus* status = api->GetTensorTypeAndShape(value, &info))
    {
        return status;
    }
    std::unique_ptr<OrtTensorTypeAndShapeInfo, void (*)(OrtTensorTypeAndShapeInfo*)> owned(
        info, api->ReleaseTensorTypeAndShapeInfo);
    size_t count = 0;
    OrtStatus* status = api->GetTensorElementType(info, &type);
    if (status == nullptr)
    {
        status = api->GetDimensionsCount(info, &count);
    }
    if (status == nullptr)
    {
        dims.assign(count, 0);
        status = api->GetDimensions(info, dims.data(), count);
    }
    return status;
}

std::string dimsText(std::vector<int64_t> const& dims)
{
    std::string text = "[";
    for (size_t i = 0; i < dims.size(); ++i)
    {
        text += (i ? ", " : "") + std::to_string(dims[i]);
    }
    return text + "]";
}

//! Reads and checks the three inputs, allocates the output.
OrtStatus* prepareCall(LdfKernel const& kernel, OrtKernelContext* context, LdfCall& call)
{
    OrtApi const* api = kernel.api;
    OrtValue const* inputs[3] = {};
    ONNXTensorElementDataType types[3] = {};
    std::vector<int64_t> dims[3];
    for (size_t i = 0; i < 3; ++i)
    {
        if (OrtStatus* status = inputShape(api, context, i, inputs[i], types[i], dims[i]))
        {
            return status;
        }
    }
    if (types[0] != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT && types[0] != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16)
    {
        return fail(api, ORT_INVALID_ARGUMENT, "x must be float32 or float16");
    }
    if (types[1] != types[0] || types[2] != types[0])
    {
        return fail(api, ORT_INVALID_ARGUMENT, "x, spatial and channel must have one element type");
    }
    if (dims[0].size() != 4)
    {
        return fail(api, ORT_INVALID_ARGUMENT, "x must be N x C x H x W, got " + dimsText(dims[0]));
    }
    int64_t const n = dims[0][0];
    int64_t const c = dims[0][1];
    int64_t const h = dims[0][2];
    int64_t const w = dims[0][3];
    int64_t const taps = static_cast<int64_t>(kernel.kernelSize) * kernel.kernelSize;
    if (dims[1] != std::vector<int64_t>{n, taps, h, w})
    {
        return fail(api, ORT_INVALID_ARGUMENT,
            "spatial must be " + dimsText({n, taps, h, w}) + " for x " + dimsText(dims[0]) + ", got " + dimsText(dims[1]));
    }
    if (dims[2] != std::vector<int64_t>{n, c, taps})
    {
        return fail(api, ORT_INVALID_ARGUMENT,
            "channel must be " + dimsText({n, c, taps}) + " for x " + dimsText(dims[0]) + ", got " + dimsText(dims[2]));
    }
    OrtValue* output = nullptr;
    if (OrtStatus* status = api->KernelContext_GetOutput(context, 0, dims[0].data(), dims[0].size(), &output))
    {
        return status;
    }
    call = LdfCall{nullptr, nullptr, nullptr, nullptr, n, c, h, w, kernel.kernelSize, kernel.dilation,
        types[0] == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16};
    void const** pointers[3] = {&call.x, &call.spatial, &call.channel};
    for (size_t i = 0; i < 3; ++i)
    {
        if (OrtStatus* status = api->GetTensorData(inputs[i], pointers[i]))
        {
            return status;
        }
    }
    return api->GetTensorMutableData(output, &call.out);
}

struct CpuWork
{
    cpu::Isa isa;
    cpu::LdfArgs args;
    int64_t rows;
};

void cpuRow(void* data, size_t row)
{
    auto const& work = *static_cast<CpuWork const*>(data);
    auto const r = static_cast<int64_t>(row);
    cpu::ldfRows(work.isa, work.args, r, r + 1);
}

OrtStatus* cpuCompute(LdfKernel const& kernel, OrtKernelContext* context, LdfCall const& call)
{
    CpuWork work{kernel.isa,
        cpu::LdfArgs{call.x, call.spatial, call.channel, call.out, call.batch, call.channels, call.height, call.width,
            call.kernelSize, call.dilation, call.half},
        call.batch * call.height};
    if (work.rows == 0 || call.channels == 0 || call.width == 0)
    {
        return nullptr;
    }
    size_t const batches = static_cast<size_t>((work.rows + kRowsPerBatch - 1) / kRowsPerBatch);
    return kernel.api->KernelContext_ParallelFor(context, cpuRow, static_cast<size_t>(work.rows), batches, &work);
}

OrtStatus* ORT_API_CALL compute(void* kernelData, OrtKernelContext* context)
{
    auto const& kernel = *static_cast<LdfKernel const*>(kernelData);
    try
    {
        LdfCall call{};
        if (OrtStatus* status = prepareCall(kernel, context, call))
        {
            return status;
        }
#if defined(GLDFN_ORT_WITH_CUDA)
        if (kernel.cuda)
        {
            return ldfCudaCompute(*kernel.api, context, call);
        }
#endif
        return cpuCompute(kernel, context, call);
    }
    catch (std::exception const& error)
    {
        return fail(kernel.api, ORT_FAIL, error.what());
    }
}

void ORT_API_CALL destroyKernel(void* kernel)
{
    delete static_cast<LdfKernel*>(kernel);
}

//! The output has x's element type and shape.
OrtStatus* ORT_API_CALL inferOutputShape(OrtCustomOp const*, OrtShapeInferContext* context)
{
    OrtApi const* api = gApi.load();
    OrtTensorTypeAndShapeInfo* info = nullptr; // owned by the context (freeing it is a double free)
    if (OrtStatus* status = api->ShapeInferContext_GetInputTypeShape(context, 0, &info))
    {
        return status;
    }
    return api->ShapeInferContext_SetOutputTypeShape(context, 0, info);
}

char const* ORT_API_CALL opName(OrtCustomOp const*)
{
    return contract::kPluginName;
}

// Inputs and output of any element type as far as the schema goes: float32 and float16 models both resolve to
// this op, and the kernel checks the types.
ONNXTensorElementDataType ORT_API_CALL anyType(OrtCustomOp const*, size_t)
{
    return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
}

size_t ORT_API_CALL threeInputs(OrtCustomOp const*)
{
    return 3;
}

size_t ORT_API_CALL oneOutput(OrtCustomOp const*)
{
    return 1;
}

OrtCustomOpInputOutputCharacteristic ORT_API_CALL required(OrtCustomOp const*, size_t)
{
    return INPUT_OUTPUT_REQUIRED;
}

OrtMemType ORT_API_CALL defaultMemory(OrtCustomOp const*, size_t)
{
    return OrtMemTypeDefault;
}

int ORT_API_CALL notVariadic(OrtCustomOp const*)
{
    return 0;
}

int ORT_API_CALL startVersion(OrtCustomOp const*)
{
    return std::atoi(contract::kPluginVersion);
}

int ORT_API_CALL endVersion(OrtCustomOp const*)
{
    return INT_MAX;
}

size_t ORT_API_CALL noPairs(int** inputIndex, int** outputIndex)
{
    *inputIndex = nullptr;
    *outputIndex = nullptr;
    return 0;
}

void ORT_API_CALL releasePairs(int*, int*) {}

template <bool kCuda>
OrtStatus* ORT_API_CALL createKernelFor(OrtCustomOp const*, OrtApi const* api, OrtKernelInfo const* info, void** kernel)
{
    try
    {
        return createKernel(api, info, kCuda, kernel);
    }
    catch (std::exception const& error)
    {
        return fail(api, ORT_FAIL, error.what());
    }
}

template <bool kCuda>
char const* ORT_API_CALL providerOf(OrtCustomOp const*)
{
    return kCuda ? kCudaProvider : kCpuProvider;
}

template <bool kCuda>
OrtCustomOp makeOp()
{
    OrtCustomOp op{};
    op.version = kOrtApiVersion; // ONNX Runtime reads only the fields this version has
    op.GetName = opName;
    op.GetExecutionProviderType = providerOf<kCuda>;
    op.GetInputType = anyType;
    op.GetInputTypeCount = threeInputs;
    op.GetOutputType = anyType;
    op.GetOutputTypeCount = oneOutput;
    op.KernelDestroy = destroyKernel;
    op.GetInputCharacteristic = required;
    op.GetOutputCharacteristic = required;
    op.GetInputMemoryType = defaultMemory;
    op.GetVariadicInputMinArity = notVariadic;
    op.GetVariadicInputHomogeneity = notVariadic;
    op.GetVariadicOutputMinArity = notVariadic;
    op.GetVariadicOutputHomogeneity = notVariadic;
    op.CreateKernelV2 = createKernelFor<kCuda>;
    op.KernelComputeV2 = compute;
    op.InferOutputShapeFn = inferOutputShape;
    op.GetStartVersion = startVersion;
    op.GetEndVersion = endVersion;
    op.GetMayInplace = noPairs;
    op.ReleaseMayInplace = releasePairs;
    op.GetAliasMap = noPairs;
    op.ReleaseAliasMap = releasePairs;
    return op;
}

OrtCustomOp const gCpuOp = makeOp<false>();
#if defined(GLDFN_ORT_WITH_CUDA)
OrtCustomOp const gCudaOp = makeOp<true>();
OrtCustomOp const* const gOps[] = {&gCpuOp, &gCudaOp};
#else
OrtCustomOp const* const gOps[] = {&gCpuOp};
#endif

//! The domains handed to sessions: ONNX Runtime needs them for the sessions' lifetime, and they are released
//! when the library is unloaded.
class DomainStore
{
public:
    void keep(OrtApi const* api, OrtCustomOpDomain* domain)
    {
        std::lock_guard<std::mutex> lock(mMutex);
        mDomains.emplace_back(api, domain);
    }

    ~DomainStore()
    {
        for (auto& [api, domain] : mDomains)
        {
            api->ReleaseCustomOpDomain(domain);
        }
    }

private:
    std::mutex mMutex;
    std::vector<std::pair<OrtApi const*, OrtCustomOpDomain*>> mDomains;
};

DomainStore gDomains;

std::string describe()
{
    std::string text = std::string("op=") + contract::kPluginNamespace + "::" + contract::kPluginName
        + ";version=" + contract::kPluginVersion + ";contract=" + std::to_string(contract::kContractVersion)
        + ";ort-api=" + std::to_string(kOrtApiVersion) + ";providers=";
    for (size_t i = 0; i < sizeof(gOps) / sizeof(gOps[0]); ++i)
    {
        text += (i ? "," : "") + std::string(gOps[i]->GetExecutionProviderType(gOps[i]));
    }
    return text + ";cpu-isa=" + cpu::isaName(cpu::bestIsa());
}

} // namespace
} // namespace gldfn::ort

//! ONNX Runtime's entry point (SessionOptions.register_custom_ops_library / RegisterCustomOpsLibrary_V2).
extern "C" __attribute__((visibility("default"))) OrtStatus* ORT_API_CALL RegisterCustomOps(
    OrtSessionOptions* options, OrtApiBase const* base)
{
    using namespace gldfn::ort;
    OrtApi const* api = base->GetApi(kOrtApiVersion);
    if (api == nullptr)
    {
        std::string const message = std::string("the GLDFN custom-op library needs ONNX Runtime >= 1.")
            + std::to_string(kOrtApiVersion) + " (C API " + std::to_string(kOrtApiVersion) + "); this is "
            + base->GetVersionString();
        return base->GetApi(1)->CreateStatus(ORT_FAIL, message.c_str());
    }
    gApi.store(api);
    OrtCustomOpDomain* domain = nullptr;
    if (OrtStatus* status = api->CreateCustomOpDomain(gldfn::contract::kPluginNamespace, &domain))
    {
        return status;
    }
    for (OrtCustomOp const* op : gOps)
    {
        if (OrtStatus* status = api->CustomOpDomain_Add(domain, op))
        {
            api->ReleaseCustomOpDomain(domain);
            return status;
        }
    }
    if (OrtStatus* status = api->AddCustomOpDomain(options, domain))
    {
        api->ReleaseCustomOpDomain(domain);
        return status;
    }
    gDomains.keep(api, domain);
    return nullptr;
}

//! What the library registers, for tools and tests without ONNX Runtime:
//! "op=gldfn::GLDFN_LocalDynamicFilter;version=1;contract=1;ort-api=17;providers=CPUExecutionProvider[,
//! CUDAExecutionProvider];cpu-isa=avx512".
extern "C" __attribute__((visibility("default"))) char const* gldfn_ort_ops_info()
{
    static std::string const text = gldfn::ort::describe();
    return text.c_str();
}
