"""pytest fixtures shared by libgaze's Python-side tests."""
import os
import subprocess
import sys

import pytest

# The official-model reference lives in scripts/reference (users run it too).
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "reference"))


@pytest.fixture(scope="session")
def gaze_exe():
    """Path of the built `gaze` binary (ctest passes it in GAZE_EXE)."""
    exe = os.environ.get("GAZE_EXE")
    if not exe or not os.access(exe, os.X_OK):
        pytest.fail("GAZE_EXE must point at the built gaze binary (run through ctest)")
    return exe


@pytest.fixture
def run_gaze(gaze_exe):
    def run(*args, check=True):
        result = subprocess.run([gaze_exe, *map(str, args)], capture_output=True, text=True)
        if check and result.returncode != 0:
            raise AssertionError(f"gaze {' '.join(map(str, args))} failed:\n{result.stderr}")
        return result
    return run
