# aiod-bench: the benchmark tool (not part of the test suite, except one
# quick smoke run labelled `bench`) and its "bench" plugin. Run it by hand:
#   build/tests/aiod-bench            (see docs/benchmarks.md)
set(AIOD_BENCH_DIR ${CMAKE_CURRENT_LIST_DIR})
set(AIOD_BENCH_PLUGIN_DIR ${PROJECT_BINARY_DIR}/tests/bench/plugins)

# The bench plugin sees only the public plugin header.
add_library(benchplugin_bench MODULE ${AIOD_BENCH_DIR}/benchplug.c)
set_target_properties(benchplugin_bench PROPERTIES PREFIX "" OUTPUT_NAME bench
                      LIBRARY_OUTPUT_DIRECTORY ${AIOD_BENCH_PLUGIN_DIR})
target_include_directories(benchplugin_bench PRIVATE ${PROJECT_SOURCE_DIR}/daemon/include)
aiod_warnings(benchplugin_bench)

find_package(Threads REQUIRED)
add_executable(aiod-bench
  ${AIOD_BENCH_DIR}/main.c ${AIOD_BENCH_DIR}/client.c ${AIOD_BENCH_DIR}/echo.c
  ${AIOD_BENCH_DIR}/daemon.c ${AIOD_BENCH_DIR}/durable.c ${AIOD_BENCH_DIR}/switch.c
  ${AIOD_BENCH_DIR}/util.c)
# aiodcore for the coroutine code (switch.c), aiodproto for framing and the
# generated messages, libaioclient for the library round trip.
target_link_libraries(aiod-bench PRIVATE aiodcore aiodproto aioclient Threads::Threads)
target_compile_definitions(aiod-bench PRIVATE
  AIOD_BENCH_AIOD="$<TARGET_FILE:aiod>"
  AIOD_BENCH_PLUGINS="${AIOD_BENCH_PLUGIN_DIR}"
  AIOD_BENCH_SRC="${AIOD_BENCH_DIR}")
aiod_warnings(aiod-bench)
add_dependencies(aiod-bench aiod benchplugin_bench)

add_test(NAME bench-smoke COMMAND aiod-bench --quick --quiet)
set_tests_properties(bench-smoke PROPERTIES LABELS bench TIMEOUT 120)

# aiod-cluster-bench: aiod hosts sharing a queue through one Redis against a
# bare hiredis client of the same Redis (docs/benchmarks.md, "Cluster"). It
# shares aiod-bench's children, raw client and clocks (daemon.c, client.c,
# util.c); hiredis (PkgConfig::HIREDIS, the daemon's) for its own Redis loop.
add_executable(aiod-cluster-bench
  ${AIOD_BENCH_DIR}/cluster_main.c ${AIOD_BENCH_DIR}/cluster_redis.c
  ${AIOD_BENCH_DIR}/cluster_hosts.c ${AIOD_BENCH_DIR}/client.c ${AIOD_BENCH_DIR}/daemon.c
  ${AIOD_BENCH_DIR}/util.c)
target_link_libraries(aiod-cluster-bench PRIVATE aiodproto aioclient PkgConfig::HIREDIS
                      Threads::Threads)
target_compile_definitions(aiod-cluster-bench PRIVATE
  AIOD_BENCH_AIOD="$<TARGET_FILE:aiod>"
  AIOD_BENCH_PLUGINS="${AIOD_BENCH_PLUGIN_DIR}"
  AIOD_DAEMON_PLUGINS="${PROJECT_BINARY_DIR}/daemon/plugins")
aiod_warnings(aiod-cluster-bench)
add_dependencies(aiod-cluster-bench aiod benchplugin_bench demo_plugin)

# Its quick run needs redis-server (scripts/deps.sh installs it for tests).
add_test(NAME cluster-bench-smoke COMMAND aiod-cluster-bench --quick --quiet)
set_tests_properties(cluster-bench-smoke PROPERTIES LABELS bench TIMEOUT 300)
