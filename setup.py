"""Builds the _libgaze extension with the project's own CMake build (see pyproject.toml).

LIBGAZE_BUILD_DIR picks the CMake build folder (default build/python-wheel); ccache, when
present, makes a rebuild after `scripts/build` nearly free.
"""
import os
import pathlib
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = pathlib.Path(__file__).resolve().parent


def _base_python():
    """The interpreter behind a virtual environment (its headers and ABI are the base's)."""
    return str(pathlib.Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}")


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        build_dir = pathlib.Path(os.environ.get("LIBGAZE_BUILD_DIR", ROOT / "build" / "python-wheel"))
        build_dir.mkdir(parents=True, exist_ok=True)
        configure = ["cmake", "-S", str(ROOT), "-B", str(build_dir), f"-DLIBGAZE_PYTHON={_base_python()}"]
        if not (build_dir / "CMakeCache.txt").exists():  # a fresh folder: only what the wheel needs
            configure += ["-DCMAKE_BUILD_TYPE=Release", "-DLIBGAZE_BUILD_TESTS=OFF"]
        subprocess.run(configure, check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["cmake", "--build", str(build_dir), "--target", "_libgaze", "-j", str(os.cpu_count() or 2)],
                       check=True)
        built = next((build_dir / "python" / "libgaze").glob("_libgaze*.so"))
        target = pathlib.Path(self.get_ext_fullpath(ext.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(built, target)


setup(ext_modules=[Extension("libgaze._libgaze", sources=[])], cmdclass={"build_ext": CMakeBuild})
