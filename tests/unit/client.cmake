# Unit tests of libaioclient and of aioctl's pure parts. Included from
# tests/CMakeLists.txt; paths are relative to this file so that it also works
# from a build that includes only proto/ and client/.
set(AIOC_SRC ${CMAKE_CURRENT_LIST_DIR}/../../client)
set(AIOC_PROTO_INCLUDES $<TARGET_PROPERTY:aiodproto,INTERFACE_INCLUDE_DIRECTORIES>)

aiod_unit_test(test-callword SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-callword.c
               ${AIOC_SRC}/cli/callword.c LIBS aiodproto)
target_include_directories(test-callword PRIVATE ${AIOC_SRC}/cli)

aiod_unit_test(test-client-value SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-client-value.c
               LIBS aioclient_internal)
target_include_directories(test-client-value PRIVATE ${AIOC_PROTO_INCLUDES})

# Talks to a fake daemon forked on a temporary Unix socket; uses the
# library's internal headers to check its decoding too.
aiod_unit_test(test-client-wire SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-client-wire.c
               LIBS aioclient_internal)
target_include_directories(test-client-wire PRIVATE ${AIOC_PROTO_INCLUDES} ${AIOC_SRC}/lib)

# The installed shared library must export aioc_* and nothing else, each
# with a version node (LIBAIOCLIENT_1, LIBAIOCLIENT_1.3, ...).
set(AIOC_EXPORT_CHECK
    "nm -D --defined-only \"$1\" | awk '$3 !~ /^(aioc_[a-z0-9_]+@@?LIBAIOCLIENT_1(\\.[0-9]+)?|LIBAIOCLIENT_1(\\.[0-9]+)?)$/ { print; bad = 1 } /aioc_/ { n++ } END { exit bad || n < 50 }'")
add_test(NAME test-client-exports COMMAND sh -c "${AIOC_EXPORT_CHECK}" sh $<TARGET_FILE:aioclient>)
set_tests_properties(test-client-exports PROPERTIES LABELS unit TIMEOUT 60)

# Every function aioc.h declares with AIOC_EXPORT is exported, and nothing
# else is: the version script names each one (a function added to the
# header but not to libaioclient.sym would silently stay local), and the
# functions added in 1.3 carry that node.
set(AIOC_SYMBOLS_CHECK
    [=[set -e
hdr=$(tr '\n' ' ' < "$1" | grep -o 'AIOC_EXPORT [^;(]*(' | sed 's/.*[ *]\([a-z_0-9]*\)($/\1/' | grep '^aioc_' | sort)
lib=$(nm -D --defined-only "$2" | awk '$2 == "T" { sub(/@.*/, "", $3); print $3 }' | sort)
if [ "$hdr" != "$lib" ]; then
  echo "aioc.h and the library's exports differ (< header only, > library only):"
  diff <(echo "$hdr") <(echo "$lib") || true
  exit 1
fi
[ "$(echo "$hdr" | wc -l)" -ge 100 ]
nm -D --defined-only "$2" | grep -q 'aioc_version@@LIBAIOCLIENT_1.3$'
nm -D --defined-only "$2" | grep -q 'aioc_run@@LIBAIOCLIENT_1$'
]=])
add_test(NAME test-client-symbols COMMAND bash -c "${AIOC_SYMBOLS_CHECK}" bash
                                          ${AIOC_SRC}/include/aioc.h $<TARGET_FILE:aioclient>)
set_tests_properties(test-client-symbols PROPERTIES LABELS unit TIMEOUT 60)

# Every function aioc.h exports has its prototype in the SYNOPSIS of a
# section-3 page (docs/man/aioc_*.3.md).
set(AIOC_DOCS_CHECK
    [=[set -e
hdr=$(tr '\n' ' ' < "$1" | grep -o 'AIOC_EXPORT [^;(]*(' | sed 's/.*[ *]\([a-z_0-9]*\)($/\1/' | grep '^aioc_' | sort -u)
missing=""
for f in $hdr; do
  grep -qE "[ *]$f\(" "$2"/aioc_*.3.md || missing="$missing $f"
done
if [ -n "$missing" ]; then
  echo "exported but with no prototype in docs/man/aioc_*.3.md:$missing"
  exit 1
fi
[ "$(echo "$hdr" | wc -l)" -ge 100 ]
]=])
add_test(NAME test-client-docs COMMAND bash -c "${AIOC_DOCS_CHECK}" bash ${AIOC_SRC}/include/aioc.h
                                       ${PROJECT_SOURCE_DIR}/docs/man)
