# The CUDA architectures of the project's CUDA code (the TensorRT plugin and the ONNX Runtime custom-op library).
#   gldfn_note_cuda_architectures()     before CUDA is enabled: remembers whether the caller set
#                                       CMAKE_CUDA_ARCHITECTURES (CMake fills in its own default once enabled)
#   gldfn_default_cuda_architectures()  after: without the caller's list, Turing .. Blackwell as SASS, as far as
#                                       the found nvcc knows them, plus PTX of the newest for later GPUs
macro(gldfn_note_cuda_architectures)
  set(GLDFN_DEFAULT_CUDA_ARCHITECTURES OFF)
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(GLDFN_DEFAULT_CUDA_ARCHITECTURES ON)
  endif()
endmacro()

macro(gldfn_default_cuda_architectures)
  if(GLDFN_DEFAULT_CUDA_ARCHITECTURES)
    set(_gldfn_archs 75)
    if(CMAKE_CUDA_COMPILER_VERSION VERSION_GREATER_EQUAL 11.1)
      list(APPEND _gldfn_archs 80 86)
    endif()
    if(CMAKE_CUDA_COMPILER_VERSION VERSION_GREATER_EQUAL 11.8)
      list(APPEND _gldfn_archs 89 90)
    endif()
    if(CMAKE_CUDA_COMPILER_VERSION VERSION_GREATER_EQUAL 12.8)
      list(APPEND _gldfn_archs 100 120)
    endif()
    list(TRANSFORM _gldfn_archs APPEND "-real")
    list(GET _gldfn_archs -1 _gldfn_newest)
    string(REPLACE "-real" "-virtual" _gldfn_newest "${_gldfn_newest}")
    set(CMAKE_CUDA_ARCHITECTURES ${_gldfn_archs} ${_gldfn_newest} CACHE STRING
        "CUDA architectures (default: what nvcc supports)" FORCE)
  endif()
  message(STATUS "nvcc ${CMAKE_CUDA_COMPILER_VERSION}: CUDA architectures ${CMAKE_CUDA_ARCHITECTURES}")
endmacro()
