#include "plugin_logging.h"

#include <atomic>
#include <cstdio>
#include <cstring>
#include <cxxabi.h>
#include <typeinfo>

namespace gldfn
{
namespace
{
std::atomic<nvinfer1::ILoggerFinder*> gLoggerFinder{nullptr};

char const* severityName(nvinfer1::ILogger::Severity severity)
{
    switch (severity)
    {
    case nvinfer1::ILogger::Severity::kINTERNAL_ERROR: return "INTERNAL_ERROR";
    case nvinfer1::ILogger::Severity::kERROR: return "ERROR";
    case nvinfer1::ILogger::Severity::kWARNING: return "WARNING";
    case nvinfer1::ILogger::Severity::kINFO: return "INFO";
    case nvinfer1::ILogger::Severity::kVERBOSE: return "VERBOSE";
    }
    return "UNKNOWN";
}

char const* mangledName(std::type_info const& type)
{
    char const* name = type.name();
    return name[0] == '*' ? name + 1 : name; // GCC marks names that must be compared by address with '*'
}

bool derivesFrom(std::type_info const* type, char const* baseName)
{
    if (type == nullptr)
    {
        return false;
    }
    if (std::strcmp(mangledName(*type), baseName) == 0)
    {
        return true;
    }
    if (auto const* single = dynamic_cast<abi::__si_class_type_info const*>(type))
    {
        return derivesFrom(single->__base_type, baseName);
    }
    if (auto const* multiple = dynamic_cast<abi::__vmi_class_type_info const*>(type))
    {
        for (unsigned int i = 0; i < multiple->__base_count; ++i)
        {
            if (derivesFrom(multiple->__base_info[i].__base_type, baseName))
            {
                return true;
            }
        }
    }
    return false;
}

//! The dynamic type of a polymorphic object read from its vtable (Itanium C++ ABI: the slot before the first
//! virtual function points at the type_info, null where the host was compiled without RTTI). typeid(*object)
//! cannot be used: it would dereference that null.
std::type_info const* dynamicType(void const* object)
{
    auto const* const* vtable = *static_cast<void const* const* const*>(object);
    return static_cast<std::type_info const*>(vtable[-1]);
}

//! Whether finder derives from the ILoggerFinder of the headers this library was built with (false for another
//! TensorRT major's layout, and for a host compiled without RTTI).
bool hostLoggerFinderMatches(nvinfer1::ILoggerFinder const* finder)
{
    return derivesFrom(dynamicType(finder), mangledName(typeid(nvinfer1::ILoggerFinder)));
}

std::atomic<bool> gMismatchReported{false};

} // namespace

void setPluginLoggerFinder(nvinfer1::ILoggerFinder* finder) noexcept
{
    // TensorRT 11 made ILoggerFinder and ILogger versioned interfaces (findLogger and log moved to other vtable
    // slots), so calling a host of the other layout crashes. A host whose finder does not derive from the
    // ILoggerFinder these headers declare gets no calls: the plugin's messages go to stderr instead.
    if (finder != nullptr && !hostLoggerFinderMatches(finder))
    {
        finder = nullptr;
        if (!gMismatchReported.exchange(true))
        {
            std::fprintf(stderr,
                "WARNING: [gldfn plugin] this library was built with TensorRT %d headers, but the host's logger "
                "finder is not of that TensorRT major's ILoggerFinder (another TensorRT major, or no RTTI to tell); "
                "the plugin's messages go to stderr. Load the library built for the host's TensorRT "
                "(`gldfn-trt plugin build --tensorrt-major N`).\n",
                NV_TENSORRT_MAJOR);
        }
    }
    gLoggerFinder.store(finder);
}

void logPluginMessage(nvinfer1::ILogger::Severity severity, std::string const& message) noexcept
{
    try
    {
        std::string const text = "[gldfn plugin] " + message;
        nvinfer1::ILoggerFinder* finder = gLoggerFinder.load();
        nvinfer1::ILogger* logger = finder != nullptr ? finder->findLogger() : nullptr;
        if (logger != nullptr)
        {
            logger->log(severity, text.c_str());
        }
        else if (severity <= nvinfer1::ILogger::Severity::kWARNING)
        {
            std::fprintf(stderr, "%s: %s\n", severityName(severity), text.c_str());
        }
    }
    catch (...)
    {
        std::fputs("[gldfn plugin] failed to log a message\n", stderr);
    }
}

} // namespace gldfn
