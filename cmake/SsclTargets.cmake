# The layers, each a shared library that links only the layers below it:
#
#   core <- models <- datasets <- tasks <- methods <- tools
#
# A layer sees its own headers and those below it only: each has an include
# folder of its own (build/layers/<layer>/<layer> -> the source folder) that it
# passes on to the layers above, so an include of a higher layer's header is not
# found and the build fails. Shared libraries (not static ones) so that every
# self-registering file is in the process once, whoever links it, and a plugin
# (core/plugins.h) registers into the same registries as the built-ins.

# Third-party usage requirements shared by every sscl target.
add_library(sscl_deps INTERFACE)
target_link_libraries(sscl_deps INTERFACE sscl_torch sscl_opencv tomlplusplus::tomlplusplus spdlog::spdlog
                                          TBB::tbb nlohmann_json::nlohmann_json ZLIB::ZLIB Threads::Threads
                                          ${CMAKE_DL_LIBS})
target_compile_definitions(sscl_deps INTERFACE SSCL_VERSION="${PROJECT_VERSION}")

# Every object is position-independent, executables' too, so that one
# precompiled header serves all of them (GCC refuses a PCH built with other
# -fPIC/-fPIE flags).
add_compile_options(-fPIC)
# Debian's GCC links with --as-needed: a library that only registers components
# (nothing calls into it by name) would be dropped from the executables.
add_link_options(LINKER:--no-as-needed)

# The precompiled <torch/torch.h> (about 30 s once) that every torch-using file
# reuses, instead of about 20 s of parsing per file.
add_library(sscl_pch OBJECT ${PROJECT_SOURCE_DIR}/cmake/pch.cpp)
target_link_libraries(sscl_pch PUBLIC sscl_deps)
target_precompile_headers(sscl_pch PRIVATE ${PROJECT_SOURCE_DIR}/cmake/pch.h)

# Unity batches: a layer's files compiled a few at a time as one translation
# unit, which pays the precompiled header's load and the torch template
# instantiations they share once per batch instead of once per file.
option(SSCL_UNITY_BUILD "Compile each layer in unity batches" ON)
set(SSCL_UNITY_BATCH_SIZE 8 CACHE STRING "Files per unity batch")

# The include folder of `name` (a layer or tests): only `name`'s own headers.
function(sscl_layer_include_dir name out)
  set(dir ${PROJECT_BINARY_DIR}/layers/${name})
  if(NOT EXISTS ${dir}/${name})
    file(MAKE_DIRECTORY ${dir})
    file(CREATE_LINK ${PROJECT_SOURCE_DIR}/${name} ${dir}/${name} SYMBOLIC)
  endif()
  set(${out} ${dir} PARENT_SCOPE)
endfunction()

# Compile settings of every sscl target: warnings, the shared PCH, unity batches.
function(sscl_compile_settings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Winvalid-pch)
  target_precompile_headers(${target} REUSE_FROM sscl_pch)
  if(SSCL_UNITY_BUILD)
    set_target_properties(${target} PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE ${SSCL_UNITY_BATCH_SIZE})
  endif()
endfunction()

set(SSCL_LAYER_TARGETS "" CACHE INTERNAL "")

# sscl_add_layer(NAME [BELOW lower_layer] [SOURCES ...]): without SOURCES every
# .cpp under the folder is part of the layer, so a new file needs no CMake line.
function(sscl_add_layer name)
  cmake_parse_arguments(ARG "" "BELOW" "SOURCES" ${ARGN})
  set(sources ${ARG_SOURCES})
  if(NOT sources)
    file(GLOB_RECURSE sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp)
  endif()
  add_library(sscl_${name} SHARED ${sources})
  add_library(sscl::${name} ALIAS sscl_${name})
  set_target_properties(sscl_${name} PROPERTIES EXPORT_NAME ${name})
  sscl_layer_include_dir(${name} include_dir)
  target_include_directories(sscl_${name} PUBLIC $<BUILD_INTERFACE:${include_dir}>
                                                 $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}/sscl>)
  target_link_libraries(sscl_${name} PUBLIC sscl_deps)
  if(ARG_BELOW)
    target_link_libraries(sscl_${name} PUBLIC sscl_${ARG_BELOW})
  endif()
  sscl_compile_settings(sscl_${name})
  set(SSCL_LAYER_TARGETS ${SSCL_LAYER_TARGETS} sscl_${name} CACHE INTERNAL "")
endfunction()

# An executable of tools/ or a test: links `layer` (and so every layer below it).
function(sscl_add_executable name layer)
  add_executable(${name} ${ARGN})
  target_link_libraries(${name} PRIVATE sscl_${layer})
  sscl_compile_settings(${name})
  # The sanitizers' runtime options and leak suppressions (cmake/Sanitizers.cmake).
  if(TARGET sscl_sanitizer_defaults)
    target_sources(${name} PRIVATE $<TARGET_OBJECTS:sscl_sanitizer_defaults>)
  endif()
endfunction()
