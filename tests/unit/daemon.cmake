# Unit tests of the daemon's units (one cmocka binary per source unit). They
# link the daemon's own code (aiodcore) and load the test plugins.
include(${CMAKE_CURRENT_LIST_DIR}/../plugins/plugins.cmake)

aiod_unit_test(test-frame SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-frame.c LIBS aiodproto)
aiod_unit_test(test-value SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-value.c LIBS aiodcore)
aiod_unit_test(test-wire SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-wire.c LIBS aiodcore)
aiod_unit_test(test-coro SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-coro.c LIBS aiodcore)
foreach(t test-plugin test-sched test-abi13)
  aiod_unit_test(${t} SOURCES ${CMAKE_CURRENT_LIST_DIR}/${t}.c LIBS aiodcore)
  target_compile_definitions(${t} PRIVATE TEST_PLUGIN_DIR="${AIOD_TEST_PLUGIN_DIR}")
  add_dependencies(${t} ${AIOD_TEST_PLUGINS})
endforeach()
aiod_unit_test(test-hashmap SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-hashmap.c LIBS aiodcore)
aiod_unit_test(test-utf8 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-utf8.c LIBS aiodcore)
aiod_unit_test(test-output SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-output.c LIBS aiodcore)
aiod_unit_test(test-encode SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-encode.c LIBS aiodcore)
aiod_unit_test(test-freelist SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-freelist.c LIBS aiodcore)
aiod_unit_test(test-identity SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-identity.c LIBS aiodcore)
# Task sockets, driven through the sockecho test plugin against a Unix-socket
# server the test runs on the same loop.
aiod_unit_test(test-sock SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-sock.c LIBS aiodcore)
target_compile_definitions(test-sock PRIVATE TEST_PLUGIN_DIR="${AIOD_TEST_PLUGIN_DIR}")
add_dependencies(test-sock testplugin_sockecho)
aiod_unit_test(test-store SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-store.c LIBS aiodcore)
aiod_unit_test(test-slab SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-slab.c LIBS aiodcore)
aiod_unit_test(test-qitems SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-qitems.c LIBS aiodcore)
# CPython's asyncio tests on the plugin API, through the asyncio test plugin
# (tests/plugins/asyncio_*.c); includes the 1,000,000-deep cancel.
aiod_unit_test(test-asyncio SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-asyncio.c LIBS aiodcore)
target_compile_definitions(test-asyncio PRIVATE TEST_PLUGIN_DIR="${AIOD_TEST_PLUGIN_DIR}")
target_include_directories(test-asyncio PRIVATE ${PROJECT_SOURCE_DIR}/tests/plugins)
add_dependencies(test-asyncio testplugin_asyncio)
set_tests_properties(test-asyncio PROPERTIES TIMEOUT 600)
# asyncio's locks and queues (api/sync.c, api/queue.c), through the
# asyncio_locks and asyncio_queues test plugins.
foreach(p asyncio_locks asyncio_queues)
  string(REPLACE "_" "-" t "test-${p}")
  aiod_unit_test(${t} SOURCES ${CMAKE_CURRENT_LIST_DIR}/${t}.c LIBS aiodcore)
  target_compile_definitions(${t} PRIVATE TEST_PLUGIN_DIR="${AIOD_TEST_PLUGIN_DIR}")
  add_dependencies(${t} testplugin_${p})
endforeach()
aiod_unit_test(test-cluster-cfg SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-cluster-cfg.c LIBS aiodcore)
