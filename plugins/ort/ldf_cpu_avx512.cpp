// The CPU kernel for AVX-512F (16 lanes), compiled with -mavx512f; called only where the CPU has it.
#include "ldf_cpu_simd.h"

#include <immintrin.h>

namespace gldfn::cpu
{
namespace
{

struct Avx512
{
    using V = __m512;
    static constexpr int kLanes = 16;

    static V zero() { return _mm512_setzero_ps(); }
    static V set1(float v) { return _mm512_set1_ps(v); }
    static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
    static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
    static float halfToFloat(uint16_t v) { return _cvtsh_ss(v); }

    static __mmask16 laneMask(int lo, int hi) { return static_cast<__mmask16>(((1U << hi) - 1U) & ~((1U << lo) - 1U)); }

    static V load(float const* p) { return _mm512_loadu_ps(p); }
    static V loadLanes(float const* p, int lo, int hi) { return _mm512_maskz_loadu_ps(laneMask(lo, hi), p); }
    static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
    static void storeLanes(float* p, V v, int lanes) { _mm512_mask_storeu_ps(p, laneMask(0, lanes), v); }

    static V load(uint16_t const* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<__m256i const*>(p))); }
    static V loadLanes(uint16_t const* p, int lo, int hi) { return simd::loadHalfLanes<Avx512>(p, lo, hi); }
    static void store(uint16_t* p, V v)
    {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
    static void storeLanes(uint16_t* p, V v, int lanes) { simd::storeHalfLanes<Avx512>(p, v, lanes); }
};

} // namespace

void ldfRowsAvx512(LdfArgs const& args, int64_t rowBegin, int64_t rowEnd)
{
    simd::rows<Avx512>(args, rowBegin, rowEnd);
}

} // namespace gldfn::cpu
