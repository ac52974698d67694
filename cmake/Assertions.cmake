# Assertions stay on in every build type, as systemd keeps its asserts: they
# check the daemon's inner contracts (a request ends once, a task's end runs
# its steps in order), cost a compare each, and a broken contract is better
# stopped than carried on. -DAIOD_ASSERT=OFF builds without them (NDEBUG).
option(AIOD_ASSERT "Keep assert() on in optimised builds" ON)
if(AIOD_ASSERT)
  foreach(type RELEASE RELWITHDEBINFO MINSIZEREL)
    string(REPLACE "-DNDEBUG" "" CMAKE_C_FLAGS_${type} "${CMAKE_C_FLAGS_${type}}")
  endforeach()
endif()
