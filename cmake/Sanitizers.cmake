# AIOD_SANITIZE=address,undefined builds everything with those sanitizers;
# any finding aborts the test that caused it. AIOD_SANITIZE=thread builds
# with ThreadSanitizer (clang or gcc); its findings abort only with
# TSAN_OPTIONS=halt_on_error=1, which scripts/test.sh sets. TSan keeps its
# own shadow memory and cannot be combined with ASan, LSan or MSan.
if(AIOD_SANITIZE)
  if(AIOD_SANITIZE MATCHES "thread" AND AIOD_SANITIZE MATCHES "address|leak|memory")
    message(FATAL_ERROR "AIOD_SANITIZE=${AIOD_SANITIZE}: thread cannot be combined with "
                        "address, leak or memory; build them separately")
  endif()
  add_compile_options(-fsanitize=${AIOD_SANITIZE} -fno-sanitize-recover=all
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${AIOD_SANITIZE})
  add_compile_definitions(AIOD_SANITIZED=1)
endif()
if(AIOD_COVERAGE)
  add_compile_options(--coverage)
  add_link_options(--coverage)
endif()
# Coverage instrumentation for libFuzzer in everything the fuzz targets link.
if(AIOD_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "AIOD_FUZZ needs clang (CC=clang)")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
