# spec/fuzz/fuzz.cmake - the fuzz targets (included from spec/tests.cmake).
#
# Each target spec/fuzz/fuzz_<name>.c defines LLVMFuzzerTestOneInput; its seed
# corpus is spec/fuzz/corpus/<name>/ (written by seeds.mjs from the protocol
# vectors, hand-made sessions for conn, hand-made offers and messages for
# deflate) and the crash inputs kept are
# spec/fuzz/regressions/<name>/.
#
# Always (any compiler): fuzz_replay_<name>, the target linked with
# replay_main.c and nf_host, and a ctest fuzz/<name> (label fuzz) that runs it
# once over the corpus and the regressions: fast, no fuzzing, and under the
# build's sanitizers (the Debug build is ASan + UBSan).
#
# With -DNF_FUZZ=ON (clang only; a separate build directory, e.g.
#   CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DNF_FUZZ=ON):
# fuzz_<name>, the libFuzzer binaries built with -fsanitize=fuzzer,address,undefined
# from the host sources they need. spec/fuzz/run.sh builds and runs them.

option(NF_FUZZ "Build the libFuzzer targets (needs clang)" OFF)

set(NF_FUZZ_DIR ${CMAKE_SOURCE_DIR}/spec/fuzz)
# The host sources each target exercises (compiled with coverage in NF_FUZZ mode).
set(NF_FUZZ_SOURCES_http ${CMAKE_SOURCE_DIR}/host/http/http_request.c ${CMAKE_SOURCE_DIR}/host/http/http_upgrade.c
    ${CMAKE_SOURCE_DIR}/host/base/slice.c)
set(NF_FUZZ_SOURCES_codec ${CMAKE_SOURCE_DIR}/host/codec/codec.c ${CMAKE_SOURCE_DIR}/host/base/slice.c)
set(NF_FUZZ_SOURCES_ws ${CMAKE_SOURCE_DIR}/host/ws/ws.c ${CMAKE_SOURCE_DIR}/host/ws/deflate.c
    ${CMAKE_SOURCE_DIR}/host/base/utf8.c ${CMAKE_SOURCE_DIR}/host/base/log.c ${CMAKE_SOURCE_DIR}/host/base/clock.c)
set(NF_FUZZ_SOURCES_deflate ${CMAKE_SOURCE_DIR}/host/ws/deflate.c ${CMAKE_SOURCE_DIR}/host/base/utf8.c)
# conn: a whole connection through the real host over the fake transport
# (spec/c/fake_conn.c), so every host source is exercised.
set(NF_FUZZ_SOURCES_conn ${NF_HOST_SOURCES} ${CMAKE_SOURCE_DIR}/spec/c/fake_conn.c)
set(NF_FUZZ_TARGETS http codec ws conn deflate)

foreach(name ${NF_FUZZ_TARGETS})
  add_executable(fuzz_replay_${name} ${NF_FUZZ_DIR}/fuzz_${name}.c ${NF_FUZZ_DIR}/replay_main.c)
  target_link_libraries(fuzz_replay_${name} PRIVATE nf_fake_conn nf_host)
  add_test(NAME fuzz/${name}
           COMMAND fuzz_replay_${name} ${NF_FUZZ_DIR}/corpus/${name} ${NF_FUZZ_DIR}/regressions/${name})
  set_tests_properties(fuzz/${name} PROPERTIES ENVIRONMENT "${NF_TEST_ENV}" LABELS fuzz TIMEOUT 120)
endforeach()

if(NF_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "NF_FUZZ needs clang: configure with CC=clang (a separate build directory)")
  endif()
  set(NF_FUZZ_FLAGS -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
      -fno-omit-frame-pointer -g -O1)
  foreach(name ${NF_FUZZ_TARGETS})
    add_executable(fuzz_${name} ${NF_FUZZ_DIR}/fuzz_${name}.c ${NF_FUZZ_SOURCES_${name}})
    target_include_directories(fuzz_${name} PRIVATE ${NF_HOST_INCLUDES} ${NF_SPEC_DIR}/c ${WSLAY_INCLUDE_DIR})
    target_compile_definitions(fuzz_${name} PRIVATE NF_VERSION="${PROJECT_VERSION}")
    target_compile_options(fuzz_${name} PRIVATE ${NF_FUZZ_FLAGS})
    target_link_options(fuzz_${name} PRIVATE ${NF_FUZZ_FLAGS})
    target_link_libraries(fuzz_${name} PRIVATE PkgConfig::LIBEVENT PkgConfig::LIBEVENT_OPENSSL PkgConfig::OPENSSL
                          PkgConfig::HIREDIS ${WSLAY_LIBRARY} ZLIB::ZLIB m)
  endforeach()
endif()
