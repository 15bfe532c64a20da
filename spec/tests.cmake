# Every test of the project, registered with ctest. One command runs them all:
#   ctest --test-dir build --output-on-failure
# Conventions (add a file, get a test; no list to edit):
#   spec/c/test_*.c            C unit tests, linked with the host library and the
#                              fake transport spec/c/fake_conn.c (test_core_*.c
#                              drive the protocol core through it; test_lua*.c:
#                              with the Lua bindings instead)
#   spec/lua/*_spec.lua        busted specs of the Lua-side library
#   spec/interop/*.test.mjs    Node tests driving the built server with neffos.js
#   spec/browser/*.test.mjs    headless Chromium tests (playwright-core)
#   spec/scaleout/*.test.mjs   multi-process tests with redis-server / nats-server
#   spec/robust/*.test.mjs     hostile clients, limits, signals
#   spec/bench/*.test.mjs      the load generator still works (correctness only)
#   spec/package/*.test.mjs    the installed Debian package (.ci/package installs it first)
#   spec/author/*.test.mjs     the author's kit: the Lua client, `neffos test`, `neffos new`
#   spec/workers/*.test.mjs    --workers N: one server over several event loops (issue 15)
#   workers2/<kind>/<name>     the suites of NF_WORKER_SUITES again with every server at
#                              --workers 2 (NEFFOS_WORKERS=2, spec/interop/lib/server.mjs)
#   tsan/workers               spec/workers against the ThreadSanitizer build of build-tsan/
#                              (.ci/test makes it; skipped when it is not there)
#   examples/*/spec/           each example's busted specs, run by `neffos test` (examples/<name>)
#   spec/lint/                 checks of the build and the setup (listed at the end)

set(NF_SPEC_DIR ${CMAKE_SOURCE_DIR}/spec)
set(NF_TEST_ENV
  NEFFOS_BIN=$<TARGET_FILE:neffos>
  NEFFOS_ROOT=${CMAKE_SOURCE_DIR}
  NEFFOS_BUILD=${CMAKE_BINARY_DIR}
  NEFFOS_VECTORS=${CMAKE_SOURCE_DIR}/spec/vectors/neffos-protocol-vectors.txt
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=86
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1)

# Node.js: the one .ci/setup installed into .ci/node when the system's is too
# old for the test dependencies (Debian 12's own is 18), else the system's. It
# goes first in the Node tests' PATH too, so a script they run gets the same.
file(GLOB NF_OWN_NODE ${CMAKE_SOURCE_DIR}/.ci/node/node_modules/node-linux-*/bin/node)
if(NF_OWN_NODE)
  list(GET NF_OWN_NODE 0 NODE)
  get_filename_component(NF_OWN_NODE_DIR ${NODE} DIRECTORY)
  set(NF_NODE_PATH "PATH=path_list_prepend:${NF_OWN_NODE_DIR}")
else()
  find_program(NODE node)
endif()

# The fake transport of the core's C tests (spec/c/fake_conn.h): a socketpair
# adopted by a real host, a manual clock, a C application. A static library, so
# a test that does not use it links none of it.
add_library(nf_fake_conn STATIC ${NF_SPEC_DIR}/c/fake_conn.c)
target_include_directories(nf_fake_conn PUBLIC ${NF_SPEC_DIR}/c)
target_link_libraries(nf_fake_conn PUBLIC nf_host)

file(GLOB NF_C_TESTS CONFIGURE_DEPENDS ${NF_SPEC_DIR}/c/test_*.c)
foreach(src ${NF_C_TESTS})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  target_include_directories(${name} PRIVATE ${NF_SPEC_DIR}/c)
  if(name MATCHES "^test_lua")
    target_link_libraries(${name} PRIVATE nf_bindings)   # tests of the Lua bindings
  else()
    target_link_libraries(${name} PRIVATE nf_fake_conn nf_host)   # the host alone: no Lua
  endif()
  add_test(NAME c/${name} COMMAND ${name})
  set_tests_properties(c/${name} PROPERTIES ENVIRONMENT "${NF_TEST_ENV}" LABELS unit TIMEOUT 120)
endforeach()

