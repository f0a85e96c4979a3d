// Drives libgldfn_trt_plugins.so through its real TensorRT interface without TensorRT itself: dlopen,
// setLoggerFinder, getCreators, createPlugin, the build-phase queries, the serialization round trip and, on a
// GPU, onShapeChange + enqueue with PluginTensorDesc and device pointers. A C API for ctypes
// (plugins/tests/plugin_harness.py); needs only the TensorRT headers, links neither libnvinfer nor libcudart.
// Built with -DLDFH_STAND_IN_REGISTRY and the soname libnvinfer.so.<major> it also stands in for TensorRT's plugin
// registry (getPluginRegistry), so that the library's load-time registration can be watched.
#include <NvInferRuntime.h>

#include <dlfcn.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

namespace
{
using namespace nvinfer1;

class CollectingLogger final : public ILogger
{
public:
    void log(Severity severity, AsciiChar const* msg) noexcept override
    {
        if (severity <= Severity::kWARNING)
        {
            messages += msg;
            messages += "\n";
        }
    }
    std::string messages;
};

class HarnessLoggerFinder final : public ILoggerFinder
{
public:
    ILogger* findLogger() override
    {
        return &logger;
    }
    CollectingLogger logger;
};

HarnessLoggerFinder gLoggerFinder;
IPluginCreatorV3One* gCreator = nullptr;
std::string gText;

using GetCreators = IPluginCreatorInterface* const* (*) (int32_t&);
using SetLoggerFinder = void (*)(ILoggerFinder*);

int fail(char const* message)
{
    gLoggerFinder.logger.messages += std::string("harness: ") + message + "\n";
    return -1;
}

PluginFieldCollection makeFields(std::vector<PluginField>& storage, int32_t const* kernelSize, int32_t const* dilation)
{
    storage = {PluginField("kernel_size", kernelSize, PluginFieldType::kINT32, 1),
        PluginField("dilation", dilation, PluginFieldType::kINT32, 1)};
    return PluginFieldCollection{static_cast<int32_t>(storage.size()), storage.data()};
}

IPluginV3OneBuild* buildOf(IPluginV3* plugin)
{
    return static_cast<IPluginV3OneBuild*>(plugin->getCapabilityInterface(PluginCapabilityType::kBUILD));
}

IPluginV3OneRuntime* runtimeOf(IPluginV3* plugin)
{
    return static_cast<IPluginV3OneRuntime*>(plugin->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
}

Dims dims(std::initializer_list<int64_t> values)
{
    Dims d{};
    d.nbDims = static_cast<int32_t>(values.size());
    int32_t i = 0;
    for (int64_t v : values)
    {
        d.d[i++] = v;
    }
    return d;
}

struct Prepared
{
    std::unique_ptr<IPluginV3> plugin;
    PluginTensorDesc in[3]{};
    PluginTensorDesc out{};
};

#ifdef LDFH_STAND_IN_REGISTRY
//! A plugin registry as TensorRT's behaves for the calls a plugin library makes: registerCreator refuses a second
//! creator of the same name, version and namespace (returns false); every call is counted.
class StandInRegistry final : public IPluginRegistry
{
public:
    struct Entry
    {
        IPluginCreatorInterface* creator;
        std::string key;
    };

    static std::string keyOf(IPluginCreatorInterface const& creator, char const* pluginNamespace)
    {
        auto const& v3 = static_cast<IPluginCreatorV3One const&>(creator);
        return std::string(v3.getPluginName()) + "/" + v3.getPluginVersion() + "/" + pluginNamespace;
    }

    void setErrorRecorder(IErrorRecorder* const) noexcept override {}
    IErrorRecorder* getErrorRecorder() const noexcept override
    {
        return nullptr;
    }
    bool isParentSearchEnabled() const override
    {
        return false;
    }
    void setParentSearchEnabled(bool const) override {}
    PluginLibraryHandle loadLibrary(AsciiChar const*) noexcept override
    {
        return nullptr;
    }
    void deregisterLibrary(PluginLibraryHandle) noexcept override {}
    bool registerCreator(IPluginCreatorInterface& creator, AsciiChar const* const pluginNamespace) noexcept override
    {
        ++registerCalls;
        std::string const key = keyOf(creator, pluginNamespace);
        if (std::any_of(entries.begin(), entries.end(), [&](Entry const& e) { return e.key == key; }))
        {
            return false;
        }
        entries.push_back({&creator, key});
        return true;
    }
    IPluginCreatorInterface* const* getAllCreators(int32_t* const numCreators) const noexcept override
    {
        *numCreators = 0;
        return nullptr;
    }
    IPluginCreatorInterface* getCreator(AsciiChar const* const pluginName, AsciiChar const* const pluginVersion,
        AsciiChar const* const pluginNamespace) noexcept override
    {
        std::string const key = std::string(pluginName) + "/" + pluginVersion + "/" + pluginNamespace;
        auto found = std::find_if(entries.begin(), entries.end(), [&](Entry const& e) { return e.key == key; });
        return found == entries.end() ? nullptr : found->creator;
    }
    bool deregisterCreator(IPluginCreatorInterface const& creator) noexcept override
    {
        auto found = std::find_if(entries.begin(), entries.end(), [&](Entry const& e) { return e.creator == &creator; });
        if (found == entries.end())
        {
            return false;
        }
        entries.erase(found);
        return true;
    }
    IPluginResource* acquirePluginResource(AsciiChar const*, IPluginResource*) noexcept override
    {
        return nullptr;
    }
    int32_t releasePluginResource(AsciiChar const*) noexcept override
    {
        return 0;
    }
    IPluginCreatorInterface* const* getAllCreatorsRecursive(int32_t* const numCreators) noexcept override
    {
        *numCreators = 0;
        return nullptr;
    }

    std::vector<Entry> entries;
    int32_t registerCalls = 0;
};

StandInRegistry gRegistry;
#endif

} // namespace

extern "C"
{

//! dlopen a library and nothing else (its load-time code runs). 0 on success.
int ldfh_dlopen(char const* libraryPath)
{
    return dlopen(libraryPath, RTLD_NOW | RTLD_LOCAL) == nullptr ? fail(dlerror()) : 0;
}

#ifdef LDFH_STAND_IN_REGISTRY
//! What the stand-in registry holds: "calls=N;" then "name/version/namespace;" per registered creator.
char const* ldfh_registry_contents()
{
    gText = "calls=" + std::to_string(gRegistry.registerCalls) + ";";
    for (StandInRegistry::Entry const& entry : gRegistry.entries)
    {
        gText += entry.key + ";";
    }
    return gText.c_str();
}
#endif

//! dlopen the library, hand it a logger, find the creator by name/version/namespace. 0 on success.
int ldfh_load(char const* libraryPath, char const* name, char const* version, char const* pluginNamespace)
{
    void* handle = dlopen(libraryPath, RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr)
    {
        return fail(dlerror());
    }
    auto setLoggerFinder = reinterpret_cast<SetLoggerFinder>(dlsym(handle, "setLoggerFinder"));
    auto getCreators = reinterpret_cast<GetCreators>(dlsym(handle, "getCreators"));
    if (setLoggerFinder == nullptr || getCreators == nullptr)
    {
        return fail("the library does not export setLoggerFinder and getCreators");
    }
    setLoggerFinder(&gLoggerFinder);
    int32_t count = 0;
    IPluginCreatorInterface* const* creators = getCreators(count);
    for (int32_t i = 0; i < count; ++i)
    {
        InterfaceInfo const info = creators[i]->getInterfaceInfo();
        if (std::strcmp(info.kind, "PLUGIN CREATOR_V3ONE") != 0)
        {
            continue;
        }
        auto* creator = static_cast<IPluginCreatorV3One*>(creators[i]);
        if (std::strcmp(creator->getPluginName(), name) == 0 && std::strcmp(creator->getPluginVersion(), version) == 0
            && std::strcmp(creator->getPluginNamespace(), pluginNamespace) == 0)
        {
            gCreator = creator;
            return 0;
        }
    }
    return fail("no matching IPluginCreatorV3One among getCreators()");
}

//! Warnings and errors logged so far (by the plugin and the harness), then cleared.
char const* ldfh_take_log()
{
    gText = gLoggerFinder.logger.messages;
    gLoggerFinder.logger.messages.clear();
    return gText.c_str();
}

//! The creator's field names, comma-separated.
char const* ldfh_field_names()
{
    gText.clear();
    PluginFieldCollection const* fields = gCreator->getFieldNames();
    for (int32_t i = 0; i < fields->nbFields; ++i)
    {
        gText += (i ? "," : "") + std::string(fields->fields[i].name);
    }
    return gText.c_str();
}

//! createPlugin with kernel_size and dilation as INT32 fields; phase 0 build, 1 runtime. nullptr on failure.
void* ldfh_create(int32_t kernelSize, int32_t dilation, int32_t phase)
{
    std::vector<PluginField> storage;
    PluginFieldCollection const fc = makeFields(storage, &kernelSize, &dilation);
    return gCreator->createPlugin("harness", &fc, phase == 0 ? TensorRTPhase::kBUILD : TensorRTPhase::kRUNTIME);
}

void ldfh_destroy(void* plugin)
{
    delete static_cast<IPluginV3*>(plugin);
}

//! Serialize a plugin's fields, recreate it in the runtime phase from them, and read the fields back from the
//! new plugin. Returns the runtime-phase plugin (nullptr on failure) and its kernel_size and dilation.
void* ldfh_roundtrip(void* plugin, int32_t* kernelSize, int32_t* dilation)
{
    PluginFieldCollection const* fields = runtimeOf(static_cast<IPluginV3*>(plugin))->getFieldsToSerialize();
    if (fields == nullptr)
    {
        fail("getFieldsToSerialize returned nullptr");
        return nullptr;
    }
    IPluginV3* restored = gCreator->createPlugin("restored", fields, TensorRTPhase::kRUNTIME);
    if (restored == nullptr)
    {
        return nullptr;
    }
    PluginFieldCollection const* again = runtimeOf(restored)->getFieldsToSerialize();
    for (int32_t i = 0; i < again->nbFields; ++i)
    {
        PluginField const& f = again->fields[i];
        int32_t* target = std::strcmp(f.name, "kernel_size") == 0 ? kernelSize
            : std::strcmp(f.name, "dilation") == 0                  ? dilation
                                                                    : nullptr;
        if (target != nullptr && f.type == PluginFieldType::kINT32 && f.length == 1)
        {
            *target = *static_cast<int32_t const*>(f.data);
        }
    }
    return restored;
}

//! supportsFormatCombination for position pos with the given DataType and TensorFormat values of the 4 tensors.
int ldfh_supports(void* plugin, int32_t pos, int32_t const* types, int32_t const* formats)
{
    DynamicPluginTensorDesc desc[4]{};
    for (int32_t i = 0; i < 4; ++i)
    {
        desc[i].desc.type = static_cast<DataType>(types[i]);
        desc[i].desc.format = static_cast<TensorFormat>(formats[i]);
    }
    return buildOf(static_cast<IPluginV3*>(plugin))->supportsFormatCombination(pos, desc, 3, 1) ? 1 : 0;
}

//! getOutputDataTypes for the 3 input DataType values; the output type, or -1 when the plugin refuses.
int ldfh_output_type(void* plugin, int32_t const* inputTypes)
{
    DataType in[3];
    for (int32_t i = 0; i < 3; ++i)
    {
        in[i] = static_cast<DataType>(inputTypes[i]);
    }
    DataType out = DataType::kFLOAT;
    int32_t const status = buildOf(static_cast<IPluginV3*>(plugin))->getOutputDataTypes(&out, 1, in, 3);
    return status == 0 ? static_cast<int>(out) : -1;
}

//! onShapeChange with x N x C x H x W and spatial/channel shapes derived from taps (pass a wrong taps to check
//! the refusal). 0 when the plugin accepts.
int ldfh_shape_change(void* plugin, int32_t dtype, int64_t n, int64_t c, int64_t h, int64_t w, int64_t taps)
{
    PluginTensorDesc in[3]{};
    PluginTensorDesc out{};
    in[0].dims = dims({n, c, h, w});
    in[1].dims = dims({n, taps, h, w});
    in[2].dims = dims({n, c, taps});
    out.dims = in[0].dims;
    for (PluginTensorDesc* d : {&in[0], &in[1], &in[2], &out})
    {
        d->type = static_cast<DataType>(dtype);
        d->format = TensorFormat::kLINEAR;
        d->scale = -1.F;
    }
    return runtimeOf(static_cast<IPluginV3*>(plugin))->onShapeChange(in, 3, &out, 1);
}

//! The runtime path TensorRT takes: attachToContext, then onShapeChange for x N x C x H x W. Returns a handle
//! for ldfh_enqueue (nullptr on failure); free it with ldfh_release.
void* ldfh_prepare(void* plugin, int32_t dtype, int64_t n, int64_t c, int64_t h, int64_t w, int32_t kernelSize)
{
    auto prepared = std::make_unique<Prepared>();
    prepared->plugin.reset(runtimeOf(static_cast<IPluginV3*>(plugin))->attachToContext(nullptr));
    if (!prepared->plugin)
    {
        fail("attachToContext returned nullptr");
        return nullptr;
    }
    int64_t const taps = static_cast<int64_t>(kernelSize) * kernelSize;
    prepared->in[0].dims = dims({n, c, h, w});
    prepared->in[1].dims = dims({n, taps, h, w});
    prepared->in[2].dims = dims({n, c, taps});
    prepared->out.dims = prepared->in[0].dims;
    for (PluginTensorDesc* d : {&prepared->in[0], &prepared->in[1], &prepared->in[2], &prepared->out})
    {
        d->type = static_cast<DataType>(dtype);
        d->format = TensorFormat::kLINEAR;
        d->scale = -1.F;
    }
    if (runtimeOf(prepared->plugin.get())->onShapeChange(prepared->in, 3, &prepared->out, 1) != 0)
    {
        fail("onShapeChange refused the shapes");
        return nullptr;
    }
    return prepared.release();
}

//! enqueue with device pointers on stream (a cudaStream_t). Returns enqueue's status (0 = queued).
int ldfh_enqueue(void* preparedHandle, void const* x, void const* spatial, void const* channel, void* out, void* stream)
{
    auto* prepared = static_cast<Prepared*>(preparedHandle);
    void const* inputs[3] = {x, spatial, channel};
    void* outputs[1] = {out};
    return runtimeOf(prepared->plugin.get())
        ->enqueue(prepared->in, &prepared->out, inputs, outputs, nullptr, static_cast<cudaStream_t>(stream));
}

void ldfh_release(void* preparedHandle)
{
    delete static_cast<Prepared*>(preparedHandle);
}

#ifdef LDFH_STAND_IN_REGISTRY
__attribute__((visibility("default"))) IPluginRegistry* getPluginRegistry() noexcept
{
    return &gRegistry;
}
#endif

} // extern "C"
