# C unit tests: one executable per tests/unit/test_*.c, linked with the library internals.
file(GLOB PP_UNIT_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/unit/test_*.c)
foreach(src ${PP_UNIT_TESTS})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src} ${CMAKE_SOURCE_DIR}/tests/unit/tap.c)
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/validator ${CMAKE_SOURCE_DIR}/tests/unit)
  target_compile_options(${name} PRIVATE ${PP_WARNINGS})
  target_link_libraries(${name} PRIVATE pickleproof)
  target_compile_definitions(${name} PRIVATE PP_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
  add_test(NAME unit/${name} COMMAND ${name})
  set_tests_properties(unit/${name} PROPERTIES LABELS unit)
endforeach()

if(PP_SANITIZE)
  execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=libasan.so
                  OUTPUT_VARIABLE PP_ASAN_RUNTIME OUTPUT_STRIP_TRAILING_WHITESPACE)
  execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=libubsan.so
                  OUTPUT_VARIABLE PP_UBSAN_RUNTIME OUTPUT_STRIP_TRAILING_WHITESPACE)
endif()

# Python tests: each tests/python/test_*.py under Debian's pytest, labelled by its first line
# ("# label: NAME"), driven with the CLI path in the environment.
file(GLOB PP_PY_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/python/test_*.py)
foreach(src ${PP_PY_TESTS})
  get_filename_component(name ${src} NAME_WE)
  file(STRINGS ${src} first LIMIT_COUNT 1)
  set(label python)
  if(first MATCHES "# label: ([a-z-]+)")
    set(label ${CMAKE_MATCH_1})
  endif()
  add_test(NAME ${label}/${name}
           COMMAND ${PP_PYTHON} -m pytest -q -p no:cacheprovider ${src})
  set(env "PICKLEPROOF=$<TARGET_FILE:pickleproof_cli>;PP_SANITIZE=$<BOOL:${PP_SANITIZE}>")
  list(APPEND env "PYTHONPATH=${CMAKE_BINARY_DIR}/python")
  if(label STREQUAL "load" AND PP_SANITIZE)
    # the extension is instrumented: the interpreter needs the runtimes first; CPython itself
    # keeps objects alive at exit, so leak checking is the C tests' job
    list(APPEND env "LD_PRELOAD=${PP_ASAN_RUNTIME}:${PP_UBSAN_RUNTIME}"
                    "ASAN_OPTIONS=detect_leaks=0:abort_on_error=1")
  endif()
  set_tests_properties(${label}/${name} PROPERTIES LABELS ${label} ENVIRONMENT "${env}")
endforeach()
