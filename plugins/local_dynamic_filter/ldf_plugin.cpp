#include "ldf_plugin.h"

#include "ldf_contract.h"
#include "ldf_kernel.h"
#include "plugin_logging.h"

#include <cstring>
#include <exception>
#include <limits>
#include <string>

namespace gldfn
{
namespace
{
using nvinfer1::DataType;
using nvinfer1::Dims;
using nvinfer1::ILogger;
using nvinfer1::PluginField;
using nvinfer1::PluginFieldType;
using nvinfer1::TensorFormat;

constexpr bool contractKernelSizesCompiled()
{
    for (int32_t size : contract::kAllowedKernelSizes)
    {
        if (!ldfKernelSizeSupported(size))
        {
            return false;
        }
    }
    return true;
}
static_assert(contractKernelSizesCompiled(), "the op contract allows a kernel_size the CUDA kernels lack");

bool kernelSizeAllowed(int32_t kernelSize)
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

std::string dimsText(Dims const& d)
{
    std::string text = "[";
    for (int32_t i = 0; i < d.nbDims; ++i)
    {
        text += (i ? ", " : "") + std::to_string(d.d[i]);
    }
    return text + "]";
}

int32_t readIntField(PluginField const& field)
{
    GLDFN_VALIDATE(field.data != nullptr && field.length == 1,
        "field '" << field.name << "' must hold exactly one integer, got length " << field.length);
    int64_t value = 0;
    switch (field.type)
    {
    case PluginFieldType::kINT32: value = *static_cast<int32_t const*>(field.data); break;
    case PluginFieldType::kINT64: value = *static_cast<int64_t const*>(field.data); break;
    default:
        GLDFN_VALIDATE(false,
            "field '" << field.name << "' must be INT32 or INT64, got PluginFieldType "
                      << static_cast<int32_t>(field.type));
    }
    GLDFN_VALIDATE(value >= std::numeric_limits<int32_t>::min() && value <= std::numeric_limits<int32_t>::max(),
        "field '" << field.name << "' = " << value << " is out of the int32 range");
    return static_cast<int32_t>(value);
}

bool known(int64_t dim)
{
    return dim >= 0;
}

void expectSame(int64_t a, int64_t b, char const* what)
{
    GLDFN_VALIDATE(!known(a) || !known(b) || a == b, what << ": " << a << " vs " << b);
}

char const* phaseName(nvinfer1::TensorRTPhase phase)
{
    return phase == nvinfer1::TensorRTPhase::kBUILD ? "build" : "runtime";
}

} // namespace

void LdfAttributes::validate() const
{
    GLDFN_VALIDATE(kernelSizeAllowed(kernelSize),
        contract::kFieldKernelSize << "=" << kernelSize << " is not supported; use one of " << allowedKernelSizes());
    GLDFN_VALIDATE(dilation >= contract::kMinDilation && dilation <= contract::kMaxDilation,
        contract::kFieldDilation << "=" << dilation << " is outside [" << contract::kMinDilation << ", "
                                 << contract::kMaxDilation << "]");
}

LdfAttributes parseLdfFields(nvinfer1::PluginFieldCollection const* fields)
{
    LdfAttributes attributes{contract::kDefaultKernelSize, contract::kDefaultDilation};
    GLDFN_VALIDATE(fields != nullptr, "no field collection given");
    GLDFN_VALIDATE(fields->nbFields == 0 || fields->fields != nullptr, "field collection without fields");
    for (int32_t i = 0; i < fields->nbFields; ++i)
    {
        PluginField const& field = fields->fields[i];
        GLDFN_VALIDATE(field.name != nullptr, "field " << i << " has no name");
        if (std::strcmp(field.name, contract::kFieldKernelSize) == 0)
        {
            attributes.kernelSize = readIntField(field);
        }
        else if (std::strcmp(field.name, contract::kFieldDilation) == 0)
        {
            attributes.dilation = readIntField(field);
        }
        else
        {
            logPluginMessage(ILogger::Severity::kWARNING,
                std::string(contract::kPluginName) + ": ignoring unknown field '" + field.name + "'");
        }
    }
    attributes.validate();
    return attributes;
}

LocalDynamicFilterPlugin::LocalDynamicFilterPlugin(LdfAttributes const& attributes)
    : mAttributes(attributes)
{
    mAttributes.validate();
}

LocalDynamicFilterPlugin::LocalDynamicFilterPlugin(LocalDynamicFilterPlugin const& other)
    : nvinfer1::IPluginV3(other)
    , nvinfer1::IPluginV3OneCore(other)
    , nvinfer1::IPluginV3OneBuild(other)
    , nvinfer1::IPluginV3OneRuntime(other)
    , mAttributes(other.mAttributes)
{
}

nvinfer1::IPluginCapability* LocalDynamicFilterPlugin::getCapabilityInterface(
    nvinfer1::PluginCapabilityType type) noexcept
{
    switch (type)
    {
    case nvinfer1::PluginCapabilityType::kCORE: return static_cast<nvinfer1::IPluginV3OneCore*>(this);
    case nvinfer1::PluginCapabilityType::kBUILD: return static_cast<nvinfer1::IPluginV3OneBuild*>(this);
    case nvinfer1::PluginCapabilityType::kRUNTIME: return static_cast<nvinfer1::IPluginV3OneRuntime*>(this);
    }
    return nullptr;
}

nvinfer1::IPluginV3* LocalDynamicFilterPlugin::clone() noexcept
{
    try
    {
        return new LocalDynamicFilterPlugin(*this);
    }
    catch (std::exception const& e)
    {
        logPluginMessage(ILogger::Severity::kERROR, std::string("clone failed: ") + e.what());
    }
    return nullptr;
}

char const* LocalDynamicFilterPlugin::getPluginName() const noexcept
{
    return contract::kPluginName;
}

char const* LocalDynamicFilterPlugin::getPluginVersion() const noexcept
{
    return contract::kPluginVersion;
}

char const* LocalDynamicFilterPlugin::getPluginNamespace() const noexcept
{
    return contract::kPluginNamespace;
}

void LocalDynamicFilterPlugin::checkShapes(Dims const& x, Dims const& spatial, Dims const& channel, Dims const& out) const
{
    int64_t const taps = static_cast<int64_t>(mAttributes.kernelSize) * mAttributes.kernelSize;
    GLDFN_VALIDATE(x.nbDims == 4, "x must be N x C x H x W, got " << dimsText(x));
    GLDFN_VALIDATE(spatial.nbDims == 4, "spatial must be N x k*k x H x W, got " << dimsText(spatial));
    GLDFN_VALIDATE(channel.nbDims == 3, "channel must be N x C x k*k, got " << dimsText(channel));
    GLDFN_VALIDATE(out.nbDims == 4, "the output must be N x C x H x W, got " << dimsText(out));
    expectSame(spatial.d[1], taps, "spatial taps vs kernel_size^2");
    expectSame(channel.d[2], taps, "channel taps vs kernel_size^2");
    for (int32_t axis : {0, 2, 3})
    {
        expectSame(spatial.d[axis], x.d[axis], "spatial vs x (N, H, W)");
    }
    expectSame(channel.d[0], x.d[0], "channel vs x batch");
    expectSame(channel.d[1], x.d[1], "channel vs x channels");
    for (int32_t axis = 0; axis < 4; ++axis)
    {
        expectSame(out.d[axis], x.d[axis], "output vs x");
    }
}

int32_t LocalDynamicFilterPlugin::configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
    nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept
{
    try
    {
        GLDFN_VALIDATE(nbInputs == kNbInputs && nbOutputs == 1,
            "expects 3 inputs (x, spatial, channel) and 1 output, got " << nbInputs << " and " << nbOutputs);
        checkShapes(in[kX].desc.dims, in[kSpatial].desc.dims, in[kChannel].desc.dims, out[0].desc.dims);
        return 0;
    }
    catch (std::exception const& e)
    {
        logPluginMessage(ILogger::Severity::kERROR, std::string("configurePlugin: ") + e.what());
    }
    return -1;
}

int32_t LocalDynamicFilterPlugin::getOutputDataTypes(
    DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes, int32_t nbInputs) const noexcept
{
    try
    {
        GLDFN_VALIDATE(nbInputs == kNbInputs && nbOutputs == 1, "expects 3 inputs and 1 output");
        GLDFN_VALIDATE(inputTypes[kX] == DataType::kFLOAT || inputTypes[kX] == DataType::kHALF,
            "x must be FP32 or FP16, got DataType " << static_cast<int32_t>(inputTypes[kX]));
        GLDFN_VALIDATE(inputTypes[kSpatial] == inputTypes[kX] && inputTypes[kChannel] == inputTypes[kX],
            "x, spatial and channel must share one data type");
        outputTypes[0] = inputTypes[kX];
        return 0;
    }
    catch (std::exception const& e)
    {
        logPluginMessage(ILogger::Severity::kERROR, std::string("getOutputDataTypes: ") + e.what());
    }
    return -1;
}

int32_t LocalDynamicFilterPlugin::getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs,
    nvinfer1::DimsExprs const* /*shapeInputs*/, int32_t nbShapeInputs, nvinfer1::DimsExprs* outputs,
    int32_t nbOutputs, nvinfer1::IExprBuilder& /*exprBuilder*/) noexcept
{
    try
    {
        GLDFN_VALIDATE(nbInputs == kNbInputs && nbShapeInputs == 0 && nbOutputs == 1,
            "expects 3 inputs, no shape inputs and 1 output");
        GLDFN_VALIDATE(inputs[kX].nbDims == 4, "x must be N x C x H x W, got rank " << inputs[kX].nbDims);
        GLDFN_VALIDATE(inputs[kSpatial].nbDims == 4, "spatial must have rank 4, got " << inputs[kSpatial].nbDims);
        GLDFN_VALIDATE(inputs[kChannel].nbDims == 3, "channel must have rank 3, got " << inputs[kChannel].nbDims);
        outputs[0] = inputs[kX];
        return 0;
    }
    catch (std::exception const& e)
    {
        logPluginMessage(ILogger::Severity::kERROR, std::string("getOutputShapes: ") + e.what());
    }
    return -1;
}

