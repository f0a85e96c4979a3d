// The library's only exported symbols: what IPluginRegistry::loadLibrary (trtexec --dynamicPlugins) calls; and a
// load-time registration of the creators for hosts that only dlopen the library (Triton's TensorRT backend
// `--backend-config=tensorrt,plugins=LIB`, LD_PRELOAD).
#include "ldf_plugin.h"
#include "plugin_logging.h"

#include <NvInferRuntime.h>
#include <NvInferVersion.h>
#include <cuda_runtime_api.h>

#include <dlfcn.h>

#include <mutex>

#define GLDFN_STRINGIFY_(x) #x
#define GLDFN_STRINGIFY(x) GLDFN_STRINGIFY_(x)

// The TensorRT headers and the CUDA runtime (linked statically) the library was built with, readable without
// loading it (gldfn_runtime.plugin.library refuses a library whose TensorRT major does not match the loaded
// TensorRT's, or whose CUDA runtime is newer than the driver): `readelf -p .gldfn_build LIB`.
__attribute__((used, section(".gldfn_build"))) static char const kBuildInfo[]
    = "gldfn-trt-plugin:tensorrt-headers=" GLDFN_STRINGIFY(NV_TENSORRT_MAJOR) "." GLDFN_STRINGIFY(
        NV_TENSORRT_MINOR) "." GLDFN_STRINGIFY(NV_TENSORRT_PATCH) ";cuda-runtime=" GLDFN_STRINGIFY(CUDART_VERSION) ";";

namespace
{

nvinfer1::IPluginCreatorInterface* const* creatorList(int32_t& count)
{
    static gldfn::LocalDynamicFilterCreator localDynamicFilterCreator;
    static nvinfer1::IPluginCreatorInterface* const creators[] = {&localDynamicFilterCreator};
    count = static_cast<int32_t>(sizeof(creators) / sizeof(creators[0]));
    return creators;
}

using GetPluginRegistry = nvinfer1::IPluginRegistry* (*) ();

// The TensorRT libraries whose registry has the layout of the headers this library was built with: full TensorRT
// of that major and, for 11, TensorRT-RTX (which shares 11's interfaces).
constexpr char const* kTensorRTLibraries[] = {
    "libnvinfer.so." GLDFN_STRINGIFY(NV_TENSORRT_MAJOR),
#if NV_TENSORRT_MAJOR == 11
    "libtensorrt_rtx.so.1",
#endif
};

//! getPluginRegistry of a TensorRT already in the process, or nullptr. Looked up by soname with RTLD_NOLOAD (which
//! never loads anything) rather than in the global scope alone: Triton's TensorRT backend and Python's extension
//! modules bring libnvinfer in with RTLD_LOCAL, where dlsym(RTLD_DEFAULT, ...) cannot see it; and a global
//! getPluginRegistry of another TensorRT major would have another vtable.
GetPluginRegistry findLoadedRegistry()
{
    for (char const* soname : kTensorRTLibraries)
    {
        void* handle = dlopen(soname, RTLD_LAZY | RTLD_NOLOAD);
        if (handle == nullptr)
        {
            continue;
        }
        auto const function = reinterpret_cast<GetPluginRegistry>(dlsym(handle, "getPluginRegistry"));
        dlclose(handle); // drops only the reference RTLD_NOLOAD added
        if (function != nullptr)
        {
            return function;
        }
    }
    return nullptr;
}

std::mutex gRegistrationMutex;
nvinfer1::IPluginRegistry* gRegisteredAtLoad = nullptr; // where registerAtLoad put the creators, until handed back

//! Register the creators in the loaded TensorRT's registry, once per process: a creator of the same name, version
//! and namespace already there (another copy of this library, e.g. an engine's embedded one) is left as it is.
void registerAtLoad() noexcept
{
    try
    {
        GetPluginRegistry const getPluginRegistry = findLoadedRegistry();
        nvinfer1::IPluginRegistry* registry = getPluginRegistry != nullptr ? getPluginRegistry() : nullptr;
        if (registry == nullptr)
        {
            return; // no TensorRT yet: IPluginRegistry::loadLibrary registers the creators when it loads the library
        }
        std::lock_guard<std::mutex> lock(gRegistrationMutex);
        int32_t count = 0;
        nvinfer1::IPluginCreatorInterface* const* creators = creatorList(count);
        for (int32_t i = 0; i < count; ++i)
        {
            auto const* creator = static_cast<nvinfer1::IPluginCreatorV3One const*>(creators[i]);
            if (registry->getCreator(creator->getPluginName(), creator->getPluginVersion(), creator->getPluginNamespace())
                != nullptr)
            {
                continue;
            }
            if (registry->registerCreator(*creators[i], creator->getPluginNamespace()))
            {
                gRegisteredAtLoad = registry;
            }
            else
            {
                gldfn::logPluginMessage(nvinfer1::ILogger::Severity::kWARNING,
                    std::string("the plugin registry refused creator ") + creator->getPluginName());
            }
        }
    }
    catch (...)
    {
        gldfn::logPluginMessage(nvinfer1::ILogger::Severity::kERROR, "registering the plugin creators at load failed");
    }
}

//! Take the load-time registration back: a caller of getCreators registers the creators itself, and
//! IPluginRegistry::loadLibrary fails when any of them is registered already.
void handBackLoadRegistration() noexcept
{
    std::lock_guard<std::mutex> lock(gRegistrationMutex);
    if (gRegisteredAtLoad == nullptr)
    {
        return;
    }
    int32_t count = 0;
    nvinfer1::IPluginCreatorInterface* const* creators = creatorList(count);
    for (int32_t i = 0; i < count; ++i)
    {
        gRegisteredAtLoad->deregisterCreator(*creators[i]);
    }
    gRegisteredAtLoad = nullptr;
}

// No deregistration at unload: at process exit TensorRT's registry may be destroyed before this library is.
__attribute__((constructor)) void registerWhenLoaded()
{
    registerAtLoad();
}

} // namespace

extern "C" __attribute__((visibility("default"))) void setLoggerFinder(nvinfer1::ILoggerFinder* finder)
{
    gldfn::setPluginLoggerFinder(finder);
}

extern "C" __attribute__((visibility("default"))) nvinfer1::IPluginCreatorInterface* const* getCreators(
    int32_t& nbCreators)
{
    handBackLoadRegistration();
    return creatorList(nbCreators);
}
