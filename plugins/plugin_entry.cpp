// The library's only exported symbols: what IPluginRegistry::loadLibrary (trtexec --dynamicPlugins) calls.
#include "ldf_plugin.h"
#include "plugin_logging.h"

#include <NvInferRuntime.h>
#include <NvInferVersion.h>
#include <cuda_runtime_api.h>

#define GLDFN_STRINGIFY_(x) #x
#define GLDFN_STRINGIFY(x) GLDFN_STRINGIFY_(x)

// The TensorRT headers and the CUDA runtime (linked statically) the library was built with, readable without
// loading it (gldfn_runtime.plugin.library refuses a library whose TensorRT major does not match the loaded
// TensorRT's, or whose CUDA runtime is newer than the driver): `readelf -p .gldfn_build LIB`.
__attribute__((used, section(".gldfn_build"))) static char const kBuildInfo[]
    = "gldfn-trt-plugin:tensorrt-headers=" GLDFN_STRINGIFY(NV_TENSORRT_MAJOR) "." GLDFN_STRINGIFY(
        NV_TENSORRT_MINOR) "." GLDFN_STRINGIFY(NV_TENSORRT_PATCH) ";cuda-runtime=" GLDFN_STRINGIFY(CUDART_VERSION) ";";

extern "C" __attribute__((visibility("default"))) void setLoggerFinder(nvinfer1::ILoggerFinder* finder)
{
    gldfn::setPluginLoggerFinder(finder);
}

extern "C" __attribute__((visibility("default"))) nvinfer1::IPluginCreatorInterface* const* getCreators(
    int32_t& nbCreators)
{
    static gldfn::LocalDynamicFilterCreator localDynamicFilterCreator;
    static nvinfer1::IPluginCreatorInterface* const creators[] = {&localDynamicFilterCreator};
    nbCreators = static_cast<int32_t>(sizeof(creators) / sizeof(creators[0]));
    return creators;
}
