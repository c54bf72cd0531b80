# Third-party usage requirements shared by every sscl target.
add_library(sscl_deps INTERFACE)
target_include_directories(sscl_deps INTERFACE ${PROJECT_SOURCE_DIR})
target_link_libraries(sscl_deps INTERFACE sscl_torch sscl_opencv tomlplusplus::tomlplusplus spdlog::spdlog
                                          TBB::tbb nlohmann_json::nlohmann_json ZLIB::ZLIB Threads::Threads)
target_compile_definitions(sscl_deps INTERFACE SSCL_VERSION="${PROJECT_VERSION}")

# The precompiled <torch/torch.h> (about 30 s once) that every torch-using file
# reuses, instead of about 20 s of parsing per file.
add_library(sscl_pch OBJECT ${PROJECT_SOURCE_DIR}/cmake/pch.cpp)
target_link_libraries(sscl_pch PUBLIC sscl_deps)
target_precompile_headers(sscl_pch PRIVATE ${PROJECT_SOURCE_DIR}/cmake/pch.h)

# Each folder is an OBJECT library, and the INTERFACE target `sscl` carries all
# their object files: every executable that links `sscl` gets every object, so
# self-registering methods, backbones, datasets and hooks are never dropped by
# the linker (the static-library trap). tests/core/registry_test checks it.
add_library(sscl INTERFACE)
target_link_libraries(sscl INTERFACE sscl_deps)
if(TARGET sscl_sanitizer_defaults)
  target_sources(sscl INTERFACE $<TARGET_OBJECTS:sscl_sanitizer_defaults>)
endif()

function(sscl_add_object_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;NO_PCH_SOURCES" ${ARGN})
  add_library(${name} OBJECT ${ARG_SOURCES} ${ARG_NO_PCH_SOURCES})
  target_link_libraries(${name} PUBLIC sscl_deps)
  target_compile_options(${name} PRIVATE -Wall -Wextra -Winvalid-pch)
  target_precompile_headers(${name} REUSE_FROM sscl_pch)
  if(ARG_NO_PCH_SOURCES)
    set_source_files_properties(${ARG_NO_PCH_SOURCES} PROPERTIES SKIP_PRECOMPILE_HEADERS ON)
  endif()
  target_sources(sscl INTERFACE $<TARGET_OBJECTS:${name}>)
endfunction()
