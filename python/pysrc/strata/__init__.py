"""strata from Python: NHS England's DID standardised rates from a TOML recipe.

Every function runs the same engine as the ``strata`` command line, with the GIL released, and
returns polars DataFrames. Errors raise :class:`StrataError` (:class:`RecipeError` for a bad
recipe, invocation or plugin; :class:`RunError` for bad data or a failed method) carrying the
engine's message: file, row, column, the rule and the value seen.
"""

from __future__ import annotations

import json
import os
from typing import Any, NamedTuple

import polars as pl

from . import _strata
from ._strata import RecipeError, RunError, StrataError

__version__ = _strata.__version__
__all__ = [
    "Run",
    "run",
    "verify",
    "diff",
    "check",
    "plugins",
    "to_csv",
    "StrataError",
    "RecipeError",
    "RunError",
]


class Run(NamedTuple):
    """A finished run: every output table by name (in the order strata writes them) and the
    manifest (recipe and run fingerprints, plugins, input checksums, stages, warnings)."""

    tables: dict[str, pl.DataFrame]
    manifest: dict[str, Any]


def _frame(batch: Any) -> pl.DataFrame:
    return pl.from_arrow(batch)  # type: ignore[return-value]


def _path(p: str | os.PathLike[str] | None) -> str | None:
    return None if p is None else os.fspath(p)


def run(
    recipe: str | os.PathLike[str],
    activity: Any = None,
    counts: str | os.PathLike[str] | None = None,
    population: str | os.PathLike[str] | None = None,
    scale: float | None = None,
    seed: int | None = None,
    threads: int | None = None,
    mapping: str | os.PathLike[str] | None = None,
) -> Run:
    """Runs a recipe and returns its tables and manifest; writes nothing.

    ``activity`` is a record-level extract: a path (Parquet, CSV or gzip CSV), or a table in
    memory — a polars or pandas DataFrame or a pyarrow Table, handed over through the Arrow C
    stream interface without copying to a file. Without ``activity`` or ``counts`` the recipe's own
    input runs (the synthetic year at ``scale`` and ``seed`` for the year recipes)."""
    if activity is not None and isinstance(activity, (str, os.PathLike)):
        activity = os.fspath(activity)
    batches, manifest = _strata.run(
        os.fspath(recipe),
        activity,
        _path(counts),
        _path(population),
        scale,
        seed,
        threads,
        _path(mapping),
    )
    return Run({name: _frame(b) for name, b in batches}, json.loads(manifest))


def verify(
    recipe: str | os.PathLike[str],
    scale: float | None = None,
    seed: int | None = None,
    threads: int | None = None,
) -> tuple[pl.DataFrame, bool]:
    """Runs a recipe and compares every published figure with the reproduced one: the verify
    table (one row per figure, with its kind and tolerance) and whether every gated figure is
    within tolerance."""
    table, ok = _strata.verify(os.fspath(recipe), scale, seed, threads)
    return _frame(table), ok


def diff(
    recipe_a: str | os.PathLike[str],
    recipe_b: str | os.PathLike[str],
    scale: float | None = None,
    seed: int | None = None,
) -> tuple[pl.DataFrame, list[str]]:
    """Runs two recipes: every output cell that differs, and the method columns that changed."""
    table, methods = _strata.diff(os.fspath(recipe_a), os.fspath(recipe_b), scale, seed)
    return _frame(table), methods


def check(recipe: str | os.PathLike[str]) -> pl.DataFrame:
    """Checks a recipe without reading data (keys, plugin ids and parameters, input files);
    returns the plugin each stage uses, or raises :class:`RecipeError` listing every problem at
    its ``file:line:col``."""
    rows = _strata.check(os.fspath(recipe))
    return pl.DataFrame(rows, schema=["stage", "id", "version", "origin"], orient="row")


def plugins(plugin_paths: list[str | os.PathLike[str]] | None = None) -> pl.DataFrame:
    """Every plugin a recipe can choose: stage, id, version, description, origin."""
    rows = _strata.plugins([os.fspath(p) for p in plugin_paths or []])
    return pl.DataFrame(
        rows, schema=["stage", "id", "version", "description", "origin"], orient="row"
    )


def to_csv(frame: Any, float_precision: int = 6) -> bytes:
    """A table written as strata writes its CSVs (fixed float precision, p-values in scientific
    notation): a table from :func:`run` gives the command line's file, byte for byte."""
    return bytes(_strata.csv(frame, float_precision))
