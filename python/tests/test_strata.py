"""The Python package against the command line: same recipe, same tables, byte for byte.

Needs the module built (``maturin develop`` in python/) and the command line binary, named by
``STRATA_BIN`` (default: ``target/debug/strata`` of the workspace).
"""

from __future__ import annotations

import os
import pathlib
import subprocess

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import strata

ROOT = pathlib.Path(__file__).resolve().parents[2]
STRATA_BIN = pathlib.Path(os.environ.get("STRATA_BIN", ROOT / "target" / "debug" / "strata"))
YEARS = ["did-2023-24-icb.toml", "did-2020-21-ccg.toml"]
SCALE = 0.002


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(STRATA_BIN), *args], capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def synthetic_year(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """The 2023/24 synthetic year at a small scale, as `strata synth` writes it."""
    out = tmp_path_factory.mktemp("synth")
    done = cli("synth", str(ROOT / "configs" / YEARS[0]), "--out", str(out), "--scale", str(SCALE))
    assert done.returncode == 0, done.stderr
    return out


@pytest.mark.parametrize("recipe", YEARS)
def test_every_table_equals_the_command_lines_csv(recipe: str, tmp_path: pathlib.Path) -> None:
    path = ROOT / "configs" / recipe
    done = cli("run", str(path), "--scale", str(SCALE), "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    result = strata.run(path, scale=SCALE)
    written = sorted(p.name for p in (tmp_path / "out").glob("*.csv"))
    assert written == sorted(f"{name}.csv" for name in result.tables)
    for name, frame in result.tables.items():
        assert isinstance(frame, pl.DataFrame)
        want = (tmp_path / "out" / f"{name}.csv").read_bytes()
        assert strata.to_csv(frame) == want, name
    # Numbers are numbers: observed counts whole, rates floats.
    area_rates = result.tables["area_rates"]
    assert area_rates.schema["standardised_rate"] == pl.Float64
    assert area_rates.schema["ci_method"] == pl.String
    assert result.manifest["recipe_fingerprint"]
    assert result.manifest["synthetic"]["scale"] == SCALE


def test_an_in_memory_frame_from_polars_pandas_or_pyarrow_gives_the_files_tables(
    synthetic_year: pathlib.Path,
) -> None:
    recipe = ROOT / "configs" / YEARS[0]
    parquet = synthetic_year / "activity.parquet"
    population = synthetic_year / "population.csv"
    from_file = strata.run(recipe, activity=parquet, population=population)
    table = pq.read_table(parquet)
    frames = {
        "polars": pl.read_parquet(parquet),
        # pandas: numpy and Arrow-backed dtypes, dates as datetime64, rows shuffled.
        "pandas": table.to_pandas().sample(frac=1.0, random_state=7).reset_index(drop=True),
        # pyarrow, re-chunked into small batches.
        "pyarrow": pa.Table.from_batches(table.to_batches(max_chunksize=5_000)),
    }
    for kind, frame in frames.items():
        result = strata.run(recipe, activity=frame, population=population, threads=2)
        assert result.tables.keys() == from_file.tables.keys(), kind
        for name, want in from_file.tables.items():
            got = result.tables[name]
            assert strata.to_csv(got) == strata.to_csv(want), f"{kind}: {name}"
        activity = result.manifest["inputs"]["activity"]
        assert activity["rows"] == table.num_rows, kind
        assert len(activity["sha256"]) == 64, kind


def test_a_frame_without_a_required_column_is_refused_naming_it(
    synthetic_year: pathlib.Path,
) -> None:
    frame = pl.read_parquet(synthetic_year / "activity.parquet").drop("modality")
    with pytest.raises(strata.RunError) as caught:
        strata.run(
            ROOT / "configs" / YEARS[0],
            activity=frame,
            population=synthetic_year / "population.csv",
        )
    message = str(caught.value)
    assert "modality" in message and "required column missing" in message, message


def test_a_bad_value_in_a_frame_is_reported_at_its_row(synthetic_year: pathlib.Path) -> None:
    frame = pl.read_parquet(synthetic_year / "activity.parquet")
    bad = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 41)
        .then(pl.lit("2023-02-30"))
        .otherwise(pl.col("test_date").cast(pl.String))
        .alias("test_date")
    )
    with pytest.raises(strata.RunError) as caught:
        strata.run(
            ROOT / "configs" / YEARS[0],
            activity=bad,
            population=synthetic_year / "population.csv",
        )
    message = str(caught.value)
    assert "row 42" in message and "test_date" in message and "2023-02-30" in message, message


def test_a_bad_recipe_raises_a_recipe_error_at_its_position(tmp_path: pathlib.Path) -> None:
    recipe = tmp_path / "recipe.toml"
    text = (ROOT / "configs" / "example.toml").read_text().replace('"ratio.rate', '"ratio.nope')
    recipe.write_text(text.replace('"../data', f'"{ROOT / "data"}'))
    with pytest.raises(strata.RecipeError) as caught:
        strata.check(recipe)
    assert "recipe.toml:" in str(caught.value) and "ratio.nope" in str(caught.value)
    assert isinstance(caught.value, strata.StrataError)


def test_check_plugins_verify_and_diff() -> None:
    example = ROOT / "configs" / "example.toml"
    stages = strata.check(example)
    assert "exclusions" in stages["stage"].to_list()
    listed = strata.plugins()
    assert {"ratio.odds", "ratio.rate", "ci.byar-exact"} <= set(listed["id"].to_list())
    cells, methods = strata.diff(example, example)
    assert cells.height == 0 and methods == []
    table, ok = strata.verify(ROOT / "configs" / YEARS[0], scale=SCALE)
    assert table.height > 0 and "within_tolerance" in table.columns
    assert isinstance(ok, bool)
