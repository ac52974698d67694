# Fuzz targets. Every build replays the checked-in corpora under ctest
# (label fuzz) through replay.c; with -DAIOD_FUZZ=ON (clang) they are
# libFuzzer binaries instead, and label fuzz-run runs each for a bounded time.
set(AIOD_FUZZ_CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus)
set(AIOD_FUZZ_SECONDS 30 CACHE STRING "Seconds each fuzz-run test fuzzes")

function(aiod_fuzz name)
  cmake_parse_arguments(F "" "" "SOURCES;LIBS" ${ARGN})
  if(AIOD_FUZZ)
    add_executable(${name} ${F_SOURCES})
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
    set(new_corpus ${PROJECT_BINARY_DIR}/fuzz-corpus/${name})
    file(MAKE_DIRECTORY ${new_corpus})
    add_test(NAME ${name} COMMAND ${name} -runs=0 ${AIOD_FUZZ_CORPUS}/${name})
    add_test(NAME ${name}-run
             COMMAND ${name} -max_total_time=${AIOD_FUZZ_SECONDS} -timeout=10 -rss_limit_mb=2048
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
aiod_fuzz(fuzz-conn SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz-conn.c LIBS aiodcore)
target_compile_definitions(fuzz-conn PRIVATE TEST_PLUGIN_DIR="${AIOD_TEST_PLUGIN_DIR}")
add_dependencies(fuzz-conn testplugin_good)
aiod_fuzz(fuzz-http SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz-http.c
          ${PROJECT_SOURCE_DIR}/daemon/plugins/http_parse.c LIBS aiodproto)
target_include_directories(fuzz-http PRIVATE ${PROJECT_SOURCE_DIR}/daemon/plugins)
set_source_files_properties(${PROJECT_SOURCE_DIR}/daemon/plugins/http_parse.c
                            TARGET_DIRECTORY fuzz-http PROPERTIES COMPILE_OPTIONS "-Wconversion")
