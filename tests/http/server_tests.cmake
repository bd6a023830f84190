# The HTTP server's tests (evs::http): the API on both backends, metrics, tokens, bad requests, `evs serve`.
# Included from tests/CMakeLists.txt when EVS_HTTP is on.
add_executable(http_tests main.cpp http/http_client.cpp http/api_test.cpp http/server_rules_test.cpp
                          http/serve_command_test.cpp)
target_link_libraries(http_tests PRIVATE evs::http doctest::doctest)
target_include_directories(http_tests PRIVATE ${EVS_RAPIDJSON_INCLUDE_DIR})
target_compile_definitions(http_tests PRIVATE EVS_CLI_BINARY="$<TARGET_FILE:evs>")
add_dependencies(http_tests evs)
if(EVS_POSTGRESQL)
  target_link_libraries(http_tests PRIVATE PostgreSQL::PostgreSQL)
  target_compile_definitions(http_tests PRIVATE EVS_DEV_PG_SCRIPT="${PROJECT_SOURCE_DIR}/dev-pg.sh" EVS_TEST_POSTGRESQL=1)
endif()
doctest_discover_tests(http_tests PROPERTIES SKIP_REGULAR_EXPRESSION "test cases: +0 \\||evs-test-skipped: ")
