"""Builds the hoist package: the pure-Python hoist/ and the extension hoist._hoist, with
the C library's sources (../src) compiled into it, on CPython's stable ABI (one
build for CPython 3.9 and later).

    pip install ./python          (from the repository root; or `pip install .` there)

Needs a C11 compiler, CPython's headers (Debian: python3-dev) and jansson
(libjansson-dev). setup.py at the repository root builds the same from there."""

import glob
import os

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def rel(path):
    """path relative to the directory being built (setuptools wants relative paths)."""
    return os.path.relpath(path, os.getcwd())


class BuildExt(build_ext):
    """The library's own flags: C11, -D_GNU_SOURCE, threads."""

    def build_extensions(self):
        for ext in self.extensions:
            ext.extra_compile_args = ["-std=c11", "-D_GNU_SOURCE", "-pthread", "-O2",
                                      "-fvisibility=hidden"]
        super().build_extensions()


def version():
    with open(os.path.join(HERE, "hoist", "__init__.py")) as f:
        for line in f:
            if line.startswith("__version__"):
                return line.split("=")[1].strip().strip('"')
    raise RuntimeError("no __version__ in hoist/__init__.py")


def hoist_extension():
    sources = sorted(glob.glob(os.path.join(ROOT, "src", "*.c")))
    return Extension(
        "hoist._hoist",
        sources=[rel(os.path.join(HERE, "_hoist.c"))] + [rel(s) for s in sources],
        include_dirs=[rel(os.path.join(ROOT, "include")), rel(os.path.join(ROOT, "src"))],
        define_macros=[("Py_LIMITED_API", "0x03090000")],
        py_limited_api=True,
        libraries=["jansson", "dl", "m"],
        extra_link_args=["-pthread",
                         "-Wl,--version-script=" + os.path.join(HERE, "hoist.map")],
    )


def run(package_dir):
    setup(
        name="hoist",
        version=version(),
        description="Load model checkpoints from storage straight into GPU and CPU memory",
        packages=["hoist"],
        package_dir={"hoist": package_dir},
        ext_modules=[hoist_extension()],
        cmdclass={"build_ext": BuildExt},
        python_requires=">=3.9",
        install_requires=["packaging"],
        extras_require={"torch": ["torch"], "numpy": ["numpy"],
                        "transformers": ["transformers", "accelerate"]},
        options={"bdist_wheel": {"py_limited_api": "cp39"}},
        zip_safe=False,
    )


if __name__ == "__main__":
    run(rel(os.path.join(HERE, "hoist")))