set_tests_properties(test-client-docs PROPERTIES LABELS unit TIMEOUT 60)

# The non-blocking API (aioc_start_*, aioc_process) against the same kind of
# fake daemon, driven by the test's own poll() loop.
aiod_unit_test(test-client-async SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-client-async.c
               LIBS aioclient_internal)
target_include_directories(test-client-async PRIVATE ${AIOC_PROTO_INCLUDES} ${AIOC_SRC}/lib)
target_link_libraries(test-client-async PRIVATE m)

# The version: aioc_version() of the shared library against the header's
# macros and the number the build read from them.
aiod_unit_test(test-client-version SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-client-version.c
               LIBS aioclient)
target_compile_definitions(test-client-version PRIVATE AIOC_CMAKE_VERSION="${AIOC_VERSION}"
                                                       AIOC_CMAKE_SOVERSION=${AIOC_SOVERSION})

# The protocol version is proto/frame.h's AIOD_PROTOCOL_VERSION: the client
# library and aioctl must not carry a copy of their own.
add_test(NAME test-client-protocol-version
         COMMAND sh -c "! grep -rnE 'define +[A-Z_]*PROTOCOL_VERSION|protocol_version *= *[0-9]' \"$1\""
                 sh ${AIOC_SRC})
set_tests_properties(test-client-protocol-version PROPERTIES LABELS unit TIMEOUT 60)

# libaioclient 1.4's paged listing and dropped-line counts, against the fake
# daemon.
aiod_unit_test(test-client-list SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-client-list.c LIBS aioclient_internal)
target_include_directories(test-client-list PRIVATE ${AIOC_PROTO_INCLUDES} ${AIOC_SRC}/lib)

# libaioclient 1.5's schedules against the fake daemon: aioc_schedule_*
# checks, the Schedule on a Submit, a task info's attempts and next run,
# ERROR_STORE.
aiod_unit_test(test-client-schedule SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-client-schedule.c
               LIBS aioclient_internal)
target_include_directories(test-client-schedule PRIVATE ${AIOC_PROTO_INCLUDES} ${AIOC_SRC}/lib)

# aioctl's schedule options, --at's times and the STATE text of ps
# (client/cli/schedopt.c).
aiod_unit_test(test-client-cli-schedule SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-client-cli-schedule.c
               ${AIOC_SRC}/cli/schedopt.c LIBS aioclient_internal)
target_include_directories(test-client-cli-schedule PRIVATE ${AIOC_SRC}/cli ${AIOC_PROTO_INCLUDES})

# libaioclient 1.6's cluster queues against the fake daemon: aioc_submit_queue's
# checks and the Submit it sends, cluster ids through show/await/cancel/logs,
# ERROR_UNAVAILABLE, the task info's queue/host/owner_host.
aiod_unit_test(test-client-queue SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-client-queue.c
               LIBS aioclient_internal)
target_include_directories(test-client-queue PRIVATE ${AIOC_PROTO_INCLUDES} ${AIOC_SRC}/lib)

# aioctl's side of the cluster queues: the aioctl binary against the fake
# daemon (submit/detach --queue and the Submit they send, show's queue/host/
# owner host lines, cluster ids through await/cancel/logs, usage errors).
aiod_unit_test(test-client-cli-queue SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-client-cli-queue.c
               LIBS aioclient_internal)
target_include_directories(test-client-cli-queue PRIVATE ${AIOC_PROTO_INCLUDES} ${AIOC_SRC}/lib)
target_compile_definitions(test-client-cli-queue PRIVATE AIOCTL="$<TARGET_FILE:aioctl>")
add_dependencies(test-client-cli-queue aioctl)
target_compile_definitions(test-client-cli-queue
                           PRIVATE AIOD_COMPLETION="${CMAKE_CURRENT_LIST_DIR}/../../completion/aioctl")
