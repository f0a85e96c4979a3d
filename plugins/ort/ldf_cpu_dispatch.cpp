// Picks the CPU kernel's instruction set at run time (cpuid, and the OS's saving of the vector registers, through
// GCC/Clang's __builtin_cpu_supports) and dispatches to the translation unit compiled for it.
#include "ldf_cpu.h"

#include <cstring>
#include <initializer_list>

namespace gldfn::cpu
{

bool isaSupported(Isa isa)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    switch (isa)
    {
    case Isa::kScalar: return true;
    case Isa::kAvx2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    case Isa::kAvx512: return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("f16c");
    }
    return false;
#else
    return isa == Isa::kScalar;
#endif
}

Isa bestIsa()
{
    for (Isa isa : {Isa::kAvx512, Isa::kAvx2})
    {
        if (isaSupported(isa))
        {
            return isa;
        }
    }
    return Isa::kScalar;
}

char const* isaName(Isa isa)
{
    switch (isa)
    {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
    }
    return "unknown";
}

bool parseIsa(char const* text, Isa& isa)
{
    for (Isa candidate : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512})
    {
        if (std::strcmp(text, isaName(candidate)) == 0)
        {
            isa = candidate;
            return true;
        }
    }
    return false;
}

void ldfRows(Isa isa, LdfArgs const& args, int64_t rowBegin, int64_t rowEnd)
{
    switch (isa)
    {
#if defined(__x86_64__) || defined(__i386__)
    case Isa::kAvx512: ldfRowsAvx512(args, rowBegin, rowEnd); return;
    case Isa::kAvx2: ldfRowsAvx2(args, rowBegin, rowEnd); return;
#endif
    default: ldfRowsScalar(args, rowBegin, rowEnd); return;
    }
}

} // namespace gldfn::cpu
