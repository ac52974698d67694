# The hand-written codecs (daemon/net/wire_fast.c decodes Gather requests,
# daemon/net/encode.c encodes Outcomes replies) name the field numbers of
# proto/aiod.proto they use. scripts/check-codec.py checks those names,
# numbers and types against the proto, and that no field of a message they
# handle is left unmentioned; it runs in every build (target codec-check, in
# ALL, before the daemon's code is compiled) and a mismatch fails the build.
#
# Included from the root CMakeLists.txt after add_subdirectory(daemon) and
# enable_testing(). The same file, run as `cmake -P`, is the ctest that shows
# the check refuses a schema changed under the codecs (see the end).

if(NOT CMAKE_SCRIPT_MODE_FILE)
  find_package(Python3 REQUIRED COMPONENTS Interpreter)
  set(_codec_root ${CMAKE_CURRENT_LIST_DIR}/..)
  set(_codec_stamp ${CMAKE_BINARY_DIR}/codec-check.stamp)
  set(_codec_inputs ${_codec_root}/proto/aiod.proto ${_codec_root}/daemon/net/wire_fast.c
                    ${_codec_root}/daemon/net/encode.c)
  add_custom_command(
    OUTPUT ${_codec_stamp}
    COMMAND ${Python3_EXECUTABLE} ${_codec_root}/scripts/check-codec.py
            --proto ${_codec_root}/proto/aiod.proto
            ${_codec_root}/daemon/net/wire_fast.c ${_codec_root}/daemon/net/encode.c
    COMMAND ${CMAKE_COMMAND} -E touch ${_codec_stamp}
    DEPENDS ${_codec_root}/scripts/check-codec.py ${_codec_inputs}
    COMMENT "Checking the hand-written codecs against proto/aiod.proto"
    VERBATIM)
  add_custom_target(codec-check ALL DEPENDS ${_codec_stamp})
  if(TARGET aiodcore)
    add_dependencies(aiodcore codec-check)
  endif()

  if(AIOD_TESTS)
    add_test(NAME codec-check-schema-changes
             COMMAND ${CMAKE_COMMAND} -DROOT=${_codec_root} -DPYTHON=${Python3_EXECUTABLE}
                     -DWORK=${CMAKE_BINARY_DIR}/codec-check-test
                     -P ${CMAKE_CURRENT_LIST_FILE})
    set_tests_properties(codec-check-schema-changes PROPERTIES LABELS unit TIMEOUT 60)
  endif()
  return()
endif()

# ---- cmake -DROOT=... -DPYTHON=... -DWORK=... -P CodecCheck.cmake
# Runs the check on copies of aiod.proto, each changed in one way the codecs
# must notice, and fails unless the check fails naming the field. The
# unchanged copy must pass first, so that a failure below is the change's.
foreach(_v ROOT PYTHON WORK)
  if(NOT ${_v})
    message(FATAL_ERROR "CodecCheck.cmake as a script needs -D${_v}=...")
  endif()
endforeach()
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
file(READ ${ROOT}/proto/aiod.proto _proto)

function(run_check name text ret_rc ret_out)
  file(WRITE ${WORK}/${name}.proto "${text}")
  execute_process(COMMAND ${PYTHON} ${ROOT}/scripts/check-codec.py --proto ${WORK}/${name}.proto
                          ${ROOT}/daemon/net/wire_fast.c ${ROOT}/daemon/net/encode.c
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  set(${ret_rc} "${rc}" PARENT_SCOPE)
  set(${ret_out} "${out}" PARENT_SCOPE)
endfunction()

# `anchor` must occur exactly once in aiod.proto; it becomes `replacement`,
# and the check must fail with `expect` in its output.
function(must_fail name anchor replacement expect)
  string(FIND "${_proto}" "${anchor}" first)
  string(FIND "${_proto}" "${anchor}" last REVERSE)
  if(first EQUAL -1 OR NOT first EQUAL last)
    message(FATAL_ERROR "case ${name}: '${anchor}' is not in aiod.proto exactly once; "
                        "update cmake/CodecCheck.cmake")
  endif()
  string(REPLACE "${anchor}" "${replacement}" text "${_proto}")
  run_check(${name} "${text}" rc out)
  if(rc EQUAL 0)
    message(FATAL_ERROR "case ${name}: the check accepted the changed schema:\n${out}")
  endif()
  string(FIND "${out}" "${expect}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "case ${name}: the check failed without saying '${expect}':\n${out}")
  endif()
  message(STATUS "${name}: refused, '${expect}'")
endfunction()

run_check(unchanged "${_proto}" rc out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the unchanged aiod.proto does not pass the check:\n${out}")
endif()
message(STATUS "unchanged: passes")

# A field appended to a message the decoder reads.
must_fail(call-appended "  bool args_are_text = 3;\n}"
          "  bool args_are_text = 3;\n  string cwd = 4;\n}"
          "Call.cwd (field 4, string")
# A request appended to ClientMessage's body: the decoder must at least list it.
must_fail(request-appended "    Reload reload = 11;\n"
          "    Reload reload = 11;\n    Reload reload_again = 12;\n"
          "ClientMessage.reload_again (field 12, Reload")
# A field appended to a message the encoder writes.
must_fail(outcome-appended "is \"CancelledError\".\n  string error_kind = 4;\n  string error_message = 5;\n}"
          "is \"CancelledError\".\n  string error_kind = 4;\n  string error_message = 5;\n  uint64 attempts = 6;\n}"
          "Outcome.attempts (field 6, uint64")
# A reply appended to ServerMessage's body.
must_fail(reply-appended "    Started started = 13;\n"
          "    Started started = 13;\n    Started started_again = 14;\n"
          "ServerMessage.started_again (field 14, Started")
# A number and a type that no longer match the fast path's.
must_fail(renumbered "  bool follow = 5;\n" "  bool follow = 6;\n"
          "FIELD_GATHER_FOLLOW = 5, but Gather.follow is field 6")
must_fail(retyped "  double timeout = 3;\n  bool cancel_on_timeout = 4;\n  // Stream"
          "  float timeout = 3;\n  bool cancel_on_timeout = 4;\n  // Stream"
          "KEY(FIELD_GATHER_TIMEOUT, WT_FIXED64): Gather.timeout is 'float'")
