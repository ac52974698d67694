# The install layout and building against the installed files.
add_test(NAME install COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/test-install.sh ${PROJECT_BINARY_DIR})
set_tests_properties(install PROPERTIES LABELS integration TIMEOUT 120)
