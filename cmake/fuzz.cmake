# One harness per parser: fuzz/fuzz_NAME.c defines LLVMFuzzerTestOneInput. Every harness is also
# built with fuzz/regress_main.c, a plain main() that replays fuzz/corpus/NAME/* under ctest
# (label fuzz-regress). With -DPP_FUZZ=ON and clang, real libFuzzer binaries are built too.
option(PP_FUZZ "Build libFuzzer harnesses (needs clang)" OFF)
if(PP_FUZZ)
  # coverage instrumentation for the library too, not only the harness
  target_compile_options(pickleproof PRIVATE -fsanitize=fuzzer-no-link)
endif()
file(GLOB PP_FUZZ_HARNESSES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/fuzz/fuzz_*.c)
foreach(src ${PP_FUZZ_HARNESSES})
  get_filename_component(name ${src} NAME_WE)
  string(REGEX REPLACE "^fuzz_" "" target ${name})
  add_executable(regress_${target} ${src} ${CMAKE_SOURCE_DIR}/fuzz/regress_main.c)
  target_include_directories(regress_${target} PRIVATE ${CMAKE_SOURCE_DIR}/validator)
  target_compile_options(regress_${target} PRIVATE ${PP_WARNINGS})
  target_link_libraries(regress_${target} PRIVATE pickleproof)
  add_test(NAME fuzz-regress/${target}
           COMMAND regress_${target} ${CMAKE_SOURCE_DIR}/fuzz/corpus/${target})
  set_tests_properties(fuzz-regress/${target} PROPERTIES LABELS fuzz-regress)
  if(PP_FUZZ)
    add_executable(fuzz_${target} ${src})
    target_include_directories(fuzz_${target} PRIVATE ${CMAKE_SOURCE_DIR}/validator)
    target_compile_options(fuzz_${target} PRIVATE -fsanitize=fuzzer)
    target_link_options(fuzz_${target} PRIVATE -fsanitize=fuzzer)
    target_link_libraries(fuzz_${target} PRIVATE pickleproof)
  endif()
endforeach()
