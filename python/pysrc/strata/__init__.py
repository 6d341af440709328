"""strata from Python: NHS England's DID standardised rates from a TOML recipe.

Every function runs the same engine as the ``strata`` command line, with the GIL released, and
returns polars DataFrames. Errors raise :class:`StrataError` (:class:`RecipeError` for a bad
recipe, invocation or plugin; :class:`RunError` for bad data or a failed method) carrying the
engine's message: file, row, column, the rule and the value seen.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, Callable, NamedTuple, Union

import polars as pl

from . import _strata
from ._strata import RecipeError, RunError, StrataError

__version__ = _strata.__version__
__all__ = [
    "Run",
    "Progress",
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


def _path_or_frame(p: Any) -> Any:
    """A path as text; a frame (anything with ``__arrow_c_stream__``) as it is."""
    return os.fspath(p) if isinstance(p, (str, os.PathLike)) else p


#: ``progress(stage, done, total, unit)``: the stage under way, how far its bar has come and of
#: how much (``None`` for a stage without a bar), in ``unit`` (``"records"`` or ``"bytes"``).
Progress = Callable[[str, int, Union[int, None], str], None]


class _TqdmProgress:
    """One tqdm bar per stage (``tqdm.auto``: a widget in a notebook, text on a terminal)."""

    def __init__(self, tqdm: Any) -> None:
        self._tqdm = tqdm
        self._bar: Any = None
        self._stage: str | None = None

    def __call__(self, stage: str, done: int, total: int | None, unit: str) -> None:
        if stage != self._stage or self._bar is None or (total and self._bar.total != total):
            self.close()
            self._bar = self._tqdm(
                total=total, desc=stage, unit=unit[:-1] if unit.endswith("s") else unit,
                unit_scale=True, leave=False,
            )
            self._stage = stage
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class _TextProgress:
    """A line on stderr per stage and at most one a second within it, without tqdm."""

    def __init__(self) -> None:
        self._stage: str | None = None
        self._shown = 0.0

    def __call__(self, stage: str, done: int, total: int | None, unit: str) -> None:
        now = time.monotonic()
        if stage == self._stage and now - self._shown < 1.0:
            return
        self._stage, self._shown = stage, now
        of = f" of {total:,}" if total else ""
        print(f"strata: {stage} {done:,}{of} {unit}", file=sys.stderr, flush=True)

    def close(self) -> None:
        pass


def _interactive() -> bool:
    return "ipykernel" in sys.modules or sys.stderr.isatty()


def _reporter(progress: bool | Progress | None) -> Any:
    """What draws a run's progress: yours, tqdm's, a text line, or nothing."""
    if progress is False or (progress is None and not _interactive()):
        return None
    if callable(progress):
        return progress
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _TextProgress()
    return _TqdmProgress(tqdm)


def run(
    recipe: str | os.PathLike[str],
    activity: Any = None,
    counts: Any = None,
    population: Any = None,
    scale: float | None = None,
    seed: int | None = None,
    threads: int | None = None,
    mapping: str | os.PathLike[str] | None = None,
    progress: bool | Progress | None = None,
    sampling: str | None = None,
) -> Run:
    """Runs a recipe and returns its tables and manifest; writes nothing.

    ``activity`` is a record-level extract, ``counts`` aggregated stratum counts (``area_code, sex,
    age_band, imd_quintile, measure, tests``) and ``population`` the population (``area_code, sex,
    age_band, imd_quintile, population``): each a path (Parquet or CSV for activity, CSV for the
    others), or a table in memory — a polars or pandas DataFrame or a pyarrow Table, handed over
    through the Arrow C stream interface without copying to a file, and checked as its file would
    be (errors name its row and column). Without ``activity`` or ``counts`` the recipe's own input
    runs (the synthetic year at ``scale`` and ``seed`` for the year recipes; ``sampling``
    ``"poisson"`` draws its counts independently, ``"systematic"`` exact to ±1).

    ``progress``: ``None`` shows it in a notebook or on a terminal (with tqdm when installed, else
    a line on stderr), ``True`` always, ``False`` never; a callable is called as
    ``progress(stage, done, total, unit)`` while the run goes on. The engine runs with the GIL
    released, and an interrupt stops the wait."""
    reporter = _reporter(progress)
    try:
        batches, manifest = _strata.run(
            os.fspath(recipe),
            None if activity is None else _path_or_frame(activity),
            None if counts is None else _path_or_frame(counts),
            None if population is None else _path_or_frame(population),
            scale,
            seed,
            threads,
            _path(mapping),
            reporter,
            sampling,
        )
    finally:
        close = getattr(reporter, "close", None)
        if callable(close) and not callable(progress):
            close()
    return Run({name: _frame(b) for name, b in batches}, json.loads(manifest))


def verify(
    recipe: str | os.PathLike[str],
    scale: float | None = None,
    seed: int | None = None,
    threads: int | None = None,
    sampling: str | None = None,
) -> tuple[pl.DataFrame, bool]:
    """Runs a recipe and compares every published figure with the reproduced one: the verify
    table (one row per figure, with its kind and tolerance) and whether every gated figure is
    within tolerance. With ``sampling="poisson"`` the synthetic year's counts are drawn
    independently and each figure from counts is allowed its sampling error."""
    table, ok = _strata.verify(os.fspath(recipe), scale, seed, threads, sampling)
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
