# Small declarative helpers so each folder's CMakeLists.txt reads as a list of what it holds.
#
#   libgaze_add_library(NAME <target> SOURCES ... [DEPS ...] [TORCH])
#       A static library. TORCH links LibTorch and uses the shared torch precompiled header.
#   libgaze_add_tests(NAME <target> SOURCES ... [DEPS ...] [TORCH] [SERIAL])
#       A Catch2 test binary (main comes from tests/catch_main.cpp, compiled once) whose
#       TEST_CASEs become individual ctest tests. TORCH reuses libgaze's precompiled header;
#       SERIAL runs each of them with no other test beside it.

set(LIBGAZE_WARNINGS -Wall -Wextra -Wno-unused-parameter)
set(LIBGAZE_TORCH_PCH ${PROJECT_SOURCE_DIR}/libgaze/torch_pch.h)

function(libgaze_add_library)
  cmake_parse_arguments(ARG "TORCH" "NAME" "SOURCES;DEPS" ${ARGN})
  add_library(${ARG_NAME} STATIC ${ARG_SOURCES})
  target_include_directories(${ARG_NAME} PUBLIC ${PROJECT_SOURCE_DIR})
  target_compile_options(${ARG_NAME} PRIVATE ${LIBGAZE_WARNINGS})
  target_link_libraries(${ARG_NAME} PUBLIC ${ARG_DEPS})
  if(ARG_TORCH)
    target_link_libraries(${ARG_NAME} PUBLIC ${TORCH_LIBRARIES})
    target_precompile_headers(${ARG_NAME} PRIVATE ${LIBGAZE_TORCH_PCH})
  endif()
endfunction()

# Test sources compile as a PIC object library so they can reuse libgaze's precompiled header
# (an executable's -fPIE would make GCC reject it); the executable only links.
function(libgaze_add_tests)
  if(NOT LIBGAZE_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(ARG "TORCH;SERIAL" "NAME" "SOURCES;DEPS" ${ARGN})
  add_library(${ARG_NAME}_objects OBJECT ${ARG_SOURCES})
  target_link_libraries(${ARG_NAME}_objects PRIVATE ${ARG_DEPS} Catch2::Catch2)
  target_compile_options(${ARG_NAME}_objects PRIVATE ${LIBGAZE_WARNINGS})
  target_compile_definitions(${ARG_NAME}_objects PRIVATE LIBGAZE_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  if(LIBGAZE_TORCH)  # the `gaze` command exists only in the normal build
    target_compile_definitions(${ARG_NAME}_objects PRIVATE LIBGAZE_GAZE_EXE="$<TARGET_FILE:gaze>")
  endif()
  if(ARG_TORCH)
    target_precompile_headers(${ARG_NAME}_objects REUSE_FROM libgaze)
  endif()
  add_executable(${ARG_NAME} $<TARGET_OBJECTS:${ARG_NAME}_objects>
                             $<TARGET_OBJECTS:libgaze_catch_main>)
  if(LIBGAZE_SANITIZE)
    target_sources(${ARG_NAME} PRIVATE $<TARGET_OBJECTS:libgaze_sanitizer_defaults>)
  endif()
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS})
  if(LIBGAZE_TORCH)
    add_dependencies(${ARG_NAME} gaze)
  endif()
  # --warn NoTests: a ctest entry whose filter matches no TEST_CASE fails instead of passing.
  # SERIAL: for binaries whose tests are long multi-threaded LibTorch runs; two such processes on
  # 2 cores slow each other several times over (OpenMP oversubscription).
  catch_discover_tests(${ARG_NAME} TEST_PREFIX "${ARG_NAME}:" EXTRA_ARGS --warn NoTests
                       PROPERTIES TIMEOUT 600 RUN_SERIAL ${ARG_SERIAL})
endfunction()
