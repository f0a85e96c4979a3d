// TensorRT IPluginV3 glue of the local dynamic filter; the arithmetic lives in ldf_kernel.cu.
#pragma once

#include <NvInferRuntime.h>

#include <cstdint>
#include <vector>

namespace gldfn
{

//! The plugin's attributes, validated against the op contract on construction.
struct LdfAttributes
{
    int32_t kernelSize;
    int32_t dilation;

    //! Throws PluginError naming the bad value and the allowed range.
    void validate() const;
};

//! Reads kernel_size and dilation (INT32 or INT64, contract defaults when absent) from a field collection.
LdfAttributes parseLdfFields(nvinfer1::PluginFieldCollection const* fields);

class LocalDynamicFilterPlugin final : public nvinfer1::IPluginV3,
                                       public nvinfer1::IPluginV3OneCore,
                                       public nvinfer1::IPluginV3OneBuild,
                                       public nvinfer1::IPluginV3OneRuntime
{
public:
    enum InputIndex : int32_t
    {
        kX = 0,
        kSpatial = 1,
        kChannel = 2,
        kNbInputs = 3
    };

    explicit LocalDynamicFilterPlugin(LdfAttributes const& attributes);
    LocalDynamicFilterPlugin(LocalDynamicFilterPlugin const& other);
    LocalDynamicFilterPlugin& operator=(LocalDynamicFilterPlugin const&) = delete;
    ~LocalDynamicFilterPlugin() override = default;

    // IPluginV3
    nvinfer1::IPluginCapability* getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept override;
    nvinfer1::IPluginV3* clone() noexcept override;

    // IPluginV3OneCore
    char const* getPluginName() const noexcept override;
    char const* getPluginVersion() const noexcept override;
    char const* getPluginNamespace() const noexcept override;

    // IPluginV3OneBuild
    int32_t configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
        nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept override;
    int32_t getOutputDataTypes(nvinfer1::DataType* outputTypes, int32_t nbOutputs,
        nvinfer1::DataType const* inputTypes, int32_t nbInputs) const noexcept override;
    int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs, nvinfer1::DimsExprs const* shapeInputs,
        int32_t nbShapeInputs, nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
        nvinfer1::IExprBuilder& exprBuilder) noexcept override;
    bool supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
        int32_t nbOutputs) noexcept override;
    int32_t getNbOutputs() const noexcept override;

    // IPluginV3OneRuntime
    int32_t onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs, nvinfer1::PluginTensorDesc const* out,
        int32_t nbOutputs) noexcept override;
    int32_t enqueue(nvinfer1::PluginTensorDesc const* inputDesc, nvinfer1::PluginTensorDesc const* outputDesc,
        void const* const* inputs, void* const* outputs, void* workspace, cudaStream_t stream) noexcept override;
    nvinfer1::IPluginV3* attachToContext(nvinfer1::IPluginResourceContext* context) noexcept override;
    nvinfer1::PluginFieldCollection const* getFieldsToSerialize() noexcept override;

private:
    //! Checks ranks and the dimensions that must agree; -1 (unknown at build time) matches anything.
    void checkShapes(nvinfer1::Dims const& x, nvinfer1::Dims const& spatial, nvinfer1::Dims const& channel,
        nvinfer1::Dims const& out) const;

    LdfAttributes mAttributes;
    std::vector<nvinfer1::PluginField> mSerializedFields;
    nvinfer1::PluginFieldCollection mSerializedCollection{};
};

class LocalDynamicFilterCreator final : public nvinfer1::IPluginCreatorV3One
{
public:
    LocalDynamicFilterCreator();

    nvinfer1::IPluginV3* createPlugin(
        char const* name, nvinfer1::PluginFieldCollection const* fc, nvinfer1::TensorRTPhase phase) noexcept override;
    nvinfer1::PluginFieldCollection const* getFieldNames() noexcept override;
    char const* getPluginName() const noexcept override;
    char const* getPluginVersion() const noexcept override;
    char const* getPluginNamespace() const noexcept override;

private:
    std::vector<nvinfer1::PluginField> mFieldNames;
    nvinfer1::PluginFieldCollection mFieldCollection{};
};

} // namespace gldfn
