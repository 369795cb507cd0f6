"""Package data: the committed profiles, predictors and search spaces ship in the wheel as ``kdnas_bench._data``.

The checkout keeps one copy of each at the repository root (``profiles/``, ``predictors/``, ``search/``); the
build maps them into the package (``package_dir``), so an installed kdnas-bench finds them without a checkout
(:mod:`kdnas_bench.paths`). Everything else about the package is in pyproject.toml.
"""

from setuptools import find_packages, setup

DATA = {f"kdnas_bench._data.{name}": name for name in ("profiles", "predictors", "search")}

setup(
    packages=[*find_packages(include=["kdnas_bench", "kdnas_bench.*"]), *DATA],
    package_dir=DATA,
    package_data={package: ["**/*"] for package in DATA},
)
