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
# find the modules we use directly.
find_package(OpenCV QUIET COMPONENTS core imgproc)
if(OpenCV_FOUND)
  add_library(sscl_opencv INTERFACE)
  target_include_directories(sscl_opencv SYSTEM INTERFACE ${OpenCV_INCLUDE_DIRS})
  target_link_libraries(sscl_opencv INTERFACE ${OpenCV_LIBS})
else()
  find_path(SSCL_OPENCV_INCLUDE opencv2/core.hpp PATH_SUFFIXES opencv4 REQUIRED)
  add_library(sscl_opencv INTERFACE)
  target_include_directories(sscl_opencv SYSTEM INTERFACE ${SSCL_OPENCV_INCLUDE})
  foreach(module core imgproc)
    find_library(SSCL_OPENCV_${module} opencv_${module} REQUIRED)
    target_link_libraries(sscl_opencv INTERFACE ${SSCL_OPENCV_${module}})
  endforeach()
endif()

# Torch's imported target carries -D_GLIBCXX_USE_CXX11_ABI; keep its flags.
add_library(sscl_torch INTERFACE)
target_link_libraries(sscl_torch INTERFACE ${TORCH_LIBRARIES})
target_include_directories(sscl_torch SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
target_compile_options(sscl_torch INTERFACE ${TORCH_CXX_FLAGS})
