// gldfn_upscale: run a GLDFN TensorRT engine (built by `gldfn-trt build`) on one PNG image from C++.
//
//   gldfn_upscale ENGINE INPUT.png OUTPUT.png [--plugin libgldfn_trt_plugins.so] [--overwrite]
//
// OUTPUT.png must not be one of the files it reads, and an existing one is replaced only with --overwrite.
// Reads the engine file, checks that there is a CUDA GPU and that the TensorRT library it runs with is of its
// headers' major (TensorRT 11 changed ILogger's layout), loads the plugin library into TensorRT's plugin registry
// (without --plugin the engine must embed it, built with --embed-plugin: then host code in the plan is allowed),
// deserializes the engine, reads an 8-bit PNG with
// libpng (gray and alpha are dropped to RGB), runs it once in the engine's profile and writes the upscaled RGB
// PNG under a temporary name that is renamed into place on success. Images outside the engine's min/max
// profile are refused: tiling lives in the Python runtime (`gldfn-trt run`).
#include <NvInferRuntime.h>
#include <NvInferVersion.h>
#include <cuda_runtime_api.h>
#include <png.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

// 1 when CMakeLists.txt links TensorRT-RTX (libtensorrt_rtx) rather than TensorRT (libnvinfer).
#ifndef GLDFN_TENSORRT_RTX
#define GLDFN_TENSORRT_RTX 0
#endif

namespace
{
//! Refuse a TensorRT library whose major differs from the headers': this program's Logger has the headers'
//! ILogger layout, and the library would call it through its own (a crash at the first message). TensorRT-RTX
//! 1.x implements TensorRT 11's interfaces.
void checkLibraryMatchesHeaders()
{
    int32_t const libraryMajor = getInferLibMajorVersion();
    char const* const library = GLDFN_TENSORRT_RTX ? "TensorRT-RTX" : "TensorRT";
#if defined(TRT_MAJOR_RTX)
    bool const matches = GLDFN_TENSORRT_RTX && libraryMajor == TRT_MAJOR_RTX;
    std::string const headers = "TensorRT-RTX " + std::to_string(TRT_MAJOR_RTX);
#else
    bool const matches = GLDFN_TENSORRT_RTX ? NV_TENSORRT_MAJOR == 11 : libraryMajor == NV_TENSORRT_MAJOR;
    std::string const headers = "TensorRT " + std::to_string(NV_TENSORRT_MAJOR);
#endif
    if (!matches)
    {
        throw std::runtime_error("built with " + headers + " headers but running with the " + library + " "
            + std::to_string(libraryMajor) + " library, whose ILogger layout differs: rebuild against one installation "
              "(-DTENSORRT_ROOT with its include/ and lib/) or put the matching library on LD_LIBRARY_PATH");
    }
}

class Logger : public nvinfer1::ILogger
{
public:
    void log(Severity severity, char const* message) noexcept override
    {
        if (severity <= Severity::kWARNING)
        {
            std::cerr << "[TensorRT] " << message << '\n';
        }
    }
};

struct RgbImage
{
    uint32_t width{};
    uint32_t height{};
    std::vector<uint8_t> pixels; // height x width x 3, row-major
};

RgbImage readPng(std::string const& path)
{
    png_image image{};
    image.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&image, path.c_str()))
    {
        throw std::runtime_error(path + ": not a readable PNG (" + image.message + ")");
    }
    image.format = PNG_FORMAT_RGB;
    RgbImage result{image.width, image.height, std::vector<uint8_t>(PNG_IMAGE_SIZE(image))};
    if (!png_image_finish_read(&image, nullptr, result.pixels.data(), 0, nullptr))
    {
        throw std::runtime_error(path + ": " + image.message);
    }
    return result;
}

void writePngAtomically(std::string const& path, RgbImage const& rgb)
{
    png_image image{};
    image.version = PNG_IMAGE_VERSION;
    image.width = rgb.width;
    image.height = rgb.height;
    image.format = PNG_FORMAT_RGB;
    std::string const temporary = path + ".partial";
    if (!png_image_write_to_file(&image, temporary.c_str(), 0, rgb.pixels.data(), 0, nullptr))
    {
        std::remove(temporary.c_str());
        throw std::runtime_error(path + ": cannot write (" + image.message + ")");
    }
    if (std::rename(temporary.c_str(), path.c_str()) != 0)
    {
        std::remove(temporary.c_str());
        throw std::runtime_error(path + ": cannot move the finished file into place");
    }
}

