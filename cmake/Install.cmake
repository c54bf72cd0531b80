# `cmake --install BUILD --prefix PREFIX`: the layers' shared libraries and
# headers (PREFIX/include/sscl/<layer>/...), sscl_train and the CMake package
# that find_package(sscl) reads (PREFIX/lib/cmake/sscl).
include(CMakePackageConfigHelpers)

# Installed programs find the installed libraries next to them.
set_target_properties(sscl_train PROPERTIES INSTALL_RPATH "$ORIGIN/../${CMAKE_INSTALL_LIBDIR}")
foreach(layer IN LISTS SSCL_LAYER_TARGETS)
  set_target_properties(${layer} PROPERTIES INSTALL_RPATH "$ORIGIN")
endforeach()

install(TARGETS ${SSCL_LAYER_TARGETS} sscl_deps sscl_torch sscl_opencv
        EXPORT ssclTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS sscl_train RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
foreach(layer core models datasets tasks methods)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${layer} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/sscl
          FILES_MATCHING PATTERN "*.h")
endforeach()

set(SSCL_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/sscl)
install(EXPORT ssclTargets NAMESPACE sscl:: DESTINATION ${SSCL_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/ssclConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/ssclConfig.cmake INSTALL_DESTINATION ${SSCL_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/ssclConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/ssclConfig.cmake ${PROJECT_BINARY_DIR}/ssclConfigVersion.cmake
        DESTINATION ${SSCL_CMAKE_DIR})
