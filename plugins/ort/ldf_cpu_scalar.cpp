// The CPU kernel without vector instructions: ldfOutput of ldf_arithmetic.h (the arithmetic the CUDA kernels
// share) per output value, for CPUs without AVX2. Halves are converted in software.
#include "ldf_arithmetic.h"
#include "ldf_cpu.h"

#include <cmath>
#include <cstring>

namespace gldfn::cpu
{
namespace
{

float halfToFloat(uint16_t h)
{
    uint32_t const sign = static_cast<uint32_t>(h & 0x8000U) << 16;
    uint32_t const exponent = (h >> 10) & 0x1FU;
    uint32_t const mantissa = h & 0x3FFU;
    uint32_t bits = 0;
    if (exponent == 0)
    {
        float const magnitude = std::ldexp(static_cast<float>(mantissa), -24); // zero or subnormal, exact
        return sign ? -magnitude : magnitude;
    }
    bits = exponent == 0x1F ? sign | 0x7F800000U | (mantissa << 13) : sign | ((exponent + 112U) << 23) | (mantissa << 13);
    float value = 0.F;
    std::memcpy(&value, &bits, sizeof(value));
    return value;
}

//! Round to nearest even, as the hardware conversions do.
uint16_t floatToHalf(float value)
{
    uint32_t bits = 0;
    std::memcpy(&bits, &value, sizeof(bits));
    auto const sign = static_cast<uint16_t>((bits >> 16) & 0x8000U);
    uint32_t const magnitude = bits & 0x7FFFFFFFU;
    if (magnitude > 0x7F800000U)
    {
        return sign | 0x7E00U; // NaN
    }
    if (magnitude >= 0x477FF000U)
    {
        return sign | 0x7C00U; // rounds to infinity
    }
    if (magnitude < 0x38800000U)
    {
        float absolute = 0.F;
        std::memcpy(&absolute, &magnitude, sizeof(absolute));
        return sign | static_cast<uint16_t>(std::nearbyint(std::ldexp(absolute, 24))); // subnormal (or zero)
    }
    uint32_t const rounded = magnitude + 0xFFFU + ((magnitude >> 13) & 1U);
    return sign | static_cast<uint16_t>((rounded - 0x38000000U) >> 13);
}

float load(float const* p, int64_t i)
{
    return p[i];
}

float load(uint16_t const* p, int64_t i)
{
    return halfToFloat(p[i]);
}

void store(float* p, int64_t i, float v)
{
    p[i] = v;
}

void store(uint16_t* p, int64_t i, float v)
{
    p[i] = floatToHalf(v);
}

template <class T, int K>
void rowsOf(LdfArgs const& a, int64_t rowBegin, int64_t rowEnd)
{
    constexpr int kTaps = K * K;
    int64_t const channels = a.channels;
    int64_t const height = a.height;
    int64_t const width = a.width;
    int64_t const plane = height * width;
    int64_t const reach = static_cast<int64_t>(K / 2) * a.dilation;
    auto const* x = static_cast<T const*>(a.x);
    auto const* spatial = static_cast<T const*>(a.spatial);
    auto const* channel = static_cast<T const*>(a.channel);
    auto* out = static_cast<T*>(a.out);
    for (int64_t r = rowBegin; r < rowEnd; ++r)
    {
        int64_t const n = r / height;
        int64_t const y = r % height;
        for (int64_t c = 0; c < channels; ++c)
        {
            int64_t const first = n * channels + c;
            for (int64_t col = 0; col < width; ++col)
            {
                auto xAt = [&](int dy, int dx) {
                    int64_t const yy = y - reach + dy;
                    int64_t const xx = col - reach + dx;
                    bool const inside = yy >= 0 && yy < height && xx >= 0 && xx < width;
                    return inside ? load(x, first * plane + yy * width + xx) : 0.F;
                };
                auto spatialAt = [&](int t) { return load(spatial, (n * kTaps + t) * plane + y * width + col); };
                auto channelAt = [&](int t) { return load(channel, first * kTaps + t); };
                store(out, first * plane + y * width + col, ldfOutput<K>(a.dilation, xAt, spatialAt, channelAt));
            }
        }
    }
}

template <class T>
void rowsOfType(LdfArgs const& a, int64_t rowBegin, int64_t rowEnd)
{
    switch (a.kernelSize)
    {
    case 1: rowsOf<T, 1>(a, rowBegin, rowEnd); break;
    case 3: rowsOf<T, 3>(a, rowBegin, rowEnd); break;
    case 5: rowsOf<T, 5>(a, rowBegin, rowEnd); break;
    case 7: rowsOf<T, 7>(a, rowBegin, rowEnd); break;
    default: break; // refused when the kernel is created
    }
}

} // namespace

void ldfRowsScalar(LdfArgs const& args, int64_t rowBegin, int64_t rowEnd)
{
    if (args.half)
    {
        rowsOfType<uint16_t>(args, rowBegin, rowEnd);
    }
    else
    {
        rowsOfType<float>(args, rowBegin, rowEnd);
    }
}

} // namespace gldfn::cpu
