# The pickleproof Python package (issue 6): the _native extension built against Debian's Python
# 3.11 headers (Python3_EXECUTABLE is pinned to /usr/bin/python3 in CMakeLists.txt), assembled
# with the package's Python files and the sandbox helper under build/python, so that
# `PYTHONPATH=build/python /usr/bin/python3 -c 'import pickleproof'` works right after the build.
find_package(Python3 3.11 REQUIRED COMPONENTS Interpreter Development.Module)

set(PP_PY_PKG ${CMAKE_BINARY_DIR}/python/pickleproof)
Python3_add_library(pickleproof_native MODULE WITH_SOABI
  ${CMAKE_SOURCE_DIR}/python/src/native.c
  ${CMAKE_SOURCE_DIR}/python/src/materialize.c)
set_target_properties(pickleproof_native PROPERTIES OUTPUT_NAME _native
  LIBRARY_OUTPUT_DIRECTORY ${PP_PY_PKG})
target_include_directories(pickleproof_native PRIVATE
  ${CMAKE_SOURCE_DIR}/validator ${CMAKE_SOURCE_DIR}/sandbox ${CMAKE_SOURCE_DIR}/python/src)
# CPython's headers are not written for -Wconversion/-Wshadow: include them as system headers.
target_include_directories(pickleproof_native SYSTEM PRIVATE ${Python3_INCLUDE_DIRS})
target_compile_options(pickleproof_native PRIVATE ${PP_WARNINGS})
target_link_libraries(pickleproof_native PRIVATE pickleproof)

# The package's Python files, copied whenever they change.
file(GLOB PP_PY_FILES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/python/pickleproof/*.py)
foreach(f ${PP_PY_FILES})
  get_filename_component(n ${f} NAME)
  configure_file(${f} ${PP_PY_PKG}/${n} COPYONLY)
endforeach()

# The package spawns the helper that sits beside it: a host Python is no build-tree program, and
# an installed package must not depend on where the CLI went.
add_custom_command(TARGET pickleproof_native POST_BUILD
  COMMAND ${CMAKE_COMMAND} -E copy $<TARGET_FILE:pickleproof_sandbox> ${PP_PY_PKG}/
  VERBATIM)
add_dependencies(pickleproof_native pickleproof_sandbox)

set(PP_PYTHON_INSTALL_DIR
  "${CMAKE_INSTALL_LIBDIR}/python${Python3_VERSION_MAJOR}.${Python3_VERSION_MINOR}/dist-packages"
  CACHE STRING "Where cmake --install puts the pickleproof package (relative to the prefix)")
install(TARGETS pickleproof_native LIBRARY DESTINATION ${PP_PYTHON_INSTALL_DIR}/pickleproof)
install(FILES ${PP_PY_FILES} DESTINATION ${PP_PYTHON_INSTALL_DIR}/pickleproof)
install(PROGRAMS $<TARGET_FILE:pickleproof_sandbox>
        DESTINATION ${PP_PYTHON_INSTALL_DIR}/pickleproof)
