# Fuzz targets. Every build replays the checked-in corpora under ctest
# (label fuzz) through replay.c; with -DAIOD_FUZZ=ON (clang) they are
# libFuzzer binaries instead, and label fuzz-run runs each for a bounded time.
set(AIOD_FUZZ_CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus)
set(AIOD_FUZZ_SECONDS 30 CACHE STRING "Seconds each fuzz-run test fuzzes")

function(aiod_fuzz name)
  cmake_parse_arguments(F "" "SECONDS" "SOURCES;LIBS" ${ARGN})
  if(NOT F_SECONDS)
    set(F_SECONDS ${AIOD_FUZZ_SECONDS})
  endif()
  if(AIOD_FUZZ)
    add_executable(${name} ${F_SOURCES})
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
    set(new_corpus ${PROJECT_BINARY_DIR}/fuzz-corpus/${name})
    file(MAKE_DIRECTORY ${new_corpus})
    add_test(NAME ${name} COMMAND ${name} -runs=0 ${AIOD_FUZZ_CORPUS}/${name})
    add_test(NAME ${name}-run
             COMMAND ${name} -max_total_time=${F_SECONDS} -timeout=10 -rss_limit_mb=2048
                     -print_final_stats=1 ${new_corpus} ${AIOD_FUZZ_CORPUS}/${name})
    set_tests_properties(${name}-run PROPERTIES LABELS fuzz-run TIMEOUT 300)
  else()
    add_executable(${name} ${F_SOURCES} ${CMAKE_CURRENT_LIST_DIR}/replay.c)
    add_test(NAME ${name} COMMAND ${name} ${AIOD_FUZZ_CORPUS}/${name})
  endif()
  target_link_libraries(${name} PRIVATE ${F_LIBS})
  aiod_warnings(${name})
  set_tests_properties(${name} PROPERTIES LABELS fuzz TIMEOUT 120)
endfunction()

aiod_fuzz(fuzz-frame SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz-frame.c LIBS aiodproto)
aiod_fuzz(fuzz-wire SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz-wire.c LIBS aiodcore)
aiod_fuzz(fuzz-value SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz-value.c LIBS aiodcore)
aiod_fuzz(fuzz-callword SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz-callword.c
          ${PROJECT_SOURCE_DIR}/client/cli/callword.c LIBS aiodproto)
target_include_directories(fuzz-callword PRIVATE ${PROJECT_SOURCE_DIR}/client/cli)
# fuzz-conn's share of the fuzzing time is split with fuzz-conn-large (below),
# so that the large run adds no time to the whole fuzz-run label.
math(EXPR AIOD_FUZZ_LARGE_SECONDS "${AIOD_FUZZ_SECONDS} / 2")
math(EXPR AIOD_FUZZ_CONN_SECONDS "${AIOD_FUZZ_SECONDS} - ${AIOD_FUZZ_LARGE_SECONDS}")
aiod_fuzz(fuzz-conn SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz-conn.c LIBS aiodcore
          SECONDS ${AIOD_FUZZ_CONN_SECONDS})
target_compile_definitions(fuzz-conn PRIVATE TEST_PLUGIN_DIR="${AIOD_TEST_PLUGIN_DIR}")
add_dependencies(fuzz-conn testplugin_good)

# fuzz-conn-large: fuzz-conn with the default max_frame, whose inputs may be
# a whole frame of that size (issue 13). Its seeds are the worst shapes of a
# full frame (gen-large.c), written at build time; every build replays them
# (label fuzz), and the fuzz build fuzzes from them with -max_len of one
# frame (label fuzz-run). Both go through run-large.cmake, which fails the
# test unless an input of nearly a full frame was run, and prints max_len and
# the largest input run.
#
# max_len: fuzz-conn's two control bytes, the 4-byte frame header and a
# payload of max_frame's default, read from aiod_limits.h.
file(STRINGS ${PROJECT_SOURCE_DIR}/daemon/base/aiod_limits.h _aiod_max_frame
     REGEX "^#define LIMIT_MAX_FRAME ")
if(NOT _aiod_max_frame MATCHES "^#define LIMIT_MAX_FRAME \\(([0-9]+)u \\* 1024 \\* 1024\\)$")
  message(FATAL_ERROR "tests/fuzz: cannot read LIMIT_MAX_FRAME from aiod_limits.h "
                      "('${_aiod_max_frame}'); update fuzz.cmake's pattern")
endif()
math(EXPR AIOD_FUZZ_LARGE_MAX_LEN "${CMAKE_MATCH_1} * 1024 * 1024 + 4 + 2")
# An input counts as large when it is within 1 KiB of max_len (every seed is).
math(EXPR AIOD_FUZZ_LARGE_MIN "${AIOD_FUZZ_LARGE_MAX_LEN} - 1024")
set(AIOD_FUZZ_LARGE_SEEDS ${PROJECT_BINARY_DIR}/fuzz-large-seeds)

# The generator of the seeds runs on the build machine.
add_executable(fuzz-gen-large ${CMAKE_CURRENT_LIST_DIR}/gen-large.c)
target_include_directories(fuzz-gen-large PRIVATE ${PROJECT_SOURCE_DIR}/daemon)
aiod_warnings(fuzz-gen-large)
set(_aiod_seed_files)
foreach(_seed map_keys map_dup_last list_ints nest_at_limit nest_deepest bad_utf8)
  list(APPEND _aiod_seed_files ${AIOD_FUZZ_LARGE_SEEDS}/${_seed})
