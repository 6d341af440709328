#!/usr/bin/env python3
"""strata against DuckDB on the same record-level Parquet or CSV, in one go.

Runs `strata bench` (the whole recipe, end to end) and an analyst's SQL doing the same core work
in DuckDB -- attribution joins (GP practice, then LSOA), exclusions (no area, sex, age or IMD),
stratum counts, expected counts and indirectly standardised rates per area x measure -- on the
same activity file (Parquet, or CSV plain or gzip), population and reference CSVs the recipe
names. It checks that the national rates and every area's standardised rate agree (relative
1e-6), then prints both timings (median of --runs), peak memory and the ratio.

DuckDB comes from PyPI, installed by this script into a virtual environment under target/
(created on first use). Usage, from the repository root, after `cargo build --release -p strata`:

    target/release/strata synth configs/did-2023-24-icb.toml --scale 1 --out /work/perf-data/full
    python3 bench/duckdb_compare.py --activity /work/perf-data/full/activity.parquet \\
        --population /work/perf-data/full/population.csv --runs 3

--activity may be Parquet or CSV (`.csv`, `.csv.gz`; DuckDB reads CSV with all_varchar, strata
takes the same file). Options: --recipe (default configs/did-2023-24-icb.toml), --strata (default
target/release/strata), --threads (DuckDB threads, default: all cores), --duckdb-version,
--json FILE (also write the figures and the verdict as JSON, e.g. for bench/ci_oracle.sh).
"""

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "target" / "duckdb-venv"

MODALITIES = [
    "xray", "ultrasound", "ct", "mri", "fluoroscopy", "nuclear_medicine", "pet", "spect",
    "medical_photography",
]
EDOC_MODALITY = {
    "brain_mri": "mri",
    "chest_xray": "xray",
    "chest_ct": "ct",
    "kidney_bladder_us": "ultrasound",
    "abdomen_pelvis_us": "ultrasound",
}

# The analyst's query. Codes are trimmed as strata trims them; exam codes compared ignoring case.
SQL = """
WITH
practice AS (
    SELECT trim(practice_code) AS practice_code, trim(area_code) AS area_code
    FROM read_csv('{practices}', all_varchar = true)),
non_english AS (
    SELECT DISTINCT trim(practice_code) AS practice_code
    FROM read_csv('{non_english}', all_varchar = true)),
lsoa AS (
    SELECT coalesce(l.lsoa11_code, i.lsoa11_code) AS lsoa11_code, l.area_code,
           TRY_CAST(i.imd_decile AS INTEGER) AS imd_decile
    FROM (SELECT trim(lsoa11_code) AS lsoa11_code, nullif(trim(area_code), '') AS area_code
          FROM read_csv('{lsoa}', all_varchar = true)) l
    FULL JOIN (SELECT trim(lsoa11_code) AS lsoa11_code, imd_decile
               FROM read_csv('{imd}', all_varchar = true)) i
    USING (lsoa11_code)),
exam_list AS (
    SELECT DISTINCT upper(trim(exam_code)) AS exam_code, trim(measure) AS measure
    FROM read_csv('{exam_codes}', all_varchar = true)),
edoc AS (SELECT * FROM (VALUES {edoc_values}) t(measure, modality)),
modalities AS (SELECT * FROM (VALUES {modality_values}) t(modality)),
records AS (
    SELECT nullif(trim(gp_practice_code), '') AS practice, nullif(trim(lsoa11), '') AS lsoa,
           trim(sex) AS sex, CAST(age AS BIGINT) AS age, trim(modality) AS modality,
           upper(trim(exam_code)) AS exam_code
    FROM {activity_scan}),
attributed AS (
    SELECT CASE WHEN p.area_code IS NOT NULL THEN p.area_code
                WHEN n.practice_code IS NOT NULL THEN NULL
                ELSE l.area_code END AS area_code,
           CASE WHEN l.imd_decile BETWEEN 1 AND 10 THEN (l.imd_decile + 1) // 2 END AS imd_quintile,
           r.sex, r.age, r.modality, r.exam_code
    FROM records r
    LEFT JOIN practice p ON p.practice_code = r.practice
    LEFT JOIN non_english n ON n.practice_code = r.practice
    LEFT JOIN lsoa l ON l.lsoa11_code = r.lsoa),
-- Exclusions, then aggregate before the exam-code join: far fewer rows than records.
strata AS (
    SELECT area_code, imd_quintile, sex,
           CASE WHEN age >= 90 THEN '90+' ELSE (age // 5 * 5) || '-' || (age // 5 * 5 + 4) END AS age_band,
           modality, exam_code, count(*) AS n
    FROM attributed
    WHERE area_code IS NOT NULL AND imd_quintile IS NOT NULL AND sex IN ('1', '2')
      AND age BETWEEN 0 AND 130
    GROUP BY ALL),
tests AS (
    SELECT measure, area_code, imd_quintile, sex, age_band, sum(n) AS t FROM (
        SELECT s.modality AS measure, s.* EXCLUDE (modality, exam_code)
        FROM strata s JOIN modalities m USING (modality)
        UNION ALL
        SELECT e.measure, s.* EXCLUDE (modality, exam_code)
        FROM strata s JOIN exam_list x USING (exam_code) JOIN edoc e
          ON e.measure = x.measure AND e.modality = s.modality)
    GROUP BY ALL),
population AS (
    SELECT trim(area_code) AS area_code, CAST(imd_quintile AS INTEGER) AS imd_quintile,
           trim(sex) AS sex, trim(age_band) AS age_band, CAST(population AS DOUBLE) AS population
    FROM read_csv('{population}', all_varchar = true)),
stratum_rate AS (
    SELECT t.measure, t.imd_quintile, t.sex, t.age_band,
           CASE WHEN coalesce(p.n, 0) > 0 THEN t.t / p.n ELSE 0 END AS rate
    FROM (SELECT measure, imd_quintile, sex, age_band, sum(t) AS t FROM tests GROUP BY ALL) t
    LEFT JOIN (SELECT imd_quintile, sex, age_band, sum(population) AS n FROM population GROUP BY ALL) p
    USING (imd_quintile, sex, age_band)),
expected AS (
    SELECT r.measure, p.area_code, sum(r.rate * p.population) AS expected
    FROM stratum_rate r JOIN population p USING (imd_quintile, sex, age_band)
    GROUP BY ALL),
observed AS (SELECT measure, area_code, sum(t) AS observed FROM tests GROUP BY ALL),
national AS (
    SELECT measure, sum(t) / (SELECT sum(population) FROM population) * 10000 AS rate
    FROM tests GROUP BY measure)
SELECT e.measure, e.area_code, coalesce(o.observed, 0) AS observed, e.expected,
       coalesce(o.observed, 0) / e.expected * n.rate AS standardised_rate, n.rate AS national_rate
FROM expected e JOIN national n USING (measure)
LEFT JOIN observed o USING (measure, area_code)
ORDER BY e.measure, e.area_code
"""


