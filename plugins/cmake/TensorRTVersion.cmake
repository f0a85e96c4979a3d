# gldfn_tensorrt_header_version(INCLUDE_DIR PREFIX): sets PREFIX_MAJOR, PREFIX_MINOR and PREFIX_PATCH in the
# caller's scope from INCLUDE_DIR/NvInferVersion.h (empty when they cannot be read), and PREFIX_RTX_MAJOR for
# TensorRT-RTX's own headers (TRT_MAJOR_RTX). TensorRT <= 10.12 defines NV_TENSORRT_MAJOR as a number; 10.13 and
# later define TRT_MAJOR_ENTERPRISE (and NV_TENSORRT_MAJOR as that name). Used by plugins/CMakeLists.txt and
# runtime/cpp/CMakeLists.txt.
function(gldfn_tensorrt_header_version include_dir prefix)
  set(file "${include_dir}/NvInferVersion.h")
  foreach(part MAJOR MINOR PATCH RTX_MAJOR)
    if(part STREQUAL RTX_MAJOR)
      set(pattern "TRT_MAJOR_RTX")
    else()
      set(pattern "NV_TENSORRT_${part}|TRT_${part}_ENTERPRISE")
    endif()
    set(value "")
    if(EXISTS "${file}")
      file(STRINGS "${file}" line REGEX "^#define (${pattern}) +[0-9]+")
      string(REGEX MATCH "^#define [A-Z_]+ +([0-9]+)" matched "${line}")
      set(value "${CMAKE_MATCH_1}")
    endif()
    set(${prefix}_${part} "${value}" PARENT_SCOPE)
  endforeach()
endfunction()
