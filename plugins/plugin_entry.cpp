// The library's only exported symbols: what IPluginRegistry::loadLibrary (trtexec --dynamicPlugins) calls.
#include "ldf_plugin.h"
#include "plugin_logging.h"

#include <NvInferRuntime.h>

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
