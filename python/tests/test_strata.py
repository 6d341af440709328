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


def test_poisson_sampling_is_chosen_by_name_and_widens_verify() -> None:
    year = ROOT / "configs" / YEARS[0]
    table, _ = strata.verify(year, scale=SCALE, sampling="poisson")
    assert table["tolerance"].str.contains("standard errors").any()
    run = strata.run(year, scale=SCALE, sampling="poisson", progress=False)
    assert run.manifest["synthetic"]["sampling"] == "poisson"
    with pytest.raises(ValueError, match="`poisson` or `systematic`"):
        strata.verify(year, scale=SCALE, sampling="uniform")


def _example_with_stratum_counts(tmp_path: pathlib.Path) -> pathlib.Path:
    """The example recipe, its inputs where they are, writing its stratum counts and population."""
    text = (ROOT / "configs" / "example.toml").read_text().replace('"../data', f'"{ROOT / "data"}')
    assert "[outputs]" in text
    recipe = tmp_path / "example.toml"
    recipe.write_text(text.replace("[outputs]", "[outputs]\nstratum_counts = true", 1))
    return recipe


def test_counts_and_population_frames_give_the_tables_of_their_files(
    tmp_path: pathlib.Path,
) -> None:
    example = _example_with_stratum_counts(tmp_path)
    record_level = strata.run(example)
    counts, population = record_level.tables["stratum_counts"], record_level.tables["stratum_population"]
    counts_csv, population_csv = tmp_path / "counts.csv", tmp_path / "population.csv"
    counts_csv.write_bytes(strata.to_csv(counts))
    population_csv.write_bytes(strata.to_csv(population))
    from_files = strata.run(example, counts=counts_csv, population=population_csv)
    assert from_files.manifest["inputs"]["counts"]["rows"] == counts.height
    # pandas with the codes as categories and the rows shuffled; pyarrow in small batches.
    shuffled = counts.to_pandas().sample(frac=1.0, random_state=3).reset_index(drop=True)
    for column in ("area_code", "sex", "age_band", "imd_quintile", "measure"):
        shuffled[column] = shuffled[column].astype(str).astype("category")
    frames = {
        "polars": (counts, population),
        "pandas": (shuffled, population.to_pandas()),
        "pyarrow": (
            pa.Table.from_batches(counts.to_arrow().to_batches(max_chunksize=50)),
            population.to_arrow(),
        ),
    }
    for kind, (c, p) in frames.items():
        result = strata.run(example, counts=c, population=p)
        assert result.tables.keys() == from_files.tables.keys(), kind
        for name, want in from_files.tables.items():
            assert strata.to_csv(result.tables[name]) == strata.to_csv(want), f"{kind}: {name}"
        inputs = result.manifest["inputs"]
        assert inputs["counts"]["path"].endswith("counts>"), inputs
        assert inputs["population"]["rows"] == population.height, kind
    # The frame's area rates are the record-level run's.
    assert strata.to_csv(from_files.tables["area_rates"]) == strata.to_csv(
        record_level.tables["area_rates"]
    )


def test_a_bad_count_in_a_frame_is_reported_at_its_row_and_column(tmp_path: pathlib.Path) -> None:
    example = _example_with_stratum_counts(tmp_path)
    record_level = strata.run(example)
    counts = record_level.tables["stratum_counts"]
    bad = counts.with_columns(
        pl.when(pl.int_range(pl.len()) == 6).then(-3).otherwise(pl.col("tests")).alias("tests")
    )
    with pytest.raises(strata.RunError) as caught:
        strata.run(example, counts=bad, population=record_level.tables["stratum_population"])
    message = str(caught.value)
    assert "row 7" in message and "tests" in message and "-3" in message, message
    with pytest.raises(strata.RunError) as caught:
        strata.run(example, counts=counts.drop("measure"), population=record_level.tables["stratum_population"])
    assert "measure" in str(caught.value) and "required column missing" in str(caught.value)


def test_progress_is_reported_while_a_run_goes_on() -> None:
    events: list[tuple[str, int, int | None, str]] = []
    result = strata.run(
        ROOT / "configs" / YEARS[0],
        scale=SCALE,
        progress=lambda *event: events.append(event),
    )
    assert "area_rates" in result.tables
    assert events, "no progress reported"
    stages = [stage for stage, *_ in events]
    assert all(isinstance(s, str) and s for s in stages), stages
    for stage, done, total, unit in events:
        assert unit in ("records", "bytes")
        assert total is None or 0 <= done <= total, (stage, done, total)
    # A callback that raises stops the wait with its exception.
    def fail(*_: object) -> None:
        raise KeyError("stop")

    with pytest.raises(KeyError):
        strata.run(ROOT / "configs" / YEARS[0], scale=SCALE, progress=fail)
    # The built-in reporters draw without failing (tqdm is installed in the test venv).
    assert "area_rates" in strata.run(ROOT / "configs" / "example.toml", progress=True).tables
