# Fuzz targets: tests/fuzz/<name>_fuzz.cpp, each defining LLVMFuzzerTestOneInput.
#  * KPC_FUZZ=ON (clang): <name>_fuzz, libFuzzer binaries under ASan/UBSan; target kpc_fuzz
#    builds them all, compiling only the product sources they use (scripts/fuzz.sh runs them).
#  * otherwise, with KPC_BUILD_TESTS: <name>_fuzz_replay, the same source with replay_main.cpp,
#    and a ctest fuzz_replay.<name> that runs it over the seed corpus (seeds/<name>.txt) and
#    every kept reproducer (regressions/<name>/), so each one stays a regression test.

set(KPC_FUZZ_TARGETS
  policy admission http_parse http1_response configz_eval agent_result kubelet_flags
  config_edit flags_edit host_fs)

# Product code per target beyond kpc_policy (kpc_base comes with it): libraries of the
# normal build, or in fuzz mode the few sources the targets call, compiled once.
set(kpc_fuzz_deps_admission webhooks)
set(kpc_fuzz_deps_http_parse net)
set(kpc_fuzz_deps_http1_response net)
set(kpc_fuzz_deps_agent_result agent)
set(kpc_fuzz_deps_kubelet_flags agent)
set(kpc_fuzz_deps_config_edit agent)
set(kpc_fuzz_deps_flags_edit agent)
set(kpc_fuzz_deps_host_fs agent)

if(KPC_FUZZ)
  add_library(kpc_fuzz_net STATIC net/http_parse.cpp net/http1_response.cpp)
  target_link_libraries(kpc_fuzz_net PUBLIC kpc_base)
  add_library(kpc_fuzz_webhooks STATIC webhooks/admission.cpp)
  target_link_libraries(kpc_fuzz_webhooks PUBLIC kpc_policy)
  add_library(kpc_fuzz_agent STATIC agent/config_edit.cpp agent/detect.cpp agent/flags_edit.cpp
                                    agent/host_fs.cpp agent/result.cpp)
  target_link_libraries(kpc_fuzz_agent PUBLIC kpc_policy nlohmann_json::nlohmann_json
                                       PRIVATE yaml-cpp)
  add_custom_target(kpc_fuzz)
elseif(NOT KPC_BUILD_TESTS)
  return()
endif()

foreach(name IN LISTS KPC_FUZZ_TARGETS)
  set(libs kpc_policy)
  foreach(dep IN LISTS kpc_fuzz_deps_${name})
    if(KPC_FUZZ)
      list(APPEND libs kpc_fuzz_${dep})
    else()
      list(APPEND libs kpc_${dep})
    endif()
  endforeach()
  if(KPC_FUZZ)
    set(exe ${name}_fuzz)
    add_executable(${exe} tests/fuzz/${name}_fuzz.cpp)
    target_link_options(${exe} PRIVATE -fsanitize=fuzzer)
    add_dependencies(kpc_fuzz ${exe})
  else()
    set(exe ${name}_fuzz_replay)
    add_executable(${exe} tests/fuzz/${name}_fuzz.cpp tests/fuzz/replay_main.cpp)
    add_test(NAME fuzz_replay.${name}
             COMMAND ${exe} --source ${CMAKE_SOURCE_DIR} --shared ${KPC_SHARED_DATA_DIR}
                     --seeds ${CMAKE_SOURCE_DIR}/tests/fuzz/seeds/${name}.txt
                     ${CMAKE_SOURCE_DIR}/tests/fuzz/regressions/${name})
  endif()
  target_link_libraries(${exe} PRIVATE ${libs})
  target_compile_definitions(${exe} PRIVATE KPC_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
endforeach()
