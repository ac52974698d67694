# Test plugins, each in its own directory under build/tests/plugins/<name>/
# so a test can load exactly the set it wants. They see only the public
# header (or its frozen ABI 1.0 copy), never daemon internals.
function(aiod_test_plugin name source include_dir)
  add_library(testplugin_${name} MODULE ${CMAKE_CURRENT_LIST_DIR}/${source})
  set_target_properties(testplugin_${name} PROPERTIES PREFIX "" OUTPUT_NAME ${name}
                        LIBRARY_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/tests/plugins/${name})
  target_include_directories(testplugin_${name} PRIVATE ${include_dir})
  aiod_warnings(testplugin_${name})
endfunction()

set(AIOD_TEST_PLUGIN_DIR ${PROJECT_BINARY_DIR}/tests/plugins)
aiod_test_plugin(good good.c ${PROJECT_SOURCE_DIR}/daemon/include)
aiod_test_plugin(wrong_abi wrong_abi.c ${PROJECT_SOURCE_DIR}/daemon/include)
aiod_test_plugin(nosym nosym.c ${PROJECT_SOURCE_DIR}/daemon/include)
aiod_test_plugin(duplicate duplicate.c ${PROJECT_SOURCE_DIR}/daemon/include)
aiod_test_plugin(badsig badsig.c ${PROJECT_SOURCE_DIR}/daemon/include)
aiod_test_plugin(frozen_v1 frozen_v1.c ${CMAKE_CURRENT_LIST_DIR}/abi-1.0)
set(AIOD_TEST_PLUGINS testplugin_good testplugin_wrong_abi testplugin_nosym
    testplugin_duplicate testplugin_badsig testplugin_frozen_v1)
