// Which libgaze source a binary was built from, for reports that must say what produced them.
//
// libgaze_commit() is the git commit of the source tree at build time (12 hex digits), with
// "+changes" when the tree had uncommitted changes, or "unknown" outside a git checkout.
// libgaze_code_commit() is the last commit that changed the code that computes results (the
// folders listed in cmake/git_commit.cmake), with "+changes" when that code had uncommitted
// changes: what a cached result can be keyed on, so that committing results or docs does not
// make it stale.
#pragma once

#include <string>

namespace gaze {

std::string libgaze_commit();
std::string libgaze_code_commit();

}  // namespace gaze
