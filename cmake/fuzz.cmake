# One harness per parser: fuzz/fuzz_NAME.c defines LLVMFuzzerTestOneInput. Every harness is also
# built with fuzz/regress_main.c, a plain main() that replays fuzz/corpus/NAME/* under ctest
# (label fuzz-regress). With -DPP_FUZZ=ON and clang, real libFuzzer binaries fuzz_NAME are built
# too; with -DPP_AFL=ON and CC=afl-clang-fast (or afl-clang-lto), AFL++ binaries afl_NAME (the
# same harnesses through AFL++'s libFuzzer driver). fuzz/README.md has the commands.
option(PP_FUZZ "Build libFuzzer harnesses (needs clang)" OFF)
option(PP_AFL "Build AFL++ harnesses (configure with CC=afl-clang-fast or afl-clang-lto)" OFF)
if(PP_FUZZ AND PP_AFL)
  message(FATAL_ERROR "PP_FUZZ and PP_AFL instrument differently: use two build directories")
endif()
if(PP_AFL AND NOT CMAKE_C_COMPILER MATCHES "afl-clang-(fast|lto)$")
  find_program(PP_AFL_CC NAMES afl-clang-lto afl-clang-fast)
  message(FATAL_ERROR "PP_AFL needs the AFL++ compiler: configure a fresh build directory with "
                      "CC=${PP_AFL_CC} (afl-clang-lto or afl-clang-fast; Debian package afl++)")
endif()
if(PP_FUZZ OR PP_AFL)
  # coverage instrumentation for the library too, not only the harness
  target_compile_options(pickleproof PRIVATE -fsanitize=fuzzer-no-link)
endif()

# The dictionary, generated from the VM's opcode table; ctest checks the generator.
add_executable(pp_gen_dict ${CMAKE_SOURCE_DIR}/fuzz/gen_dict.c)
target_include_directories(pp_gen_dict PRIVATE ${CMAKE_SOURCE_DIR}/validator)
target_compile_options(pp_gen_dict PRIVATE ${PP_WARNINGS})
target_link_libraries(pp_gen_dict PRIVATE pickleproof)
add_custom_command(OUTPUT ${CMAKE_BINARY_DIR}/pickle.dict
                   COMMAND pp_gen_dict ${CMAKE_BINARY_DIR}/pickle.dict DEPENDS pp_gen_dict
                   COMMENT "fuzz dictionary from the opcode table")
add_custom_target(pickle_dict ALL DEPENDS ${CMAKE_BINARY_DIR}/pickle.dict)
add_test(NAME fuzz-regress/dict COMMAND pp_gen_dict ${CMAKE_BINARY_DIR}/pickle-test.dict)
set_tests_properties(fuzz-regress/dict PROPERTIES LABELS fuzz-regress)

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
  if(PP_FUZZ OR PP_AFL)
    if(PP_FUZZ)
      set(bin fuzz_${target})
    else()
      set(bin afl_${target})
    endif()
    add_executable(${bin} ${src})
    target_include_directories(${bin} PRIVATE ${CMAKE_SOURCE_DIR}/validator)
    target_compile_options(${bin} PRIVATE -fsanitize=fuzzer)
    target_link_options(${bin} PRIVATE -fsanitize=fuzzer)
    target_link_libraries(${bin} PRIVATE pickleproof)
    add_dependencies(${bin} pickle_dict)
  endif()
endforeach()
