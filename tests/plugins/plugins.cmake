# Test plugins, each in its own directory under build/tests/plugins/<name>/
# so a test can load exactly the set it wants. They see only the public
# header (or its frozen ABI 1.0 copy), never daemon internals.
function(aiod_test_plugin name source include_dir)
  add_library(testplugin_${name} MODULE ${CMAKE_CURRENT_LIST_DIR}/${source})
  set_target_properties(testplugin_${name} PROPERTIES PREFIX "" OUTPUT_NAME ${name}
                        LIBRARY_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/tests/plugins/${name})
  target_include_directories(testplugin_${name} PRIVATE ${include_dir})
  aiod_warnings(testplugin_${name})
endfunction()

set(AIOD_TEST_PLUGIN_DIR ${PROJECT_BINARY_DIR}/tests/plugins)
aiod_test_plugin(good good.c ${PROJECT_SOURCE_DIR}/daemon/include)
aiod_test_plugin(wrong_abi wrong_abi.c ${PROJECT_SOURCE_DIR}/daemon/include)
aiod_test_plugin(nosym nosym.c ${PROJECT_SOURCE_DIR}/daemon/include)
aiod_test_plugin(duplicate duplicate.c ${PROJECT_SOURCE_DIR}/daemon/include)
aiod_test_plugin(badsig badsig.c ${PROJECT_SOURCE_DIR}/daemon/include)
aiod_test_plugin(frozen_v1 frozen_v1.c ${CMAKE_CURRENT_LIST_DIR}/abi-1.0)
aiod_test_plugin(abi13 abi13.c ${PROJECT_SOURCE_DIR}/daemon/include)
set(AIOD_TEST_PLUGINS testplugin_good testplugin_wrong_abi testplugin_nosym
    testplugin_duplicate testplugin_badsig testplugin_frozen_v1 testplugin_abi13)

# blocker: holds the loop on purpose (watchdog test) and is built twice, as
# generation 1 (blocker/blocker.so) and 2 (blocker2/blocker.so), for the
# reload test.
aiod_test_plugin(blocker blocker.c ${PROJECT_SOURCE_DIR}/daemon/include)
aiod_test_plugin(blocker2 blocker.c ${PROJECT_SOURCE_DIR}/daemon/include)
set_target_properties(testplugin_blocker2 PROPERTIES OUTPUT_NAME blocker)
target_compile_definitions(testplugin_blocker2 PRIVATE BLOCKER_GENERATION=2)
# Generation 3 cannot be unloaded (-z nodelete, as C++ code with unique
# symbols cannot): dlclose leaves it in memory, under the name it was
# opened by.
aiod_test_plugin(blocker3 blocker.c ${PROJECT_SOURCE_DIR}/daemon/include)
set_target_properties(testplugin_blocker3 PROPERTIES OUTPUT_NAME blocker)
target_compile_definitions(testplugin_blocker3 PRIVATE BLOCKER_GENERATION=3)
target_link_options(testplugin_blocker3 PRIVATE -Wl,-z,nodelete)
list(APPEND AIOD_TEST_PLUGINS testplugin_blocker testplugin_blocker2 testplugin_blocker3)
# to_thread and proc_run (test_threads.py, test_proc.py)
aiod_test_plugin(threads threads.c ${PROJECT_SOURCE_DIR}/daemon/include)
aiod_test_plugin(proctest proctest.c ${PROJECT_SOURCE_DIR}/daemon/include)
aiod_test_plugin(sigwait sigwait.c ${PROJECT_SOURCE_DIR}/daemon/include)
# slowstart: init and fini that wait for the test (signals while the daemon
# starts or ends, test_signals.py).
aiod_test_plugin(slowstart slowstart.c ${PROJECT_SOURCE_DIR}/daemon/include)
list(APPEND AIOD_TEST_PLUGINS testplugin_slowstart)
# sockecho: drives the socket api (test_net.py).
aiod_test_plugin(sockecho sockecho.c ${PROJECT_SOURCE_DIR}/daemon/include)
list(APPEND AIOD_TEST_PLUGINS testplugin_sockecho)
# fdhog: takes every free descriptor of the daemon (test_limits.py).
aiod_test_plugin(fdhog fdhog.c ${PROJECT_SOURCE_DIR}/daemon/include)
list(APPEND AIOD_TEST_PLUGINS testplugin_fdhog)
# asyncio: CPython's asyncio tests ported to the plugin API, one function
# per case (asyncio_cases.h), built from several sources (test-asyncio).
add_library(testplugin_asyncio MODULE
            ${CMAKE_CURRENT_LIST_DIR}/asyncio_plugin.c ${CMAKE_CURRENT_LIST_DIR}/asyncio_tasks.c
            ${CMAKE_CURRENT_LIST_DIR}/asyncio_futures.c ${CMAKE_CURRENT_LIST_DIR}/asyncio_timeouts.c
            ${CMAKE_CURRENT_LIST_DIR}/asyncio_taskgroups.c ${CMAKE_CURRENT_LIST_DIR}/asyncio_fds.c)
set_target_properties(testplugin_asyncio PROPERTIES PREFIX "" OUTPUT_NAME asyncio
                      LIBRARY_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/tests/plugins/asyncio)
target_include_directories(testplugin_asyncio PRIVATE ${PROJECT_SOURCE_DIR}/daemon/include)
aiod_warnings(testplugin_asyncio)
# asyncio_locks, asyncio_queues: CPython's test_locks.py and test_queues.py as
# C cases (ABI 1.4), one function per case (test-asyncio-locks, -queues).
aiod_test_plugin(asyncio_locks asyncio_locks.c ${PROJECT_SOURCE_DIR}/daemon/include)
aiod_test_plugin(asyncio_queues asyncio_queues.c ${PROJECT_SOURCE_DIR}/daemon/include)
