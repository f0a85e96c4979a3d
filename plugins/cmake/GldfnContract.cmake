# Reads the op contract (gldfn_model/ops/contracts/local_dynamic_filter.json, the file the Python exporter reads)
# and generates a C++ header with the plugin name, version, namespace, field names and attribute limits, so the
# plugin cannot drift from the exporter. A renamed or missing entry stops the configure step.

function(_gldfn_contract_attribute json name out_index)
  string(JSON count LENGTH "${json}" attributes)
  math(EXPR last "${count} - 1")
  foreach(i RANGE ${last})
    string(JSON attr_name GET "${json}" attributes ${i} name)
    if(attr_name STREQUAL name)
      set(${out_index} ${i} PARENT_SCOPE)
      return()
    endif()
  endforeach()
  message(FATAL_ERROR "The op contract ${GLDFN_CONTRACT_FILE} has no attribute '${name}', which the plugin needs.")
endfunction()

function(gldfn_generate_contract_header contract_file output_file)
  set(GLDFN_CONTRACT_FILE "${contract_file}")
  if(NOT EXISTS "${contract_file}")
    message(FATAL_ERROR "Op contract not found: ${contract_file}. Set GLDFN_CONTRACT_FILE to the project's "
                        "gldfn_model/ops/contracts/local_dynamic_filter.json.")
  endif()
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${contract_file}")
  file(READ "${contract_file}" json)

  string(JSON GLDFN_PLUGIN_NAME GET "${json}" name)
  string(JSON GLDFN_CONTRACT_VERSION GET "${json}" contract_version)

  # The ONNX domain and op version are also the plugin namespace and version (one field each in the contract).
  string(JSON GLDFN_PLUGIN_NAMESPACE GET "${json}" domain)
  string(JSON GLDFN_PLUGIN_VERSION GET "${json}" version)

  _gldfn_contract_attribute("${json}" kernel_size idx)
  string(JSON GLDFN_FIELD_KERNEL_SIZE GET "${json}" attributes ${idx} name)
  string(JSON GLDFN_DEFAULT_KERNEL_SIZE GET "${json}" attributes ${idx} default)
  string(JSON allowed_count LENGTH "${json}" attributes ${idx} allowed)
  math(EXPR last "${allowed_count} - 1")
  set(sizes "")
  foreach(i RANGE ${last})
    string(JSON size GET "${json}" attributes ${idx} allowed ${i})
    list(APPEND sizes ${size})
  endforeach()
  list(JOIN sizes ", " GLDFN_ALLOWED_KERNEL_SIZES)

  _gldfn_contract_attribute("${json}" dilation idx)
  string(JSON GLDFN_FIELD_DILATION GET "${json}" attributes ${idx} name)
  string(JSON GLDFN_DEFAULT_DILATION GET "${json}" attributes ${idx} default)
  string(JSON GLDFN_MIN_DILATION GET "${json}" attributes ${idx} min)
  string(JSON GLDFN_MAX_DILATION GET "${json}" attributes ${idx} max)

  configure_file("${CMAKE_CURRENT_FUNCTION_LIST_DIR}/ldf_contract.h.in" "${output_file}" @ONLY)
  message(STATUS "GLDFN op contract: ${GLDFN_PLUGIN_NAMESPACE}::${GLDFN_PLUGIN_NAME} v${GLDFN_PLUGIN_VERSION}, "
                 "kernel sizes {${GLDFN_ALLOWED_KERNEL_SIZES}}, dilation ${GLDFN_MIN_DILATION}..${GLDFN_MAX_DILATION}")
endfunction()
