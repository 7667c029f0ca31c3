# The pickleproof command (issue 8): scan runs its files on worker threads.
find_package(Threads REQUIRED)
target_link_libraries(pickleproof_cli PRIVATE Threads::Threads)
