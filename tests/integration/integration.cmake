# Integration tests: the real aiod and aioctl (and libaioclient, through
# many_inflight), driven by Python 3 scripts (standard library only). Each
# script starts its own daemons in its own temp dir, so they run in parallel.
#
#   ctest -L integration -j2 --output-on-failure
#   ctest -R integration.gather --output-on-failure   # one script
# Required: a missing python3 must not silently drop the integration tests
# (scripts/deps.sh installs it).
find_package(Python3 REQUIRED COMPONENTS Interpreter)

set(AIOD_IT_DIR ${CMAKE_CURRENT_LIST_DIR})

add_executable(many_inflight ${AIOD_IT_DIR}/many_inflight.c)
target_link_libraries(many_inflight PRIVATE aioclient_internal)
aiod_warnings(many_inflight)
# LD_PRELOAD shim for test_cli_socket.py: a client whose hello comes after
# the daemon has hung up. Next to many_inflight, where the test looks.
add_library(send_after_hangup MODULE ${AIOD_IT_DIR}/send_after_hangup.c)
set_target_properties(send_after_hangup PROPERTIES PREFIX "")
target_link_libraries(send_after_hangup PRIVATE ${CMAKE_DL_LIBS})
aiod_warnings(send_after_hangup)

# aiod_integration_test(NAME TIMEOUT [TEST_NAME]): runs test_NAME.py (as the
# ctest test integration.TEST_NAME, by default integration.NAME).
function(aiod_integration_test name timeout)
  set(test integration.${name})
  if(ARGC GREATER 2)
    set(test integration.${ARGV2})
  endif()
  add_test(
    NAME ${test}
    COMMAND
      ${Python3_EXECUTABLE} ${AIOD_IT_DIR}/test_${name}.py --aiod $<TARGET_FILE:aiod> --aioctl
      $<TARGET_FILE:aioctl> --plugin-dir ${PROJECT_BINARY_DIR}/daemon/plugins --many-inflight
      $<TARGET_FILE:many_inflight>)
  set_tests_properties(${test} PROPERTIES LABELS integration TIMEOUT ${timeout}
                                          ENVIRONMENT "AIOD_SANITIZE=${AIOD_SANITIZE}")
endfunction()

aiod_integration_test(seed 120)
aiod_integration_test(gather 90)
aiod_integration_test(outcomes 90)
aiod_integration_test(disconnect 90)
aiod_integration_test(many_inflight 90)
aiod_integration_test(bad_input 120)
aiod_integration_test(cli 60)
# aioctl's schedule options: the client side (passes with any daemon), and
# end to end (needs the daemon's side of Schedule, aiod.proto).
aiod_integration_test(cli_schedule 60)
aiod_integration_test(cli_schedule_daemon 120)
# What aioctl prints for a human is safe on a terminal (escapes, ptys).
aiod_integration_test(cli_terminal 60)
# Which socket aioctl picks, and what it says when it cannot use it.
aiod_integration_test(cli_socket 60)
aiod_integration_test(lifecycle 90)
aiod_integration_test(heap 60)
aiod_integration_test(state 120)
# to_thread and processes: they also load test plugins from AIOD_TEST_PLUGIN_DIR.
aiod_integration_test(threads 120)
aiod_integration_test(proc 300)
set_tests_properties(integration.threads integration.proc PROPERTIES
                     ENVIRONMENT "AIOD_TEST_PLUGIN_DIR=${AIOD_TEST_PLUGIN_DIR};AIOD_SANITIZE=${AIOD_SANITIZE}")
aiod_integration_test(signals 90)
set_tests_properties(integration.signals PROPERTIES
                     ENVIRONMENT AIOD_TEST_PLUGIN_DIR=${AIOD_TEST_PLUGIN_DIR})
aiod_integration_test(net 180)
set_tests_properties(integration.net PROPERTIES
                     ENVIRONMENT AIOD_TEST_PLUGIN_DIR=${AIOD_TEST_PLUGIN_DIR})
