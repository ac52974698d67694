# Runs fuzz-conn-large (the command after `--`) and checks that it really ran
# a large input: it must exit 0 and report, at exit, a largest input of at
# least MIN_LARGEST bytes. Prints the whole output, then max_len (MAX_LEN)
# and the largest input run, so the test log shows both.
#
# FRESH_DIR, when given, is emptied first: the directory where the fuzzer
# writes the inputs it finds. Each is as large as a frame and takes about a
# second to run again under the sanitizers, so keeping them from one run to
# the next would make every run longer than the last (libFuzzer runs all of
# its corpus before -max_total_time is looked at).
#
#   cmake -DMAX_LEN=N -DMIN_LARGEST=N [-DFRESH_DIR=DIR] -P run-large.cmake -- FUZZER ARGS...
set(cmd)
set(after_dashes FALSE)
math(EXPR last "${CMAKE_ARGC} - 1")
foreach(i RANGE ${last})
  if(after_dashes)
    list(APPEND cmd "${CMAKE_ARGV${i}}")
  elseif(CMAKE_ARGV${i} STREQUAL "--")
    set(after_dashes TRUE)
  endif()
endforeach()
if(NOT cmd OR NOT MAX_LEN OR NOT MIN_LARGEST)
  message(FATAL_ERROR "usage: cmake -DMAX_LEN=N -DMIN_LARGEST=N -P run-large.cmake -- FUZZER ARGS...")
endif()

if(FRESH_DIR)
  file(REMOVE_RECURSE "${FRESH_DIR}")
  file(MAKE_DIRECTORY "${FRESH_DIR}")
endif()
execute_process(COMMAND ${cmd} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
message("${out}")
if(NOT rc STREQUAL "0")
  message(FATAL_ERROR "fuzz-conn-large exited with ${rc}")
endif()
string(REGEX MATCH "largest input run: ([0-9]+) bytes" found "${out}")
if(NOT found)
  message(FATAL_ERROR "fuzz-conn-large did not report the largest input it ran")
endif()
set(largest ${CMAKE_MATCH_1})
message("max_len: ${MAX_LEN} bytes; largest input run: ${largest} bytes")
if(largest LESS MIN_LARGEST)
  message(FATAL_ERROR "no large input was run: the largest was ${largest} bytes, "
                      "under ${MIN_LARGEST}")
endif()
