// Logging through the logger TensorRT hands over with setLoggerFinder (stderr before that, and for a host of
// another TensorRT major's logger layout), and the error type the plugin throws internally. No exception may
// leave the library: every TensorRT entry point catches it, logs it and returns an error code or nullptr.
#pragma once

#include <NvInferRuntime.h>

#include <sstream>
#include <stdexcept>
#include <string>

namespace gldfn
{

//! Keep finder for logging, or nullptr (stderr) when it does not match the headers' layout.
void setPluginLoggerFinder(nvinfer1::ILoggerFinder* finder) noexcept;

void logPluginMessage(nvinfer1::ILogger::Severity severity, std::string const& message) noexcept;

class PluginError : public std::runtime_error
{
public:
    PluginError(std::string const& message, char const* file, int line)
        : std::runtime_error(message + " (" + file + ":" + std::to_string(line) + ")")
    {
    }
};

} // namespace gldfn

//! Throw a PluginError carrying file and line when cond is false; message is a stream expression.
#define GLDFN_VALIDATE(cond, message)                                                                                 \
    do                                                                                                                 \
    {                                                                                                                  \
        if (!(cond))                                                                                                   \
        {                                                                                                              \
            std::ostringstream gldfnStream_;                                                                           \
            gldfnStream_ << message;                                                                                   \
            throw ::gldfn::PluginError(gldfnStream_.str(), __FILE__, __LINE__);                                        \
        }                                                                                                              \
    } while (false)