find_program(BUSTED busted)
find_program(LUA54 lua5.4)
file(GLOB NF_LUA_SPECS CONFIGURE_DEPENDS ${NF_SPEC_DIR}/lua/*_spec.lua)
foreach(spec ${NF_LUA_SPECS})
  get_filename_component(name ${spec} NAME_WE)
  add_test(NAME lua/${name}
           COMMAND ${LUA54} ${BUSTED} --lpath=${CMAKE_SOURCE_DIR}/scripts/?.lua ${spec}
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(lua/${name} PROPERTIES ENVIRONMENT "${NF_TEST_ENV}" LABELS unit TIMEOUT 60)
endforeach()

foreach(kind interop browser scaleout robust reload examples bench package author workers)
  file(GLOB NF_NODE_TESTS CONFIGURE_DEPENDS ${NF_SPEC_DIR}/${kind}/*.test.mjs)
  list(FILTER NF_NODE_TESTS EXCLUDE REGEX "/robust/rss_return\\.test\\.mjs$")   # below: the Release build's
  foreach(t ${NF_NODE_TESTS})
    get_filename_component(name ${t} NAME)
    string(REPLACE ".test.mjs" "" name ${name})
    add_test(NAME ${kind}/${name}
             COMMAND ${NODE} --test --test-reporter=spec ${t}
             WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
    set_tests_properties(${kind}/${name} PROPERTIES ENVIRONMENT "${NF_TEST_ENV}" LABELS ${kind} TIMEOUT 300
                         ENVIRONMENT_MODIFICATION "${NF_NODE_PATH}")
  endforeach()
endforeach()

# The same suites with every server at --workers 2: the files whose apps hold nothing a
# test reads back in module locals (each worker has its own; docs/lua-api.md "Workers"): what
# must hold for the process is in neffos.shared (spec/interop/apps/shared_log.lua), and a
# broadcast's count is checked against the receivers on the sender's worker.
# interop/ids, ordering, parity_forced, parity_native, parity_rooms and parity_server act on
# another worker's connections through the process-wide server:get / get_all / members /
# connections (remote objects, docs/lua-api.md "Workers").
# Not listed, to keep CI under 15 minutes (each passes at --workers 2): interop/tls_core (~45 s,
# adds only TLS to files listed here); robust/hostile, ws_bounds and worst_case (~40 s), one
# connection's wire bounds, which no worker changes.
set(NF_WORKER_SUITES
  interop/api_extras interop/api_extras_docs interop/ask interop/cli interop/examples interop/handshake
  interop/http interop/parity_ask interop/static interop/metrics
  interop/api_convention interop/namespaces interop/parity_broadcast interop/parity_errors
  interop/parity_timeouts interop/deflate interop/garbage robust/reconnect
  interop/ids interop/ordering interop/parity_forced interop/parity_native interop/parity_rooms
  interop/parity_server interop/msg_fields
  browser/deflate browser/https browser/native
  reload/api reload/container reload/reload reload/save reload/stress
  robust/barrier robust/budget robust/descriptors robust/guards robust/names robust/parked
  robust/refusals robust/rfc6455 robust/linger robust/broadcast_memory
  interop/tls robust/tls robust/deflate
  scaleout/app_config scaleout/example scaleout/ids scaleout/redis scaleout/nats scaleout/native
  examples/auth examples/chat_terminal browser/chat browser/auth)
foreach(suite ${NF_WORKER_SUITES})
  string(REGEX MATCH "^[a-z]+" kind ${suite})
  add_test(NAME workers2/${suite}
           COMMAND ${NODE} --test --test-reporter=spec ${NF_SPEC_DIR}/${suite}.test.mjs
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(workers2/${suite} PROPERTIES ENVIRONMENT "${NF_TEST_ENV};NEFFOS_WORKERS=2"
                       LABELS "workers;${kind}" TIMEOUT 300 ENVIRONMENT_MODIFICATION "${NF_NODE_PATH}")
endforeach()

# The worker tests, and the lingering close and broadcast memory files at --workers 2, against
# the ThreadSanitizer build (-DNEFFOS_TSAN=ON in build-tsan/, made
# by .ci/test): any report fails them (the harness reads the server's stderr). Skipped (77)
# when that binary is not built.
set(NF_TSAN_BIN ${CMAKE_SOURCE_DIR}/build-tsan/neffos)
add_test(NAME tsan/workers
         COMMAND sh -c "test -x '${NF_TSAN_BIN}' || { echo 'no ${NF_TSAN_BIN}: cmake -S . -B build-tsan -DNEFFOS_TSAN=ON && cmake --build build-tsan --target neffos'; exit 77; }; NEFFOS_BIN='${NF_TSAN_BIN}' exec '${NODE}' --test --test-reporter=spec '${NF_SPEC_DIR}/workers/workers.test.mjs' '${NF_SPEC_DIR}/workers/broker.test.mjs' '${NF_SPEC_DIR}/workers/tls_deflate.test.mjs' '${NF_SPEC_DIR}/workers/listings.test.mjs' '${NF_SPEC_DIR}/workers/causality.test.mjs' '${NF_SPEC_DIR}/workers/remote_attack.test.mjs' '${NF_SPEC_DIR}/workers/crossing.test.mjs' '${NF_SPEC_DIR}/workers/metrics_deadline.test.mjs' '${NF_SPEC_DIR}/robust/linger.test.mjs' '${NF_SPEC_DIR}/robust/broadcast_memory.test.mjs'"
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(tsan/workers PROPERTIES ENVIRONMENT "${NF_TEST_ENV};TSAN_OPTIONS=halt_on_error=0;NEFFOS_WORKERS=2"
                     LABELS workers TIMEOUT 600 SKIP_RETURN_CODE 77 ENVIRONMENT_MODIFICATION "${NF_NODE_PATH}")

# Every example with specs: `neffos test examples/<name>` (docs/lua-api.md, "Testing").
file(GLOB NF_EXAMPLE_SPECS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/examples/*/spec)
foreach(dir ${NF_EXAMPLE_SPECS})
  get_filename_component(app ${dir} DIRECTORY)
  get_filename_component(name ${app} NAME)
  add_test(NAME example-spec/${name} COMMAND $<TARGET_FILE:neffos> test ${app} WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(example-spec/${name} PROPERTIES ENVIRONMENT "${NF_TEST_ENV}" LABELS examples TIMEOUT 120)
endforeach()

# Fuzz targets: corpus + regression replay as ctests (label fuzz); libFuzzer
# binaries with -DNF_FUZZ=ON under clang. See spec/fuzz/fuzz.cmake.
include(${NF_SPEC_DIR}/fuzz/fuzz.cmake)

# Long checks that CI runs too (label "long"; skip locally with ctest -LE long):
# every fuzz target fuzzed for a bounded time (clang/libFuzzer, its own build),
# and the interop suite against a server under valgrind (no sanitizers there).
find_program(CLANG clang)
if(CLANG)
  add_test(NAME fuzz/run COMMAND sh ${NF_SPEC_DIR}/fuzz/run.sh WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(fuzz/run PROPERTIES LABELS long TIMEOUT 900
    ENVIRONMENT "FUZZ_SECONDS=10;FUZZ_BUILD=${CMAKE_BINARY_DIR}/fuzz-build;CC=${CLANG}")
endif()
find_program(VALGRIND valgrind)
if(VALGRIND)
  add_test(NAME valgrind/interop COMMAND sh ${NF_SPEC_DIR}/robust/valgrind.sh WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(valgrind/interop PROPERTIES LABELS long TIMEOUT 1500
    ENVIRONMENT "VALGRIND_BUILD=${CMAKE_BINARY_DIR}/valgrind-build" ENVIRONMENT_MODIFICATION "${NF_NODE_PATH}")
endif()

# Lint of the build itself (label unit): no global symbol defined twice across
# the project's static libraries (spec/lint/symbols.sh says why).
set(NF_LIBS $<TARGET_FILE:nf_host> $<TARGET_FILE:nf_bindings>)
if(TARGET nf_client)
  list(APPEND NF_LIBS $<TARGET_FILE:nf_client>)
endif()
add_test(NAME lint/symbols COMMAND sh ${NF_SPEC_DIR}/lint/symbols.sh ${NF_LIBS})
set_tests_properties(lint/symbols PROPERTIES LABELS unit TIMEOUT 60)

# The Node.js of the tests satisfies the engines of every pinned test
# dependency (on Debian 12's own 18, only with the one .ci/setup installs).
add_test(NAME lint/node_engines COMMAND ${NODE} --test --test-reporter=spec ${NF_SPEC_DIR}/lint/node_engines.test.mjs
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(lint/node_engines PROPERTIES ENVIRONMENT "${NF_TEST_ENV}" LABELS unit TIMEOUT 60)

# The layers (docs/architecture.md): a file includes only headers of its own
# layer or of the layers below it, and no other folder's *internal.h (tests
# included: host/core/internal.h is the core's alone); host/ includes no Lua.
add_test(NAME lint/layers COMMAND sh ${NF_SPEC_DIR}/lint/layers.sh ${CMAKE_SOURCE_DIR})
set_tests_properties(lint/layers PROPERTIES LABELS unit TIMEOUT 60)

# luacheck (Debian's lua-check) with the repository's .luacheckrc: every example, every app and
# spec of the test suites and scripts/*.lua are clean, and app code that reaches for what the
# sandbox hides (io, debug, os.execute...) is flagged (label unit).
find_program(LUACHECK luacheck)
if(LUACHECK)
  add_test(NAME lint/luacheck COMMAND ${LUACHECK} --no-color --formatter plain --codes .
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
else()
  add_test(NAME lint/luacheck COMMAND sh -c "echo 'luacheck not found: install lua-check (.ci/setup)' >&2; exit 1")
endif()
set_tests_properties(lint/luacheck PROPERTIES LABELS unit TIMEOUT 120)

# robust/rss_return measures the RSS of the Release server (build-release/, jemalloc; .ci/test
# builds it before ctest), at one worker and at two: skipped (77), never passed, when that build is
# missing or older than its C sources (host/, bindings/, spec/bench/: the server and neffos-bench) or
# CMakeLists.txt.
set(NF_RELEASE_BIN ${CMAKE_SOURCE_DIR}/build-release/neffos)
set(NF_RELEASE_FRESH "test -x '${NF_RELEASE_BIN}' && test -z \"$(find '${CMAKE_SOURCE_DIR}/host' '${CMAKE_SOURCE_DIR}/bindings' '${CMAKE_SOURCE_DIR}/spec/bench' '${CMAKE_SOURCE_DIR}/CMakeLists.txt' '(' -name '*.[ch]' -o -name CMakeLists.txt ')' -newer '${NF_RELEASE_BIN}' -print -quit)\" || { echo 'no Release build as new as the sources: bash .ci/build Release'; exit 77; }")
foreach(w 1 2)
  set(name robust/rss_return)
  if(w EQUAL 2)
    set(name workers2/robust/rss_return)
  endif()
  add_test(NAME ${name}
           COMMAND sh -c "${NF_RELEASE_FRESH}; exec '${NODE}' --test --test-reporter=spec '${NF_SPEC_DIR}/robust/rss_return.test.mjs'"
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(${name} PROPERTIES ENVIRONMENT "${NF_TEST_ENV};NEFFOS_WORKERS=${w}" LABELS "robust;workers"
                       TIMEOUT 300 SKIP_RETURN_CODE 77 ENVIRONMENT_MODIFICATION "${NF_NODE_PATH}")
endforeach()

# spec/bench/instructions.sh still counts (callgrind on the Release server, a second of asks),
# and its KEEP=DIR dump reads cleanly (spec/bench/instructions_check.sh). Skipped (77) as rss_return.
add_test(NAME bench/instructions
         COMMAND sh -c "${NF_RELEASE_FRESH}; exec bash '${NF_SPEC_DIR}/bench/instructions_check.sh'"
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(bench/instructions PROPERTIES LABELS bench TIMEOUT 180 SKIP_RETURN_CODE 77)

# The allocator a configure picks (NEFFOS_MALLOC): jemalloc, libc under the sanitizers, decided
# again at every configure, and clear errors (spec/lint/malloc_choice.sh; configures only).
add_test(NAME lint/malloc_choice COMMAND sh ${NF_SPEC_DIR}/lint/malloc_choice.sh ${CMAKE_SOURCE_DIR})
set_tests_properties(lint/malloc_choice PROPERTIES LABELS unit TIMEOUT 120)

# One owner per concept in the protocol core: a function's prefix names its
# file, no literal deadlines, host.c asks conn.c instead of reaching into a
# connection (spec/lint/owners.sh).
add_test(NAME lint/owners COMMAND sh ${NF_SPEC_DIR}/lint/owners.sh ${CMAKE_SOURCE_DIR})
set_tests_properties(lint/owners PROPERTIES LABELS unit TIMEOUT 60)

# CI's schedule (.ci/test runs ctest -j2): every test holds the lock "one-at-a-time" and so runs
# alone, as with -j1, except valgrind/interop, the longest (about a fifth of the run), which starts
# first (COST) and runs beside them on the other core: for the others it is a machine busy with
# something else, which every timing-sensitive test must stand anyway.
get_property(NF_ALL_TESTS DIRECTORY PROPERTY TESTS)
foreach(t ${NF_ALL_TESTS})
  if(NOT t STREQUAL "valgrind/interop")
    set_property(TEST ${t} APPEND PROPERTY RESOURCE_LOCK one-at-a-time)
  endif()
endforeach()
if(VALGRIND)
  set_tests_properties(valgrind/interop PROPERTIES COST 100000)
endif()