bool LocalDynamicFilterPlugin::supportsFormatCombination(
    int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut, int32_t nbInputs, int32_t nbOutputs) noexcept
{
    if (nbInputs != kNbInputs || nbOutputs != 1 || pos < 0 || pos >= nbInputs + nbOutputs)
    {
        return false;
    }
    nvinfer1::PluginTensorDesc const& desc = inOut[pos].desc;
    // Linear (NCHW) only: the kernel indexes planes of one channel. kHWC8 (8 channels of a pixel per 16 bytes)
    // would need a kernel of its own; whether TensorRT's reformats around the LDF layers cost enough to pay for
    // one is to be measured where TensorRT runs on a GPU (plugins/README.md, "Formats").
    if (desc.format != TensorFormat::kLINEAR)
    {
        return false;
    }
    if (pos == 0)
    {
        return desc.type == DataType::kFLOAT || desc.type == DataType::kHALF;
    }
    return desc.type == inOut[0].desc.type;
}

int32_t LocalDynamicFilterPlugin::getNbOutputs() const noexcept
{
    return 1;
}

int32_t LocalDynamicFilterPlugin::onShapeChange(
    nvinfer1::PluginTensorDesc const* in, int32_t nbInputs, nvinfer1::PluginTensorDesc const* out, int32_t nbOutputs) noexcept
{
    try
    {
        GLDFN_VALIDATE(nbInputs == kNbInputs && nbOutputs == 1, "expects 3 inputs and 1 output");
        checkShapes(in[kX].dims, in[kSpatial].dims, in[kChannel].dims, out[0].dims);
        return 0;
    }
    catch (std::exception const& e)
    {
        logPluginMessage(ILogger::Severity::kERROR, std::string("onShapeChange: ") + e.what());
    }
    return -1;
}

