// The local dynamic filter on the CPU, for the ONNX Runtime custom op: the arithmetic of ldf_arithmetic.h
// (per output, taps row-major, acc = fma(spatial * channel, x, acc) in FP32 from 0) on rows of the output,
// vectorised with AVX-512 or AVX2 where the CPU has them. No ONNX Runtime types: the caller splits the rows
// over its threads.
#pragma once

#include <cstdint>

namespace gldfn::cpu
{

//! Kernel sizes the CPU kernels are compiled for.
constexpr bool kernelSizeCompiled(int32_t kernelSize)
{
    return kernelSize == 1 || kernelSize == 3 || kernelSize == 5 || kernelSize == 7;
}

//! Instruction sets the kernel is compiled for, best last.
enum class Isa : int32_t
{
    kScalar = 0,
    kAvx2 = 1,   //!< AVX2 + FMA + F16C, 8 lanes
    kAvx512 = 2, //!< AVX-512F, 16 lanes
};

//! One call's tensors, linear NCHW: x and out N x C x H x W, spatial N x K*K x H x W, channel N x C x K*K, all
//! FP32 or all FP16 (IEEE halves, FP32 accumulation).
struct LdfArgs
{
    void const* x;
    void const* spatial;
    void const* channel;
    void* out;
    int64_t batch;
    int64_t channels;
    int64_t height;
    int64_t width;
    int32_t kernelSize;
    int32_t dilation;
    bool half;
};

//! The best instruction set this CPU (and its operating system) supports.
Isa bestIsa();

//! Whether this CPU can run `isa`.
bool isaSupported(Isa isa);

char const* isaName(Isa isa);

//! Parses "scalar", "avx2" or "avx512"; false for anything else.
bool parseIsa(char const* text, Isa& isa);

//! Computes output rows [rowBegin, rowEnd) of the batch's N*H rows (row r is image r / H, line r % H), every
//! channel and column. Rows are independent: any split of [0, N*H) over threads gives the same result.
void ldfRows(Isa isa, LdfArgs const& args, int64_t rowBegin, int64_t rowEnd);

// One per instruction set, each in its own translation unit compiled for it.
void ldfRowsScalar(LdfArgs const& args, int64_t rowBegin, int64_t rowEnd);
void ldfRowsAvx2(LdfArgs const& args, int64_t rowBegin, int64_t rowEnd);
void ldfRowsAvx512(LdfArgs const& args, int64_t rowBegin, int64_t rowEnd);

} // namespace gldfn::cpu
