"""Build glue: ships the top-level models.toml inside the wheel as edgeslm/models.toml."""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPy(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "edgeslm" / "models.toml"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(__file__).parent / "models.toml", target)


setup(cmdclass={"build_py": BuildPy})
