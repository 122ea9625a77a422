# Writes OUT (a C++ header defining LIBGAZE_COMMIT and LIBGAZE_CODE_COMMIT) from the git checkout at
# SOURCE_DIR; run at every build by the libgaze_commit target, it rewrites the header only when a
# commit changes, so nothing recompiles otherwise. Outside a git checkout both are "unknown".
#
# LIBGAZE_COMMIT is HEAD, LIBGAZE_CODE_COMMIT the last commit that changed the code that computes
# results (the folders below; not tests/, fuzz/, python/ or scripts/, which compute none of the
# `gaze` tool's results); each gets "+changes" when what it covers has uncommitted changes. A
# commit of results or docs moves the first and leaves the second.
set(code_paths libgaze datasets trainers export cli cmake CMakeLists.txt)

function(describe_commit out)  # ARGN: the paths it covers, all of the tree when none
  # rev-list is plumbing: no user setting (log.showSignature, pretty formats) changes its output.
  execute_process(COMMAND git -C "${SOURCE_DIR}" rev-list -1 HEAD -- ${ARGN}
                  OUTPUT_VARIABLE commit OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE failed ERROR_QUIET)
  if(failed OR NOT commit MATCHES "^[0-9a-f]+$")
    set(${out} "unknown" PARENT_SCOPE)
    return()
  endif()
  string(SUBSTRING "${commit}" 0 12 commit)
  execute_process(COMMAND git -C "${SOURCE_DIR}" diff --quiet HEAD -- ${ARGN} RESULT_VARIABLE dirty ERROR_QUIET)
  if(dirty)
    set(commit "${commit}+changes")
  endif()
  set(${out} "${commit}" PARENT_SCOPE)
endfunction()

describe_commit(commit)
describe_commit(code_commit ${code_paths})
set(text "#define LIBGAZE_COMMIT \"${commit}\"\n#define LIBGAZE_CODE_COMMIT \"${code_commit}\"\n")
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
endif()
if(NOT old STREQUAL text)
  file(WRITE "${OUT}" "${text}")
endif()
