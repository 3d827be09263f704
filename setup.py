"""Build glue: ships the top-level models.toml inside the wheel as edgeslm/models.toml, and builds
the native kernels in kernels/ as the extension edgeslm._kernels."""
import shutil
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py


class BuildPy(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "edgeslm" / "models.toml"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(__file__).parent / "models.toml", target)


# The kernel is optional: without a compiler the package still installs and uses the numpy reference.
kernels = Extension("edgeslm._kernels", ["kernels/sample.c"], extra_compile_args=["-O3", "-march=native"],
                    optional=True)

setup(cmdclass={"build_py": BuildPy}, ext_modules=[kernels])