std::vector<char> readFile(std::string const& path)
{
    std::ifstream file(path, std::ios::binary);
    if (!file)
    {
        throw std::runtime_error(path + ": cannot open");
    }
    return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

//! A CUDA GPU this process can use, checked before TensorRT sees the engine: without one, deserializing fails with
//! a message about TensorRT versions that would mislead.
void checkGpu()
{
    int count = 0;
    cudaError_t const status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess || count == 0)
    {
        std::string const reason = status != cudaSuccess ? cudaGetErrorString(status) : "no device";
        throw std::runtime_error("no CUDA GPU (" + reason
            + "): TensorRT engines run on an NVIDIA GPU. Without one, upscale with the Python runtime on the CPU: "
              "`gldfn upscale INPUT.png -o OUTPUT.png --onnx MODEL.onnx`");
    }
}

void checkCuda(cudaError_t status, char const* what)
{
    if (status != cudaSuccess)
    {
        throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(status));
    }
}

class DeviceBuffer
{
public:
    explicit DeviceBuffer(size_t bytes)
    {
        checkCuda(cudaMalloc(&mData, bytes), "cudaMalloc");
    }
    ~DeviceBuffer()
    {
        cudaFree(mData);
    }
    DeviceBuffer(DeviceBuffer const&) = delete;
    DeviceBuffer& operator=(DeviceBuffer const&) = delete;
    void* get() const
    {
        return mData;
    }

private:
    void* mData{};
};

struct Arguments
{
    std::string engine;
    std::string input;
    std::string output;
    std::string plugin;
    bool overwrite{};
    bool help{};
};

char const* const kUsage
    = "usage: gldfn_upscale ENGINE INPUT.png OUTPUT.png [--plugin libgldfn_trt_plugins.so] [--overwrite]";

void printHelp()
{
    std::cout << kUsage << "\n\n"
              << "Upscale one 8-bit PNG with a GLDFN engine from `gldfn-trt build` (needs an NVIDIA GPU), in one pass:\n"
                 "the image must fit the engine's profile (`gldfn-trt inspect ENGINE`).\n\n"
                 "  --plugin LIB   the plugin library the engine was built with (leave out for --embed-plugin engines)\n"
                 "  --overwrite    replace OUTPUT.png when it exists\n"
                 "  -h, --help     show this and exit\n";
}

Arguments parseArguments(int argc, char** argv)
{
    Arguments arguments;
    std::vector<std::string> positional;
    for (int i = 1; i < argc; ++i)
    {
        std::string const word = argv[i];
        if (word == "-h" || word == "--help")
        {
            arguments.help = true;
            return arguments;
        }
        if (word == "--plugin" && i + 1 < argc)
        {
            arguments.plugin = argv[++i];
        }
        else if (word == "--overwrite")
        {
            arguments.overwrite = true;
        }
        else
        {
            positional.push_back(word);
        }
    }
    if (positional.size() != 3)
    {
        throw std::invalid_argument(kUsage);
    }
    arguments.engine = positional[0];
    arguments.input = positional[1];
    arguments.output = positional[2];
    return arguments;
}

// Before anything is loaded: the output is none of the files read (links resolved), and an existing file is
// replaced only when asked.
void checkOutput(Arguments const& arguments)
{
    namespace fs = std::filesystem;
    fs::path const output = fs::weakly_canonical(arguments.output);
    for (std::string const* read : {&arguments.input, &arguments.engine, &arguments.plugin})
    {
        if (!read->empty() && fs::weakly_canonical(*read) == output)
        {
            throw std::invalid_argument(arguments.output + " is also a file this program reads (" + *read
                + "); name another output file");
        }
    }
    if (!arguments.overwrite && fs::exists(output))
    {
        throw std::invalid_argument(arguments.output + " exists already; pass --overwrite to replace it");
    }
}

char const* tensorName(nvinfer1::ICudaEngine const& engine, nvinfer1::TensorIOMode mode)
{
    for (int32_t i = 0; i < engine.getNbIOTensors(); ++i)
    {
        if (engine.getTensorIOMode(engine.getIOTensorName(i)) == mode)
        {
            return engine.getIOTensorName(i);
        }
    }
    throw std::runtime_error("the engine has no tensor of the expected direction");
}

void checkProfile(nvinfer1::ICudaEngine const& engine, char const* input, RgbImage const& image)
{
    auto const low = engine.getProfileShape(input, 0, nvinfer1::OptProfileSelector::kMIN);
    auto const high = engine.getProfileShape(input, 0, nvinfer1::OptProfileSelector::kMAX);
    auto const h = static_cast<int64_t>(image.height);
    auto const w = static_cast<int64_t>(image.width);
    if (h < low.d[2] || w < low.d[3] || h > high.d[2] || w > high.d[3])
    {
        throw std::runtime_error("the image is " + std::to_string(h) + "x" + std::to_string(w) + "; this engine takes "
            + std::to_string(low.d[2]) + "x" + std::to_string(low.d[3]) + " to " + std::to_string(high.d[2]) + "x"
            + std::to_string(high.d[3]) + " (use `gldfn-trt run`, which tiles and pads)");
    }
}

