# AIOD_SANITIZE=address,undefined builds everything with those sanitizers;
# any finding aborts the test that caused it.
if(AIOD_SANITIZE)
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
