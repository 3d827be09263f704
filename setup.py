"""Build glue: ships the top-level models.toml inside the wheel as edgeslm/models.toml, and builds
the native kernels in kernels/ as the extension edgeslm._kernels."""
import shutil
import sys
import tempfile
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py
from setuptools.errors import BaseError, CCompilerError


class BuildPy(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "edgeslm" / "models.toml"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(__file__).parent / "models.toml", target)


def compiler_works(compiler) -> bool:
    """Whether the configured C compiler (CC, --compiler, MSVC) exists and compiles a trivial file."""
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "edgeslm_probe.c"
        probe.write_text("int edgeslm_probe(void) { return 0; }\n")
        try:
            compiler.compile([str(probe)], output_dir=tmp)
        except (CCompilerError, BaseError, OSError):
            return False
    return True


class BuildExt(build_ext):
    """The kernel is required wherever a C compiler works: a compiler that is present but fails on
    kernels/sample.c fails the install instead of silently leaving the ~25x slower numpy fallback.
    Only without any working compiler is it optional (with a warning), and the numpy reference runs.

    Flags are a portable baseline, never -march=native: pip caches built wheels, and a wheel
    compiled for the build machine's CPU dies with SIGILL on an older one."""

    def build_extensions(self):
        have_compiler = compiler_works(self.compiler)
        for ext in self.extensions:
            ext.optional = not have_compiler
            if self.compiler.compiler_type != "msvc":  # MSVC already optimises (/Ox)
                ext.extra_compile_args = ["-O3", *ext.extra_compile_args]
        if not have_compiler:
            print("WARNING: no working C compiler found: edgeslm._kernels is not built and sampling uses the "
                  "much slower numpy reference. Install a C compiler (gcc/clang/MSVC) and reinstall.",
                  file=sys.stderr)
        super().build_extensions()


kernels = Extension("edgeslm._kernels", ["kernels/sample.c"])

setup(cmdclass={"build_py": BuildPy, "build_ext": BuildExt}, ext_modules=[kernels])
