// Which libgaze source a binary was built from, for reports that must say what produced them.
//
// libgaze_commit() is the git commit of the source tree at build time (12 hex digits), with
// "+changes" when the tree had uncommitted changes, or "unknown" outside a git checkout.
#pragma once

#include <string>

namespace gaze {

std::string libgaze_commit();

}  // namespace gaze
