# Builds and runs tests/integration/consumer against Kiln. Run with cmake -P:
#   -DMODE=subdirectory -DKILN_SOURCE_DIR=...      Kiln built inside the consumer
#   -DMODE=package -DKILN_BUILD_DIR=...            Kiln installed from an existing
#                                                  build tree, then find_package
# and -DCONSUMER_DIR=... -DWORK_DIR=... -DCXX=... -DBUILD_TYPE=...
# The consumer's build dir is kept between runs, so reruns are incremental.
cmake_minimum_required(VERSION 3.25)

function(step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}): ${ARGN}")
  endif()
endfunction()

cmake_host_system_information(RESULT jobs QUERY NUMBER_OF_LOGICAL_CORES)
set(build ${WORK_DIR}/build)
set(args -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_BUILD_TYPE=${BUILD_TYPE})

if(MODE STREQUAL "subdirectory")
  # CPU-only: this mode covers Kiln built without CUDA (and skips compiling
  # the kernels twice); package mode installs the main build, CUDA included.
  list(APPEND args -DKILN_SOURCE_DIR=${KILN_SOURCE_DIR} -DKILN_CUDA=OFF
       -DKILN_BUILD_TESTS=OFF -DKILN_BUILD_BENCH=OFF -DKILN_BUILD_EXAMPLES=OFF)
elseif(MODE STREQUAL "package")
  set(prefix ${WORK_DIR}/prefix)
  file(REMOVE_RECURSE ${prefix})
  step("cmake --install" ${CMAKE_COMMAND} --install ${KILN_BUILD_DIR} --prefix ${prefix})
  list(APPEND args -DCMAKE_PREFIX_PATH=${prefix})
  # Every run starts from a clean configure so find_package really searches.
  file(REMOVE_RECURSE ${build})
else()
  message(FATAL_ERROR "MODE must be subdirectory or package, got '${MODE}'")
endif()

step("configure" ${CMAKE_COMMAND} -S ${CONSUMER_DIR} -B ${build} ${args})
step("build" ${CMAKE_COMMAND} --build ${build} --parallel ${jobs})
step("run" ${build}/app)
