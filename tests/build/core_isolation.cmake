# cmake -DBUILD_DIR=DIR -P core_isolation.cmake: build the two probes of
# tests/build/CMakeLists.txt in DIR.  The core-only one must compile; the
# one that includes io/log.h must fail, for that reason.
execute_process(
  COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR} --target probe_core_ok
  RESULT_VARIABLE ok_rc OUTPUT_VARIABLE ok_out ERROR_VARIABLE ok_out)
if(NOT ok_rc EQUAL 0)
  message(FATAL_ERROR "a core-only file does not compile with src/core's "
                      "include path:\n${ok_out}")
endif()
execute_process(
  COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR} --target probe_core_io
  RESULT_VARIABLE io_rc OUTPUT_VARIABLE io_out ERROR_VARIABLE io_out)
if(io_rc EQUAL 0)
  message(FATAL_ERROR "a core file that includes io/log.h compiled: "
                      "src/core's include path reaches src/io")
endif()
if(NOT io_out MATCHES "io/log\\.h: No such file or directory")
  message(FATAL_ERROR "the probe failed, but not for want of io/log.h:\n"
                      "${io_out}")
endif()
message(STATUS "src/core cannot include io/log.h, as intended")