int32_t LocalDynamicFilterPlugin::enqueue(nvinfer1::PluginTensorDesc const* inputDesc,
    nvinfer1::PluginTensorDesc const* /*outputDesc*/, void const* const* inputs, void* const* outputs,
    void* /*workspace*/, cudaStream_t stream) noexcept
{
    try
    {
        Dims const& d = inputDesc[kX].dims;
        DataType const type = inputDesc[kX].type;
        GLDFN_VALIDATE(type == DataType::kFLOAT || type == DataType::kHALF,
            "enqueue: unsupported DataType " << static_cast<int32_t>(type));
        LdfShape const shape{d.d[0], d.d[1], d.d[2], d.d[3]};
        LdfDataType const dtype = type == DataType::kFLOAT ? LdfDataType::kFLOAT32 : LdfDataType::kFLOAT16;
        cudaError_t const status = launchLocalDynamicFilter(dtype, shape, mAttributes.kernelSize,
            mAttributes.dilation, inputs[kX], inputs[kSpatial], inputs[kChannel], outputs[0], stream);
        GLDFN_VALIDATE(status == cudaSuccess,
            "enqueue: kernel launch failed for x " << dimsText(d) << ": " << cudaGetErrorString(status));
        return 0;
    }
    catch (std::exception const& e)
    {
        logPluginMessage(ILogger::Severity::kERROR, e.what());
    }
    return -1;
}

