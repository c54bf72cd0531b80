# Every dependency comes from a Debian 12 package (see tools/setup.sh); any other
# LibTorch (e.g. a CUDA build) can be used through CMAKE_PREFIX_PATH.
find_package(Torch REQUIRED)
find_package(tomlplusplus REQUIRED)
find_package(spdlog REQUIRED)
find_package(TBB REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(CLI11 REQUIRED)
find_package(ZLIB REQUIRED)
find_package(Threads REQUIRED)

# Debian splits OpenCV per module and only the umbrella libopencv-dev (60 packages,
# VTK and MPI among them) ships OpenCVConfig.cmake. Use it when present, otherwise
# find the modules we use directly. sscl_opencv: the image modules every layer
# uses; sscl_opencv_dnn: the DNN module, which runs ONNX models (tools/infer).
find_package(OpenCV QUIET COMPONENTS core imgproc imgcodecs dnn)
function(sscl_opencv_target target)
  add_library(${target} INTERFACE)
  if(OpenCV_FOUND)
    target_include_directories(${target} SYSTEM INTERFACE ${OpenCV_INCLUDE_DIRS})
    foreach(module ${ARGN})
      target_link_libraries(${target} INTERFACE opencv_${module})
    endforeach()
  else()
    find_path(SSCL_OPENCV_INCLUDE opencv2/core.hpp PATH_SUFFIXES opencv4 REQUIRED)
    target_include_directories(${target} SYSTEM INTERFACE ${SSCL_OPENCV_INCLUDE})
    foreach(module ${ARGN})
      find_library(SSCL_OPENCV_${module} opencv_${module} REQUIRED)
      target_link_libraries(${target} INTERFACE ${SSCL_OPENCV_${module}})
    endforeach()
  endif()
endfunction()
sscl_opencv_target(sscl_opencv core imgproc imgcodecs)
sscl_opencv_target(sscl_opencv_dnn dnn core)

# ONNX's protocol buffers, checker and shape inference (libonnx-dev), for
# tools/export --onnx. Its targets name protobuf::libprotobuf.
find_package(Protobuf REQUIRED)
find_package(ONNX REQUIRED)

# Torch's imported target carries -D_GLIBCXX_USE_CXX11_ABI; keep its flags.
add_library(sscl_torch INTERFACE)
target_link_libraries(sscl_torch INTERFACE ${TORCH_LIBRARIES})
target_include_directories(sscl_torch SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
target_compile_options(sscl_torch INTERFACE ${TORCH_CXX_FLAGS})
# A CUDA LibTorch: core/cuda_support.cpp asks the CUDA runtime (bfloat16 support)
# and the caching allocator (peak memory); a CPU build answers without them.
if(TARGET c10_cuda)
  target_compile_definitions(sscl_torch INTERFACE SSCL_WITH_CUDA)
endif()
# PyTorch's wheels (2.5 and later) export copies of libstdc++ symbols that they
# link statically, std::filesystem among them (pytorch/pytorch#133437); an
# executable that needs libtorch before libstdc++ binds to those copies, and
# std::filesystem::remove_all then jumps to address 0. List libstdc++.so first
# (by file name: a plain -lstdc++ may pick a static libstdc++.a).
target_link_options(sscl_torch INTERFACE "LINKER:--push-state,--no-as-needed,-l:libstdc++.so.6,--pop-state")

# PyTorch's wheels ship fmt's headers in torch/include/fmt (fmt 12 in 2.11), which
# then shadow the fmt that spdlog was built against (fmt 9 on Debian 12). Put that
# fmt first with a plain -I of a build-tree folder holding only a link to it: -I
# folders are searched before every -isystem one, and an -I of its own prefix
# (/usr/include) would be ignored by GCC as a system folder.
if(TARGET fmt::fmt AND EXISTS "${TORCH_INSTALL_PREFIX}/include/fmt")
  get_target_property(SSCL_FMT_INCLUDE fmt::fmt INTERFACE_INCLUDE_DIRECTORIES)
  list(GET SSCL_FMT_INCLUDE 0 SSCL_FMT_INCLUDE)
  if(NOT SSCL_FMT_INCLUDE STREQUAL "${TORCH_INSTALL_PREFIX}/include")
    file(MAKE_DIRECTORY ${PROJECT_BINARY_DIR}/fmt_first)
    file(CREATE_LINK ${SSCL_FMT_INCLUDE}/fmt ${PROJECT_BINARY_DIR}/fmt_first/fmt SYMBOLIC)
    target_include_directories(sscl_torch BEFORE INTERFACE $<BUILD_INTERFACE:${PROJECT_BINARY_DIR}/fmt_first>)
  endif()
endif()