aiod_integration_test(policy 120)
# It needs root to act as other users; elsewhere it exits 77 and shows as skipped.
set_tests_properties(integration.policy PROPERTIES SKIP_RETURN_CODE 77)

# libaioclient's non-blocking API through client/examples/aioc-poll.c, and
# `aioctl logs -f` from a second connection.
if(TARGET aioc-poll-example)
  aiod_integration_test(client_async 90)
  set_property(TEST integration.client_async APPEND
               PROPERTY ENVIRONMENT "AIOC_POLL_EXAMPLE=$<TARGET_FILE:aioc-poll-example>")
endif()
aiod_integration_test(limits 120)
aiod_integration_test(stall 120)
# The hostile-client battery (issue 13), label hostile: it loads both CPUs
# for a minute and asserts latency targets, so it runs alone, not with -j2.
# scripts/test.sh runs it under ASan+UBSan with AIOD_HOSTILE_LATENCY=report;
# on a quiet machine, as root: ctest -L hostile --output-on-failure
aiod_integration_test(hostile 1200)
set_tests_properties(integration.hostile PROPERTIES LABELS hostile)
# Durable tasks (issue 14): SIGKILL/SIGTERM while clients submit, a restart
# over a million stored outcomes (fewer under sanitizers), schedules across
# restarts, a full disk (a tmpfs: needs root, fails otherwise), damaged
# stores, detached tasks, durability none. Under TSan its rounds take
# several times longer, hence the timeout.
aiod_integration_test(durable 1800)
set_property(TEST integration.durable APPEND PROPERTY LABELS durable)
# Cluster queues (issue 16): a redis-server and three daemons per case
# (cluster_lab.py). cluster_submit submits thousands of queued tasks through
# libaioclient's aioc_submit_queue; until libaioclient defines it (the guard
# below, re-checked when its sources change) the helper is not built and
# test_cluster fails saying so. Drop the guard once 1.6 has landed.
file(GLOB AIOD_AIOC_SOURCES ${PROJECT_SOURCE_DIR}/client/lib/*.c)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${AIOD_AIOC_SOURCES})
set(AIOD_HAVE_SUBMIT_QUEUE OFF)
foreach(src ${AIOD_AIOC_SOURCES})
  file(STRINGS ${src} hit REGEX "int aioc_submit_queue\\(")
  if(hit)
    set(AIOD_HAVE_SUBMIT_QUEUE ON)
  endif()
endforeach()
# The longest file of the suite (3 to 6 minutes, mostly waiting for
# visibility timeouts): its cases in two halves (AIOD_TEST_SHARD, every
# other case), so that ctest -j2 runs them side by side.
aiod_integration_test(cluster 900)
aiod_integration_test(cluster 900 cluster.2)
if(AIOD_HAVE_SUBMIT_QUEUE)
  add_executable(cluster_submit ${AIOD_IT_DIR}/cluster_submit.c)
  target_link_libraries(cluster_submit PRIVATE aioclient_internal)
  aiod_warnings(cluster_submit)
endif()
foreach(shard 0 1)
  if(shard EQUAL 0)
    set(test integration.cluster)
  else()
    set(test integration.cluster.2)
  endif()
  set_tests_properties(${test} PROPERTIES
                       ENVIRONMENT "AIOD_TEST_PLUGIN_DIR=${AIOD_TEST_PLUGIN_DIR};AIOD_SANITIZE=${AIOD_SANITIZE};AIOD_TEST_SHARD=${shard}/2")
  if(AIOD_HAVE_SUBMIT_QUEUE)
    set_property(TEST ${test} APPEND
                 PROPERTY ENVIRONMENT "AIOD_CLUSTER_SUBMIT=$<TARGET_FILE:cluster_submit>")
  endif()
endforeach()