RgbImage upscale(nvinfer1::ICudaEngine& engine, RgbImage const& image)
{
    char const* input = tensorName(engine, nvinfer1::TensorIOMode::kINPUT);
    char const* output = tensorName(engine, nvinfer1::TensorIOMode::kOUTPUT);
    checkProfile(engine, input, image);
    std::unique_ptr<nvinfer1::IExecutionContext> context{engine.createExecutionContext()};
    if (!context)
    {
        throw std::runtime_error("cannot create an execution context");
    }
    size_t const plane = size_t{image.height} * image.width;
    std::vector<float> lr(3 * plane);
    for (size_t p = 0; p < plane; ++p)
    {
        for (size_t c = 0; c < 3; ++c)
        {
            lr[c * plane + p] = image.pixels[p * 3 + c] / 255.F;
        }
    }
    if (!context->setInputShape(input, nvinfer1::Dims4{1, 3, image.height, image.width}))
    {
        throw std::runtime_error("the engine rejects the input shape");
    }
    nvinfer1::Dims const outShape = context->getTensorShape(output);
    auto const outHeight = static_cast<uint32_t>(outShape.d[2]);
    auto const outWidth = static_cast<uint32_t>(outShape.d[3]);
    size_t const outPlane = size_t{outHeight} * outWidth;
    std::vector<float> sr(3 * outPlane);

    DeviceBuffer deviceIn(lr.size() * sizeof(float));
    DeviceBuffer deviceOut(sr.size() * sizeof(float));
    cudaStream_t stream{};
    checkCuda(cudaStreamCreate(&stream), "cudaStreamCreate");
    std::unique_ptr<CUstream_st, decltype(&cudaStreamDestroy)> streamGuard{stream, &cudaStreamDestroy};
    checkCuda(cudaMemcpyAsync(deviceIn.get(), lr.data(), lr.size() * sizeof(float), cudaMemcpyHostToDevice, stream), "copy to GPU");
    context->setTensorAddress(input, deviceIn.get());
    context->setTensorAddress(output, deviceOut.get());
    if (!context->enqueueV3(stream))
    {
        throw std::runtime_error("TensorRT failed to run the engine");
    }
    checkCuda(cudaMemcpyAsync(sr.data(), deviceOut.get(), sr.size() * sizeof(float), cudaMemcpyDeviceToHost, stream), "copy from GPU");
    checkCuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize");

    RgbImage result{outWidth, outHeight, std::vector<uint8_t>(3 * outPlane)};
    for (size_t p = 0; p < outPlane; ++p)
    {
        for (size_t c = 0; c < 3; ++c)
        {
            float const value = std::clamp(sr[c * outPlane + p], 0.F, 1.F);
            result.pixels[p * 3 + c] = static_cast<uint8_t>(std::lround(value * 255.F));
        }
    }
    return result;
}
} // namespace

int main(int argc, char** argv)
{
    try
    {
        Arguments const arguments = parseArguments(argc, argv);
        if (arguments.help)
        {
            printHelp();
            return 0;
        }
        checkOutput(arguments);
        std::vector<char> const plan = readFile(arguments.engine);
        checkGpu();
        checkLibraryMatchesHeaders();
        Logger logger;
        std::unique_ptr<nvinfer1::IRuntime> runtime{nvinfer1::createInferRuntime(logger)};
        if (!runtime)
        {
            throw std::runtime_error("cannot create the TensorRT runtime");
        }
        if (arguments.plugin.empty())
        {
            // The engine must carry the plugin library (gldfn-trt build --embed-plugin), which is host code.
            runtime->setEngineHostCodeAllowed(true);
        }
        else if (runtime->getPluginRegistry().loadLibrary(arguments.plugin.c_str()) == nullptr)
        {
            throw std::runtime_error(arguments.plugin + ": TensorRT cannot load this plugin library");
        }
        std::unique_ptr<nvinfer1::ICudaEngine> engine{runtime->deserializeCudaEngine(plan.data(), plan.size())};
        if (!engine)
        {
            throw std::runtime_error(arguments.engine
                + ": cannot deserialize (another TensorRT version or GPU, a missing --plugin, or not an engine; "
                  "`gldfn-trt inspect` shows what it was built for)");
        }
        RgbImage const image = readPng(arguments.input);
        writePngAtomically(arguments.output, upscale(*engine, image));
        std::cout << arguments.output << '\n';
        return 0;
    }
    catch (std::exception const& error)
    {
        std::cerr << "error: " << error.what() << '\n';
        return 1;
    }
}
