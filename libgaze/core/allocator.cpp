#include "libgaze/core/allocator.h"

#include <malloc.h>

namespace gaze {

void keep_freed_memory() {
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

}  // namespace gaze
