# Load tests (label `load`): aiod-load starts its own daemon on a temporary
# socket, runs well-behaved pipelining clients beside misbehaving ones and
# checks answers, liveness, clean shutdown and RSS (tests/load/aiod-load.c).
#
#   ctest -L load --output-on-failure
#   build/tests/aiod-load --help
set(AIOD_LOAD_DIR ${CMAKE_CURRENT_LIST_DIR})

add_executable(aiod-load ${AIOD_LOAD_DIR}/aiod-load.c)
target_link_libraries(aiod-load PRIVATE aiodproto)
aiod_warnings(aiod-load)
add_dependencies(aiod-load aiod demo_plugin)

# 200 clients x 500 pipelined tasks + 20 misbehaving (garbage, half a frame,
# disconnect mid-await, slow reader), four warm-up rounds then one measured
# round; RSS must come back within 15% of the post-warm-up baseline. About
# 10 s on two cores.
# Under sanitizers RSS says nothing about leaks (ASan keeps freed memory in
# quarantine): the same run without the warm-up and the RSS check.
set(AIOD_LOAD_RSS)
if(AIOD_SANITIZE)
  set(AIOD_LOAD_RSS --no-warmup)
endif()
add_test(
  NAME load.pipeline
  COMMAND aiod-load --aiod $<TARGET_FILE:aiod> --plugin-dir ${PROJECT_BINARY_DIR}/daemon/plugins
          --clients 200 --tasks 500 --bad 20 ${AIOD_LOAD_RSS})
set_tests_properties(load.pipeline PROPERTIES LABELS "load;integration" TIMEOUT 600)

# A small run with the daemon under valgrind memcheck: any memory error or
# leak makes valgrind exit 99 after the SIGTERM shutdown, which fails the
# test. A few seconds. Not with sanitizers (they do not mix with valgrind).
find_program(VALGRIND_EXECUTABLE valgrind)
if(VALGRIND_EXECUTABLE AND NOT AIOD_SANITIZE)
  add_test(
    NAME load.valgrind
    COMMAND aiod-load --aiod $<TARGET_FILE:aiod> --plugin-dir ${PROJECT_BINARY_DIR}/daemon/plugins
            --clients 10 --tasks 50 --bad 4 --no-warmup --round-timeout 100
            --valgrind ${VALGRIND_EXECUTABLE})
  set_tests_properties(load.valgrind PROPERTIES LABELS "load;valgrind" TIMEOUT 300)
else()
  message(STATUS "valgrind not found or sanitizers on: load.valgrind disabled")
endif()
