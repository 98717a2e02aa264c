"""Bundled data as package data: the repo keeps hwconfigs/ and workloads/ at its top level (the
project layout), and every build copies them into the package as ``accelsim/_bundled/<folder>``,
so a non-editable install (``pip install .``, a wheel) finds them through importlib.resources.
An editable install reads them where they are (``accelsim.paths`` falls back to the repo root).
Everything else about the package is in pyproject.toml.
"""
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
BUNDLED = {"hwconfigs": ("*.yaml",), "workloads": ("*.yaml", "*.yml", "*.onnx", "*.json", "*.md")}


class build_py_with_bundled(build_py):
    """build_py, then the bundled folders into <build_lib>/accelsim/_bundled/."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the repo's folders in place
        for folder, patterns in BUNDLED.items():
            target = Path(self.build_lib) / "accelsim" / "_bundled" / folder
            self.mkpath(str(target))
            for pattern in patterns:
                for src in sorted((ROOT / folder).glob(pattern)):
                    self.copy_file(str(src), str(target / src.name))


setup(cmdclass={"build_py": build_py_with_bundled})
