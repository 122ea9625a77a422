#include "libgaze/core/version.h"

#include "libgaze_commit.h"  // generated at build time by cmake/git_commit.cmake

namespace gaze {

std::string libgaze_commit() { return LIBGAZE_COMMIT; }
std::string libgaze_code_commit() { return LIBGAZE_CODE_COMMIT; }

}  // namespace gaze