def duckdb_python(version):
    """The venv's python, with duckdb installed from PyPI on first use."""
    python = VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {VENV} and installing duckdb from PyPI ...", file=sys.stderr)
        venv.create(VENV, with_pip=True)
    probe = subprocess.run([python, "-c", "import duckdb"], capture_output=True)
    if probe.returncode != 0:
        spec = f"duckdb=={version}" if version else "duckdb"
        subprocess.run([python, "-m", "pip", "install", "--quiet", spec], check=True)
    return python


CHILD = r"""
import json, resource, sys, time
import duckdb
sql, threads = sys.argv[1], int(sys.argv[2])
start = time.perf_counter()
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
if threads > 0:
    con.execute(f"SET threads = {threads}")
rows = con.execute(sql).fetchall()
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_rss_mib": peak, "version": duckdb.__version__,
                  "rows": rows}))
"""


def run_duckdb(python, sql, threads):
    out = subprocess.run([python, "-c", CHILD, sql, str(threads)], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def activity_scan(path):
    """DuckDB's table function for the activity file: Parquet by magic number, else CSV."""
    with open(path, "rb") as f:
        parquet = f.read(4) == b"PAR1"
    quoted = str(path).replace("'", "''")
    if parquet:
        return f"read_parquet('{quoted}')", "parquet"
    # Every column as text (codes keep leading zeros); the query casts age to BIGINT itself.
    return f"read_csv('{quoted}', all_varchar = true, header = true)", "csv"


def recipe_inputs(recipe):
    with open(recipe, "rb") as f:
        inputs = tomllib.load(f)["inputs"]
    base = Path(recipe).resolve().parent
    return {k: (base / v).resolve() for k, v in inputs.items() if isinstance(v, str)}


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def close(a, b, rel=1e-6):
    if a != a and b != b:  # both NaN
        return True
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-9) or abs(a - b) < 1e-6


