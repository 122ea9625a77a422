// Which libgaze source a binary was built from, for reports that must say what produced them.
//
// libgaze_commit() is the git commit of the source tree at build time (12 hex digits), with
// "+changes" when the tree had uncommitted changes, or "unknown" outside a git checkout.
// libgaze_code_commit() is the last commit that changed the code compiled into the binaries
// (libgaze/, datasets/, trainers/, export/, cli/, cmake/, CMakeLists.txt), with "+changes" when
// those had uncommitted changes: what a cached result computed by this code can be keyed on, so
// that committing results or docs does not make it stale (cmake/git_commit.cmake).
#pragma once

#include <string>

namespace gaze {

std::string libgaze_commit();
std::string libgaze_code_commit();

}  // namespace gaze
