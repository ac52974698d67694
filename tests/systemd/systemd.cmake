# systemd tests: the units (systemd-analyze verify and security), socket
# activation (systemd-socket-activate), sd_notify (a NOTIFY_SOCKET listener
# in the test), the watchdog, reload and the settings file. None needs a
# running systemd. One ctest test per test function of test_systemd.py.
#
#   ctest -L systemd --output-on-failure
find_package(Python3 COMPONENTS Interpreter)
find_program(SYSTEMD_ANALYZE systemd-analyze)
find_program(SYSTEMD_SOCKET_ACTIVATE systemd-socket-activate)
if(NOT Python3_Interpreter_FOUND OR NOT SYSTEMD_ANALYZE OR NOT SYSTEMD_SOCKET_ACTIVATE)
  message(WARNING "python3, systemd-analyze or systemd-socket-activate missing: "
                  "systemd tests disabled (scripts/deps.sh installs them)")
  return()
endif()

foreach(name units security activation notify status_idle watchdog reload reload_a_renamed_plugin_file
                reload_after_a_plugin_that_stays_in_memory reload_request config)
  add_test(NAME systemd.${name}
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/test_systemd.py --aiod
                   $<TARGET_FILE:aiod> --aioctl $<TARGET_FILE:aioctl> --plugin-dir
                   ${PROJECT_BINARY_DIR}/daemon/plugins)
  set_tests_properties(systemd.${name} PROPERTIES LABELS "systemd;integration" TIMEOUT 120
                                                  ENVIRONMENT AIOD_TEST_ONLY=${name})
endforeach()
