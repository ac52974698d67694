# Protocol conformance (ctest protocol.conformance, label integration): a
# Python client written from docs/protocol.md and proto/aiod.proto alone,
# with the message classes protoc generates from aiod.proto at build time
# (into the build dir), run against the real aiod.
#
#   ctest -R protocol.conformance --output-on-failure
#
# Needs protoc and Python 3 with Debian's python3-protobuf (scripts/deps.sh
# installs both); a missing one stops the configure instead of dropping the
# test silently.
find_package(Python3 REQUIRED COMPONENTS Interpreter)
find_program(AIOD_PROTOC protoc REQUIRED)

# The interpreter found first (a pyenv shim, say) may lack the protobuf
# module that Debian's python3-protobuf gives /usr/bin/python3.
set(AIOD_PROTOCOL_PYTHON "")
foreach(py IN ITEMS ${Python3_EXECUTABLE} /usr/bin/python3)
  if(NOT AIOD_PROTOCOL_PYTHON AND EXISTS ${py})
    execute_process(COMMAND ${py} -c "import google.protobuf" RESULT_VARIABLE rc OUTPUT_QUIET
                    ERROR_QUIET)
    if(rc EQUAL 0)
      set(AIOD_PROTOCOL_PYTHON ${py})
    endif()
  endif()
endforeach()
if(NOT AIOD_PROTOCOL_PYTHON)
  message(FATAL_ERROR "protocol.conformance needs Python 3 with the protobuf module "
                      "(Debian: python3-protobuf; scripts/deps.sh installs it)")
endif()

set(AIOD_PROTOCOL_PB_DIR ${CMAKE_CURRENT_BINARY_DIR}/protocol)
add_custom_command(
  OUTPUT ${AIOD_PROTOCOL_PB_DIR}/aiod_pb2.py
  COMMAND ${CMAKE_COMMAND} -E make_directory ${AIOD_PROTOCOL_PB_DIR}
  COMMAND ${AIOD_PROTOC} -I${PROJECT_SOURCE_DIR}/proto --python_out=${AIOD_PROTOCOL_PB_DIR}
          ${PROJECT_SOURCE_DIR}/proto/aiod.proto
  DEPENDS ${PROJECT_SOURCE_DIR}/proto/aiod.proto
  COMMENT "protoc --python_out: aiod_pb2.py for the protocol conformance test")
add_custom_target(protocol-pb2 ALL DEPENDS ${AIOD_PROTOCOL_PB_DIR}/aiod_pb2.py)

add_test(
  NAME protocol.conformance
  COMMAND
    ${AIOD_PROTOCOL_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/test_conformance.py --aiod
    $<TARGET_FILE:aiod> --plugin-dir ${PROJECT_BINARY_DIR}/daemon/plugins --pb-dir
    ${AIOD_PROTOCOL_PB_DIR})
# Checks that act as another user need root; elsewhere the script says which
# did not run and exits 77, shown as skipped.
set_tests_properties(protocol.conformance PROPERTIES LABELS integration TIMEOUT 600
                     SKIP_RETURN_CODE 77 ENVIRONMENT "AIOD_SANITIZE=${AIOD_SANITIZE}")
