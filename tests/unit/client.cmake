# Unit tests of libaioclient and of aioctl's pure parts. Included from
# tests/CMakeLists.txt; paths are relative to this file so that it also works
# from a build that includes only proto/ and client/.
set(AIOC_SRC ${CMAKE_CURRENT_LIST_DIR}/../../client)
set(AIOC_PROTO_INCLUDES $<TARGET_PROPERTY:aiodproto,INTERFACE_INCLUDE_DIRECTORIES>)

aiod_unit_test(test-callword SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-callword.c
               ${AIOC_SRC}/cli/callword.c LIBS aiodproto)
target_include_directories(test-callword PRIVATE ${AIOC_SRC}/cli)

aiod_unit_test(test-client-value SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-client-value.c
               LIBS aioclient_static)
target_include_directories(test-client-value PRIVATE ${AIOC_PROTO_INCLUDES})

# Talks to a fake daemon forked on a temporary Unix socket; uses the
# library's internal headers to check its decoding too.
aiod_unit_test(test-client-wire SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-client-wire.c
               LIBS aioclient_static)
target_include_directories(test-client-wire PRIVATE ${AIOC_PROTO_INCLUDES} ${AIOC_SRC}/lib)

# The installed shared library must export aioc_* and nothing else.
set(AIOC_EXPORT_CHECK
    "nm -D --defined-only \"$1\" | awk '$3 !~ /^(aioc_|LIBAIOCLIENT_1$)/ { print; bad = 1 } /aioc_/ { n++ } END { exit bad || n < 50 }'")
add_test(NAME test-client-exports COMMAND sh -c "${AIOC_EXPORT_CHECK}" sh $<TARGET_FILE:aioclient>)
set_tests_properties(test-client-exports PROPERTIES LABELS unit TIMEOUT 60)

# The non-blocking API (aioc_start_*, aioc_process) against the same kind of
# fake daemon, driven by the test's own poll() loop.
aiod_unit_test(test-client-async SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-client-async.c
               LIBS aioclient_static)
target_include_directories(test-client-async PRIVATE ${AIOC_PROTO_INCLUDES} ${AIOC_SRC}/lib)
target_link_libraries(test-client-async PRIVATE m)
