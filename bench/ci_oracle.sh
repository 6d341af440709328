#!/usr/bin/env bash
# The independent oracle, for CI after `cargo build --release -p strata`:
#
#   (a) strata writes the synthetic 2023/24 year (target/oracle/full, kept between runs);
#   (b) DuckDB rewrites the same records in submission order (ORDER BY test_date, provider_code,
#       hash(lsoa11, age, exam_code)) with its default writer settings, as Parquet and as CSV;
#   (c) bench/duckdb_compare.py runs strata and an analyst's DuckDB SQL on each of the three forms
#       and compares every area standardised rate and national rate (relative 1e-6).
#
# Exits 1 if strata fails on a form or any rate differs; ends with a table of timings and memory.
#
#   bench/ci_oracle.sh                                     # full scale, target/release/strata
#   ORACLE_SCALE=0.01 STRATA=target/debug/strata bench/ci_oracle.sh   # quick, own directory
#
# Environment: STRATA (binary, default target/release/strata), ORACLE_SCALE (default 1),
# ORACLE_DIR (default target/oracle/full at scale 1, else target/oracle/scale-<scale>),
# ORACLE_RECIPE (default configs/did-2023-24-icb.toml), ORACLE_RUNS (default 1), ORACLE_CLEAN (1:
# remove the record files once compared), ORACLE_CSV (auto, the default: gzip only when the disk is
# short; plain; gzip).
# DuckDB comes from PyPI into target/duckdb-venv, by duckdb_compare.py's own mechanism.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
STRATA=${STRATA:-target/release/strata}
SCALE=${ORACLE_SCALE:-1}
RECIPE=${ORACLE_RECIPE:-configs/did-2023-24-icb.toml}
RUNS=${ORACLE_RUNS:-1}
if [[ -z ${ORACLE_DIR:-} ]]; then
    if [[ $SCALE == 1 ]]; then ORACLE_DIR=target/oracle/full; else ORACLE_DIR=target/oracle/scale-$SCALE; fi
fi
OUT=$ORACLE_DIR

[[ -x $STRATA ]] || { echo "ci_oracle: no strata binary at $STRATA (cargo build --release -p strata)" >&2; exit 1; }
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "ci_oracle: needs python3 >= 3.11 (tomllib)" >&2; exit 1; }
mkdir -p "$OUT"

# (a) The synthetic year, unless this scale is already there.
stamp="$OUT/.synth-scale"
if [[ -f $OUT/activity.parquet && -f $OUT/population.csv && -f $stamp && $(cat "$stamp") == "$SCALE" ]]; then
    echo "== synthetic year: reusing $OUT (scale $SCALE)"
else
    echo "== synthetic year: $STRATA synth $RECIPE --scale $SCALE --out $OUT"
    rm -f "$stamp" "$OUT"/submission-order.*
    "$STRATA" synth "$RECIPE" --scale "$SCALE" --out "$OUT"
    echo "$SCALE" > "$stamp"
fi

# (b) DuckDB's submission-order copies (rewritten when older than the source). The CSV is written
# gzip-compressed (`submission-order.csv.gz`, read by both sides as such) when the disk cannot hold
# it plain with 2 GiB to spare: a full-scale plain CSV is about 4 GB, and CI's disk has run out
# there. DuckDB measures the CSV's size on a 200,000-record sample first and says which it chose.
PY=$(python3 -c 'import sys; sys.path.insert(0, "bench"); import duckdb_compare as d; print(d.duckdb_python(""))')
# The CSV copy this directory holds, plain or gzip-compressed (empty when none).
csv_form() {
    local f
    for f in "$OUT"/submission-order.csv "$OUT"/submission-order.csv.gz; do
        if [[ -f $f ]]; then echo "$f"; return; fi
    done
}
for ext in parquet csv; do
    target="$OUT/submission-order.$ext"
    if [[ $ext == csv ]]; then existing=$(csv_form); else existing=$target; fi
    if [[ -n $existing && -f $existing && $existing -nt $OUT/activity.parquet ]]; then
        echo "== submission order: reusing $existing"
        continue
    fi
    echo "== submission order: DuckDB writes $target"
    rm -f "$OUT/submission-order.$ext" "$OUT/submission-order.$ext.gz"
    "$PY" - "$OUT/activity.parquet" "$target" "$ext" "${ORACLE_CSV:-auto}" <<'EOF'
