// The CPU kernel for AVX2 + FMA + F16C (8 lanes), compiled with those flags; called only where the CPU has them.
#include "ldf_cpu_simd.h"

#include <immintrin.h>

namespace gldfn::cpu
{
namespace
{

struct Avx2
{
    using V = __m256;
    static constexpr int kLanes = 8;

    static V zero() { return _mm256_setzero_ps(); }
    static V set1(float v) { return _mm256_set1_ps(v); }
    static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
    static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
    static float halfToFloat(uint16_t v) { return _cvtsh_ss(v); }

    //! All bits set in the lanes [lo, hi), as vmaskmovps wants.
    static __m256i laneMask(int lo, int hi)
    {
        __m256i const lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        __m256i const fromLo = _mm256_cmpgt_epi32(lane, _mm256_set1_epi32(lo - 1));
        __m256i const belowHi = _mm256_cmpgt_epi32(_mm256_set1_epi32(hi), lane);
        return _mm256_and_si256(fromLo, belowHi);
    }

    static V load(float const* p) { return _mm256_loadu_ps(p); }
    static V loadLanes(float const* p, int lo, int hi) { return _mm256_maskload_ps(p, laneMask(lo, hi)); }
    static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
    static void storeLanes(float* p, V v, int lanes) { _mm256_maskstore_ps(p, laneMask(0, lanes), v); }

    static V load(uint16_t const* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<__m128i const*>(p))); }
    static V loadLanes(uint16_t const* p, int lo, int hi) { return simd::loadHalfLanes<Avx2>(p, lo, hi); }
    static void store(uint16_t* p, V v)
    {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
    static void storeLanes(uint16_t* p, V v, int lanes) { simd::storeHalfLanes<Avx2>(p, v, lanes); }
};

} // namespace

void ldfRowsAvx2(LdfArgs const& args, int64_t rowBegin, int64_t rowEnd)
{
    simd::rows<Avx2>(args, rowBegin, rowEnd);
}

} // namespace gldfn::cpu