endforeach()
add_custom_command(OUTPUT ${_aiod_seed_files}
                   COMMAND ${CMAKE_COMMAND} -E make_directory ${AIOD_FUZZ_LARGE_SEEDS}
                   COMMAND fuzz-gen-large ${AIOD_FUZZ_LARGE_SEEDS}
                   DEPENDS fuzz-gen-large
                   COMMENT "Writing fuzz-conn-large's full-frame seeds")
add_custom_target(fuzz-large-seeds ALL DEPENDS ${_aiod_seed_files})

# The demo plugin (demo.echo takes any value), built again into a directory
# of its own, so that the target loads it and nothing else of the bundled
# plugins (no proc: a mutated call must never start a program).
add_library(fuzzplugin_demo MODULE ${PROJECT_SOURCE_DIR}/daemon/plugins/demo.c)
set_target_properties(fuzzplugin_demo PROPERTIES PREFIX "" OUTPUT_NAME demo
                      LIBRARY_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/tests/fuzz-plugins/demo)
target_include_directories(fuzzplugin_demo PRIVATE ${PROJECT_SOURCE_DIR}/daemon/include)
aiod_warnings(fuzzplugin_demo)

set(_aiod_conn_large_sources ${CMAKE_CURRENT_LIST_DIR}/fuzz-conn.c)
if(NOT AIOD_FUZZ)
  list(APPEND _aiod_conn_large_sources ${CMAKE_CURRENT_LIST_DIR}/replay.c)
endif()
add_executable(fuzz-conn-large ${_aiod_conn_large_sources})
target_link_libraries(fuzz-conn-large PRIVATE aiodcore)
target_compile_definitions(fuzz-conn-large PRIVATE FUZZ_CONN_LARGE=1
                           TEST_PLUGIN_DIR="${AIOD_TEST_PLUGIN_DIR}"
                           DEMO_PLUGIN_DIR="${PROJECT_BINARY_DIR}/tests/fuzz-plugins/demo")
add_dependencies(fuzz-conn-large testplugin_good fuzzplugin_demo fuzz-large-seeds)
aiod_warnings(fuzz-conn-large)
set(_aiod_run_large ${CMAKE_COMMAND} -DMAX_LEN=${AIOD_FUZZ_LARGE_MAX_LEN}
    -DMIN_LARGEST=${AIOD_FUZZ_LARGE_MIN} -P ${CMAKE_CURRENT_LIST_DIR}/run-large.cmake --
    $<TARGET_FILE:fuzz-conn-large>)
if(AIOD_FUZZ)
  target_link_options(fuzz-conn-large PRIVATE -fsanitize=fuzzer)
  set(_aiod_new_corpus ${PROJECT_BINARY_DIR}/fuzz-corpus/fuzz-conn-large)
  file(MAKE_DIRECTORY ${_aiod_new_corpus})
  # Without -max_len libFuzzer would cut every seed to 1 MiB as it reads it.
  add_test(NAME fuzz-conn-large
           COMMAND ${_aiod_run_large} -runs=0 -max_len=${AIOD_FUZZ_LARGE_MAX_LEN}
                   ${AIOD_FUZZ_LARGE_SEEDS} ${AIOD_FUZZ_CORPUS}/fuzz-conn)
  # -len_control=0: mutations may use the whole max_len from the start. The
  # inputs it finds are not kept from one run to the next (FRESH_DIR).
  # An input of 4 MiB takes up to a few seconds under the sanitizers, hence
  # -timeout; the decoded trees of a full frame, their copies and
  # AddressSanitizer's quarantine peaked at about 1 GB (-print_final_stats),
  # so -rss_limit_mb leaves four times that.
  add_test(NAME fuzz-conn-large-run
           COMMAND ${CMAKE_COMMAND} -DMAX_LEN=${AIOD_FUZZ_LARGE_MAX_LEN}
                   -DMIN_LARGEST=${AIOD_FUZZ_LARGE_MIN} -DFRESH_DIR=${_aiod_new_corpus}
                   -P ${CMAKE_CURRENT_LIST_DIR}/run-large.cmake -- $<TARGET_FILE:fuzz-conn-large>
                   -max_total_time=${AIOD_FUZZ_LARGE_SECONDS}
                   -max_len=${AIOD_FUZZ_LARGE_MAX_LEN} -len_control=0 -timeout=60
                   -rss_limit_mb=4096 -print_final_stats=1 ${_aiod_new_corpus}
                   ${AIOD_FUZZ_LARGE_SEEDS})
  set_tests_properties(fuzz-conn-large-run PROPERTIES LABELS fuzz-run TIMEOUT 300)
else()
  add_test(NAME fuzz-conn-large COMMAND ${_aiod_run_large} ${AIOD_FUZZ_LARGE_SEEDS}
                                        ${AIOD_FUZZ_CORPUS}/fuzz-conn)
endif()
set_tests_properties(fuzz-conn-large PROPERTIES LABELS fuzz TIMEOUT 120)
