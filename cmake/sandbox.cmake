# The seccomp sandbox (issue 4): the parent side and the wire format go into the library; the
# confined parser is the pickleproof-sandbox helper, spawned per input and installed in
# libexec/pickleproof/ (cmake/install.cmake). See sandbox/sandbox.h.
pkg_check_modules(SECCOMP REQUIRED IMPORTED_TARGET libseccomp)

# Test hooks (PICKLEPROOF_SANDBOX_TEST, PICKLEPROOF_SANDBOX_HELPER) make the child attempt
# forbidden actions so tests can see them killed. Harmless (the child is confined either way),
# but packagers should turn them off.
option(PP_SANDBOX_TESTING "Build the sandbox test hooks" ON)

set(PP_SANDBOX_HELPER_NAME pickleproof-sandbox)
include(GNUInstallDirs)
# Installed by cmake/install.cmake; the CLI finds it relative to its own directory first.
set(PP_SANDBOX_HELPER_DIR ${CMAKE_INSTALL_LIBEXECDIR}/pickleproof)
file(RELATIVE_PATH PP_SANDBOX_HELPER_FROM_BINDIR ${CMAKE_INSTALL_FULL_BINDIR}
     ${CMAKE_INSTALL_FULL_LIBEXECDIR}/pickleproof/${PP_SANDBOX_HELPER_NAME})
target_sources(pickleproof PRIVATE
  ${CMAKE_SOURCE_DIR}/sandbox/run.c
  ${CMAKE_SOURCE_DIR}/sandbox/wire.c
  ${CMAKE_SOURCE_DIR}/sandbox/filter.c
  ${CMAKE_SOURCE_DIR}/sandbox/policy_text.c)
target_include_directories(pickleproof PRIVATE ${CMAKE_SOURCE_DIR}/sandbox)
target_link_libraries(pickleproof PUBLIC PkgConfig::SECCOMP)
set_source_files_properties(${CMAKE_SOURCE_DIR}/sandbox/run.c PROPERTIES COMPILE_DEFINITIONS
  "PP_SANDBOX_BUILD_DIR=\"${CMAKE_BINARY_DIR}\";PP_SANDBOX_BUILD_HELPER=\"${CMAKE_BINARY_DIR}/${PP_SANDBOX_HELPER_NAME}\";PP_SANDBOX_INSTALL_HELPER=\"${CMAKE_INSTALL_FULL_LIBEXECDIR}/pickleproof/${PP_SANDBOX_HELPER_NAME}\";PP_SANDBOX_HELPER_FROM_BINDIR=\"${PP_SANDBOX_HELPER_FROM_BINDIR}\"")
if(PP_SANDBOX_TESTING)
  target_compile_definitions(pickleproof PRIVATE PP_SANDBOX_TESTING=1)
endif()

add_executable(pickleproof_sandbox ${CMAKE_SOURCE_DIR}/sandbox/helper_main.c)
set_target_properties(pickleproof_sandbox PROPERTIES OUTPUT_NAME ${PP_SANDBOX_HELPER_NAME})
target_include_directories(pickleproof_sandbox PRIVATE ${CMAKE_SOURCE_DIR}/validator
                                                       ${CMAKE_SOURCE_DIR}/sandbox)
target_compile_options(pickleproof_sandbox PRIVATE ${PP_WARNINGS})
# Linked statically when the archives are there: a dynamic helper spends ~0.5 ms per spawn in the
# loader (six libraries), a static-pie one starts as fast as /bin/true. Sanitizer and fuzzer
# builds need their dynamic runtimes.
option(PP_SANDBOX_STATIC "Link pickleproof-sandbox statically (faster spawn per file)" ON)
set(PP_SANDBOX_STATIC_OK FALSE)
if(PP_SANDBOX_STATIC AND NOT PP_SANITIZE AND NOT PP_FUZZ)
  set(PP_SANDBOX_STATIC_OK TRUE)
  set(PP_SANDBOX_STATIC_LIBS)
  set(_pp_needed seccomp z sodium)
  if(LZMA_FOUND)
    list(APPEND _pp_needed lzma)
  endif()
  if(LZ4_FOUND)
    list(APPEND _pp_needed lz4)
  endif()
  if(BZ2_LIB AND BZ2_INCLUDE)
    list(APPEND _pp_needed bz2)
  endif()
  foreach(lib ${_pp_needed})
    find_library(PP_STATIC_LIB_${lib} NAMES lib${lib}.a)
    if(PP_STATIC_LIB_${lib})
      list(APPEND PP_SANDBOX_STATIC_LIBS ${PP_STATIC_LIB_${lib}})
    else()
      set(PP_SANDBOX_STATIC_OK FALSE)
    endif()
  endforeach()
endif()
# Links a program against the library: static-pie when every archive is there (start-up of a
# static program costs what /bin/true does), else the ordinary way.
function(pp_link_program target)
  if(PP_SANDBOX_STATIC_OK)
    target_include_directories(${target} PRIVATE ${CMAKE_SOURCE_DIR}/include)
    target_link_libraries(${target} PRIVATE $<TARGET_FILE:pickleproof> ${PP_SANDBOX_STATIC_LIBS} m)
    target_link_options(${target} PRIVATE -static-pie)
    add_dependencies(${target} pickleproof)
  else()
    target_link_libraries(${target} PRIVATE pickleproof)
  endif()
endfunction()
pp_link_program(pickleproof_sandbox)
if(PP_SANDBOX_TESTING)
  target_compile_definitions(pickleproof_sandbox PRIVATE PP_SANDBOX_TESTING=1)
endif()
# Programs that spawn the helper need it built.
add_dependencies(pickleproof_cli pickleproof_sandbox)

# A tiny driver for the sandbox tests until the CLI has --sandbox (tests/python/test_sandbox.py).
add_executable(pp_sandbox_selftest ${CMAKE_SOURCE_DIR}/sandbox/selftest_main.c)
target_include_directories(pp_sandbox_selftest PRIVATE ${CMAKE_SOURCE_DIR}/validator
                                                       ${CMAKE_SOURCE_DIR}/sandbox)
target_compile_options(pp_sandbox_selftest PRIVATE ${PP_WARNINGS})
target_link_libraries(pp_sandbox_selftest PRIVATE pickleproof)

# unit tests and fuzz regressions of sandbox/ need its include directory
set(PP_SANDBOX_INCLUDE ${CMAKE_SOURCE_DIR}/sandbox)
add_dependencies(pp_sandbox_selftest pickleproof_sandbox)

# Runs a program under an outer filter that refuses seccomp(): the "container forbids nested
# filters" case for tests/python/test_sandbox.py.
add_executable(pp_deny_seccomp ${CMAKE_SOURCE_DIR}/sandbox/deny_seccomp_main.c)
target_compile_options(pp_deny_seccomp PRIVATE ${PP_WARNINGS})
target_link_libraries(pp_deny_seccomp PRIVATE PkgConfig::SECCOMP)
add_dependencies(pp_sandbox_selftest pp_deny_seccomp)