def run_strata(args, command, activity):
    """strata's stdout; if strata fails, say so (its stderr), write the verdict and exit 1."""
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode == 0:
        return done.stdout
    error = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
    print(f"records file       {activity}")
    print(f"strata failed      {' '.join(map(str, command[:2]))} exited {done.returncode}: {error}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"activity": str(activity), "strata_error": error, "differ": None}, f,
                      indent=1)
    sys.exit(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--activity", required=True)
    ap.add_argument("--population", required=True)
    ap.add_argument("--recipe", default=str(ROOT / "configs" / "did-2023-24-icb.toml"))
    ap.add_argument("--strata", default=str(ROOT / "target" / "release" / "strata"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="DuckDB threads (0: DuckDB's default)")
    ap.add_argument("--duckdb-version", default="")
    ap.add_argument("--json", default="", help="also write the figures and verdict here as JSON")
    args = ap.parse_args()

    inputs = recipe_inputs(args.recipe)
    activity, population = Path(args.activity).resolve(), Path(args.population).resolve()
    python = duckdb_python(args.duckdb_version)
    scan, activity_format = activity_scan(activity)

    # strata: the whole recipe end to end (stage table, medians), then one run for its numbers.
    common = ["--activity", str(activity), "--population", str(population)]
    bench = run_strata(args, [args.strata, "bench", args.recipe, *common, "--runs", str(args.runs)],
                       activity)
    total = next(line.split() for line in bench.splitlines() if line.startswith("total"))
    strata_total = float(total[1])
    # strata's own whole-process peak (bench's total row): strata resets the kernel's high-water
    # mark for each stage's window, so the child's ru_maxrss is only the last window's.
    try:
        strata_peak = float(total[3])
    except (IndexError, ValueError):
        strata_peak = float("nan")
    with tempfile.TemporaryDirectory() as out:
        run_strata(args, [args.strata, "run", args.recipe, *common, "--out", out], activity)
        national = {r["measure"]: float(r["rate"]) for r in read_csv(Path(out, "national_rates.csv"))}
        areas = {(r["measure"], r["area_code"]): float(r["standardised_rate"] or "nan")
                 for r in read_csv(Path(out, "area_rates.csv"))}

    sql = SQL.format(
        practices=inputs["practices"], non_english=inputs["non_english_practices"],
        lsoa=inputs["lsoa"], imd=inputs["imd"], exam_codes=inputs["exam_codes"],
        activity_scan=scan, population=population,
        edoc_values=", ".join(f"('{m}', '{k}')" for m, k in EDOC_MODALITY.items()),
        modality_values=", ".join(f"('{m}')" for m in MODALITIES))
    runs = [run_duckdb(python, sql, args.threads) for _ in range(args.runs)]
    duck_seconds = statistics.median(r["seconds"] for r in runs)
    duck_peak = max(r["peak_rss_mib"] for r in runs)

    # Same numbers?
    rows = runs[0]["rows"]
    problems = []
    duck_national = {}
    for measure, area, _observed, _expected, rate, national_rate in rows:
        duck_national[measure] = national_rate
        ours = areas.get((measure, area))
        if ours is None or not close(ours, rate if rate is not None else float("nan")):
            problems.append(f"{measure} {area}: strata {ours} duckdb {rate}")
    for measure, rate in duck_national.items():
        if not close(national.get(measure, float("nan")), rate):
            problems.append(f"national {measure}: strata {national.get(measure)} duckdb {rate}")
    missing = set(areas) - {(m, a) for m, a, *_ in rows}
    problems += [f"{m} {a}: no DuckDB row" for m, a in sorted(missing)]

    print(bench.rstrip())
    print()
    print(f"records file       {activity} ({activity.stat().st_size / 1e6:.1f} MB)")
    print(f"strata end to end  {strata_total:.3f} s median of {args.runs}, "
          f"peak RSS {strata_peak:.0f} MiB (whole recipe: all tables, data quality, disclosure)")
    each = ", ".join(f"{r['seconds']:.3f}" for r in runs)
    print(f"DuckDB {runs[0]['version']:<10}  {duck_seconds:.3f} s median of {args.runs} "
          f"({each}), peak RSS {duck_peak:.0f} MiB "
          f"(core work: attribution, exclusions, strata, expected, rates)")
    print(f"ratio              DuckDB / strata = {duck_seconds / strata_total:.2f}"
          f" (above 1: strata faster)")
    print(f"agreement          {len(rows)} area x measure rates and {len(duck_national)} national "
          f"rates compared at 1e-6 relative: "
          + ("all agree" if not problems else f"{len(problems)} differ"))
    for p in problems[:20]:
        print("  " + p)
    if args.json:
        strata_records = next((int(line.split()[1]) for line in bench.splitlines()
                               if line.startswith("read_and_count")), None)
        records = run_duckdb(python, f"SELECT count(*) FROM {scan}", args.threads)["rows"][0][0]
        with open(args.json, "w") as f:
            json.dump({
                "activity": str(activity), "format": activity_format,
                "bytes": activity.stat().st_size, "records": records,
                "strata_read_and_count_rows": strata_records,
                "strata_seconds": strata_total, "strata_peak_mib": strata_peak,
                "duckdb_version": runs[0]["version"], "duckdb_seconds": duck_seconds,
                "duckdb_peak_mib": duck_peak, "ratio": duck_seconds / strata_total,
                "rates_compared": len(rows), "national_compared": len(duck_national),
                "differ": len(problems), "problems": problems[:100],
            }, f, indent=1)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
