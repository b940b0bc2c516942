"""The one compiled part of promml: the exporter's fast scanner of prediction log lines (see _fastscan.c).

Everything else is in pyproject.toml. Without a C compiler the install still succeeds and the exporter reads logs
with its exact decoder alone, several times slower; promml's own tests require the scanner.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "promml.exporter._fastscan",
            ["src/promml/exporter/_fastscan.c"],
            extra_compile_args=["-O2"],
            optional=True,
        )
    ]
)
