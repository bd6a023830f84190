# Configures tests/subproject (a parent that adds evs as a subdirectory without a build type) and checks that
# evs left the parent's CMAKE_BUILD_TYPE alone (empty), then that evs on its own still gets its default.
function(configure_and_read_build_type source build out)
  file(REMOVE_RECURSE ${build})
  execute_process(COMMAND ${CMAKE_COMMAND} -S ${source} -B ${build} -DEVS_SOURCE_DIR=${EVS_SOURCE_DIR}
                          -DEVS_BUILD_TESTS=OFF -DEVS_BUILD_SAMPLES=OFF -DEVS_BUILD_BENCH=OFF
                  RESULT_VARIABLE rc OUTPUT_QUIET)
  if(rc)
    message(FATAL_ERROR "configuring ${source} failed: ${rc}")
  endif()
  file(STRINGS ${build}/CMakeCache.txt line REGEX "^CMAKE_BUILD_TYPE:")
  string(REGEX REPLACE "^CMAKE_BUILD_TYPE:[A-Z]*=" "" value "${line}")
  set(${out} "${value}" PARENT_SCOPE)
endfunction()

configure_and_read_build_type(${CMAKE_CURRENT_LIST_DIR} ${WORK_DIR}/parent parent_type)
if(NOT parent_type STREQUAL "")
  message(FATAL_ERROR "evs as a subproject set the parent's CMAKE_BUILD_TYPE to '${parent_type}'")
endif()
configure_and_read_build_type(${EVS_SOURCE_DIR} ${WORK_DIR}/top_level top_type)
if(NOT top_type STREQUAL "RelWithDebInfo")
  message(FATAL_ERROR "evs on its own got build type '${top_type}', expected the default RelWithDebInfo")
endif()
message(STATUS "subproject: parent build type left empty; top level defaults to ${top_type}")
