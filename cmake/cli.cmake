# The pickleproof command (issue 8): scan runs its files on worker threads.
find_package(Threads REQUIRED)
target_link_libraries(pickleproof_cli PRIVATE Threads::Threads)

# tests/unit/test_config.c tests the pickleproof.toml parser, which lives in cli/: give it that
# source once cmake/tests.cmake (included later) has made the target.
function(pp_cli_unit_tests)
  if(TARGET test_config)
    target_sources(test_config PRIVATE ${CMAKE_SOURCE_DIR}/cli/config.c)
    target_include_directories(test_config PRIVATE ${CMAKE_SOURCE_DIR}/cli)
  endif()
endfunction()
cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR} CALL pp_cli_unit_tests)