import os, shutil, sys, time
import duckdb
source, target, ext, csv_mode = sys.argv[1:]
q = lambda p: p.replace("'", "''")
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
start = time.perf_counter()
if ext == "parquet":
    con.execute(f"""COPY (SELECT * FROM read_parquet('{q(source)}')
                         ORDER BY test_date, provider_code, hash(lsoa11, age, exam_code))
                    TO '{q(target)}.part' (FORMAT parquet)""")
else:
    # The CSV from the sorted Parquet, in its order (DuckDB keeps insertion order): one sort.
    sorted_parquet = target.removesuffix(".csv") + ".parquet"
    records = con.execute(f"SELECT count(*) FROM read_parquet('{q(sorted_parquet)}')").fetchone()[0]
    sample = f"{target}.sample"
    con.execute(f"""COPY (SELECT * FROM read_parquet('{q(sorted_parquet)}') LIMIT 200000)
                    TO '{q(sample)}' (FORMAT csv, HEADER)""")
    estimate = os.path.getsize(sample) / max(min(records, 200000), 1) * records
    os.remove(sample)
    free = shutil.disk_usage(os.path.dirname(os.path.abspath(target))).free
    compress = csv_mode == "gzip" or (csv_mode == "auto" and free < estimate + 2 * 2**30)
    if compress:
        target += ".gz"
    print(f"   disk: {free / 2**30:.1f} GiB free, the plain CSV would take ~{estimate / 2**30:.1f} GiB:"
          f" writing {'gzip-compressed ' if compress else ''}{os.path.basename(target)}")
    options = "FORMAT csv, HEADER" + (", COMPRESSION gzip" if compress else "")
    con.execute(f"""COPY (SELECT * FROM read_parquet('{q(sorted_parquet)}'))
                    TO '{q(target)}.part' ({options})""")
os.replace(f"{target}.part", target)
print(f"   {time.perf_counter() - start:.1f} s, DuckDB {duckdb.__version__}")
EOF
done

# (c) strata against DuckDB on each form.
forms=(activity.parquet submission-order.parquet "$(basename "$(csv_form)")")
status=0
for form in "${forms[@]}"; do
    echo
    echo "== $form: bench/duckdb_compare.py --runs $RUNS"
    if ! python3 bench/duckdb_compare.py --strata "$STRATA" --recipe "$RECIPE" --runs "$RUNS" \
            --activity "$OUT/$form" --population "$OUT/population.csv" \
            --json "$OUT/compare-$form.json"; then
        status=1
    fi
done

echo
python3 - "$OUT" "${forms[@]}" <<'EOF'
import json, math, sys
out, forms = sys.argv[1], sys.argv[2:]
def num(v, fmt):
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)
rows = [("form", "records", "strata s", "strata MiB", "DuckDB s", "DuckDB MiB", "ratio", "rates")]
for form in forms:
    try:
        with open(f"{out}/compare-{form}.json") as f:
            r = json.load(f)
    except (OSError, ValueError):
        rows.append((form, *["-"] * 6, "no result"))
        continue
    if r.get("strata_error"):
        verdict = "strata failed"
    elif r["differ"]:
        verdict = f"{r['differ']} of {r['rates_compared'] + r['national_compared']} DIFFER"
    else:
        verdict = f"all {r['rates_compared'] + r['national_compared']} agree"
    rows.append((form, num(r.get("records"), ","), num(r.get("strata_seconds"), ".2f"),
                 num(r.get("strata_peak_mib"), ".0f"), num(r.get("duckdb_seconds"), ".2f"),
                 num(r.get("duckdb_peak_mib"), ".0f"), num(r.get("ratio"), ".2f"), verdict))
widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
for row in rows:
    print("  ".join(c.ljust(w) if i in (0, 7) else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
print("ratio = DuckDB s / strata s (above 1: strata faster)")
EOF
if [[ $status -ne 0 ]]; then
    echo "ci_oracle: FAILED (strata failed on a form or disagrees with DuckDB; see above)" >&2
else
    echo "ci_oracle: strata agrees with DuckDB on every form"
fi
# ORACLE_CLEAN=1 (CI): once compared, remove the record files this script wrote (several GB at full
# scale), so the build steps after it have the disk; the comparison JSON and the population stay.
if [[ ${ORACLE_CLEAN:-0} == 1 ]]; then
    rm -f "$OUT"/submission-order.parquet "$OUT"/submission-order.csv "$OUT"/submission-order.csv.gz \
          "$OUT"/activity.parquet "$stamp"
    echo "ci_oracle: removed the oracle's record files in $OUT (ORACLE_CLEAN=1)"
fi
exit $status
