// Atomic file replacement: write to a temporary file beside the target, fsync it, rename it
// over the target, fsync the directory. A crash or error at any point leaves either the old
// file or the new one, never a torn mix — checkpoints, packs and exports all go through here.
#pragma once

#include <functional>
#include <string>

namespace gaze {

// Calls write(tmp_path); on success makes tmp_path durable and renames it to `path`.
// If write throws, the temporary is removed and the exception propagates; `path` is untouched.
void write_atomically(const std::string& path, const std::function<void(const std::string&)>& write);

void write_text_atomically(const std::string& path, const std::string& text);

// Reads a whole file; throws gaze::Error naming it when it cannot.
std::string read_text_file(const std::string& path);

}  // namespace gaze
