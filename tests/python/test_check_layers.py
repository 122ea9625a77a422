"""scripts/check-layers: the folder layer order and the torch-free targets, on a small tree."""
import os
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPT = os.path.join(ROOT, "scripts", "check-layers")


def write(root, path, text):
    full = os.path.join(root, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as f:
        f.write(text)


def make_tree(root):
    write(root, "libgaze/CMakeLists.txt", "libgaze_add_library(NAME gaze_core\n  SOURCES core/a.cpp\n  DEPS x)\n")
    write(root, "datasets/CMakeLists.txt", "libgaze_add_library(NAME gaze_datasets\n  SOURCES d.cpp\n  DEPS gaze_core)\n")
    write(root, "export/CMakeLists.txt", "libgaze_add_library(NAME gaze_export\n  SOURCES e.cpp\n  DEPS gaze_core)\n")
    write(root, "libgaze/core/a.h", "#pragma once\n#include <vector>\n")
    write(root, "libgaze/core/a.cpp", '#include "libgaze/core/a.h"\n')
    write(root, "libgaze/models/m.h", '#pragma once\n#include <torch/nn/module.h>\n#include "libgaze/core/a.h"\n')
    write(root, "datasets/d.cpp", '#include "libgaze/core/a.h"\n')
    write(root, "export/e.cpp", '#include "datasets/d.h"\n')
    write(root, "trainers/t.cpp", '#include "datasets/d.h"\n#include "libgaze/models/m.h"\n')
    for h in ["fixed_point.h", "quantize.h", "nonlinear.h", "layers.h", "kernel.h"]:
        write(root, "export/" + h, "#pragma once\n#include <stdint.h>\n")
    write(root, "cli/main.cpp", '#include "export/e.h"\n#include "trainers/t.h"\n')
    write(root, "tests/x_test.cpp", '#include "cli/commands.h"\n')


def run(root):
    return subprocess.run([sys.executable, SCRIPT, root], capture_output=True, text=True)


def test_a_tree_in_layer_order_passes(tmp_path):
    make_tree(str(tmp_path))
    r = run(str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_kind_of_violation_is_named_with_file_and_line(tmp_path):
    root = str(tmp_path)
    make_tree(root)
    write(root, "datasets/up.cpp", '#include <string>\n#include "trainers/t.h"\n')           # up a layer
    write(root, "libgaze/core/b.cpp", '#include "libgaze/io/x.h"\n')                          # up inside libgaze
    write(root, "trainers/helper.cpp", '#include "tests/test_util.h"\n')                      # test helper in code
    write(root, "datasets/d.cpp", '#include "libgaze/models/m.h"\n')                          # torch via a header
    write(root, "export/layers.h", '#pragma once\n#include "libgaze/core/a.h"\n')              # kernel leaves export/
    r = run(root)
    assert r.returncode == 1
    out = r.stdout
    assert "datasets/up.cpp:2: 'trainers/t.h' points up the layers (datasets/ may not include trainers/)" in out
    assert "libgaze/core/b.cpp:1: 'libgaze/io/x.h' points up inside libgaze/" in out
    assert "trainers/helper.cpp:1: includes the test helper 'tests/test_util.h' outside a test" in out
    assert "libgaze/models/m.h:2: torch-free code includes <torch/nn/module.h> (via datasets/d.cpp)" in out
    assert "export/layers.h:2: the exported kernel may include only its own headers" in out


def test_the_repository_itself_keeps_the_order():
    r = run(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