nvinfer1::IPluginV3* LocalDynamicFilterPlugin::attachToContext(nvinfer1::IPluginResourceContext* /*context*/) noexcept
{
    return clone();
}

nvinfer1::PluginFieldCollection const* LocalDynamicFilterPlugin::getFieldsToSerialize() noexcept
{
    try
    {
        mSerializedFields = {
            PluginField(contract::kFieldKernelSize, &mAttributes.kernelSize, PluginFieldType::kINT32, 1),
            PluginField(contract::kFieldDilation, &mAttributes.dilation, PluginFieldType::kINT32, 1),
        };
        mSerializedCollection.nbFields = static_cast<int32_t>(mSerializedFields.size());
        mSerializedCollection.fields = mSerializedFields.data();
        return &mSerializedCollection;
    }
    catch (std::exception const& e)
    {
        logPluginMessage(ILogger::Severity::kERROR, std::string("getFieldsToSerialize: ") + e.what());
    }
    return nullptr;
}

LocalDynamicFilterCreator::LocalDynamicFilterCreator()
    : mFieldNames{PluginField(contract::kFieldKernelSize, nullptr, PluginFieldType::kINT32, 1),
        PluginField(contract::kFieldDilation, nullptr, PluginFieldType::kINT32, 1)}
{
    mFieldCollection.nbFields = static_cast<int32_t>(mFieldNames.size());
    mFieldCollection.fields = mFieldNames.data();
}

nvinfer1::IPluginV3* LocalDynamicFilterCreator::createPlugin(
    char const* name, nvinfer1::PluginFieldCollection const* fc, nvinfer1::TensorRTPhase phase) noexcept
{
    try
    {
        return new LocalDynamicFilterPlugin(parseLdfFields(fc));
    }
    catch (std::exception const& e)
    {
        logPluginMessage(ILogger::Severity::kERROR,
            std::string(contract::kPluginName) + " '" + (name != nullptr ? name : "") + "' (" + phaseName(phase)
                + " phase): " + e.what());
    }
    return nullptr;
}

nvinfer1::PluginFieldCollection const* LocalDynamicFilterCreator::getFieldNames() noexcept
{
    return &mFieldCollection;
}

char const* LocalDynamicFilterCreator::getPluginName() const noexcept
{
    return contract::kPluginName;
}

char const* LocalDynamicFilterCreator::getPluginVersion() const noexcept
{
    return contract::kPluginVersion;
}

char const* LocalDynamicFilterCreator::getPluginNamespace() const noexcept
{
    return contract::kPluginNamespace;
}

} // namespace gldfn
