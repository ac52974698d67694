# Run as a POST_BUILD step (cmake -P) on the installed static libaioclient.a:
# links its members into one relocatable object (ld -r) and makes every
# global symbol local except the functions the version script exports
# (objcopy --keep-global-symbols), then writes the archive again with that
# one object. A program linking the archive can then define names the
# library uses inside (conn_open, alloc_malloc, the protocol's aiod__*
# code) without a clash, as with the shared library.
#
# Inputs: ARCHIVE (the .a, rewritten in place), SYMS (the version script),
# AR, LD, OBJCOPY.
foreach(v ARCHIVE SYMS AR LD OBJCOPY)
  if(NOT ${v})
    message(FATAL_ERROR "LocalizeArchive.cmake: ${v} is not set")
  endif()
endforeach()

file(STRINGS ${SYMS} lines REGEX "^[ \t]*aioc_[a-z0-9_]+;")
set(keep "")
foreach(line IN LISTS lines)
  string(REGEX MATCH "aioc_[a-z0-9_]+" name "${line}")
  string(APPEND keep "${name}\n")
endforeach()
if(keep STREQUAL "")
  message(FATAL_ERROR "LocalizeArchive.cmake: no aioc_ symbol in ${SYMS}")
endif()

set(work ${ARCHIVE}.localize)
file(REMOVE_RECURSE ${work})
file(MAKE_DIRECTORY ${work})
file(WRITE ${work}/keep.txt "${keep}")

function(run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "LocalizeArchive.cmake: '${ARGV}' failed (${rc}): ${err}")
  endif()
endfunction()

run(${LD} -r -o ${work}/libaioclient.o --whole-archive ${ARCHIVE})
run(${OBJCOPY} --keep-global-symbols=${work}/keep.txt ${work}/libaioclient.o)
file(REMOVE ${ARCHIVE})
run(${AR} rcs ${ARCHIVE} ${work}/libaioclient.o)
file(REMOVE_RECURSE ${work})
