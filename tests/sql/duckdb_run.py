"""Runs `strata sql --dialect duckdb` parts on a record-level file with DuckDB and writes the
counts and the data-quality cube as CSV, for `strata run --counts ... --quality ...`.

    python duckdb_run.py SETUP.sql COUNTS.sql QUALITY.sql INPUT OUT_DIR [--shuffle-csv FILE]

INPUT is Parquet or CSV (read by DuckDB's own readers with their type detection). With
--shuffle-csv, DuckDB first rewrites INPUT as CSV in a hashed row order to FILE and counts that
file instead: an input form strata did not write.
"""
import sys
from pathlib import Path

import duckdb


def reader(path):
    quoted = "'" + str(path).replace("'", "''") + "'"
    if str(path).endswith(".parquet"):  # else CSV, gzip-compressed or not (by its name)
        return f"read_parquet({quoted})"
    return f"read_csv({quoted})"


def main():
    setup, counts, quality, source, out = sys.argv[1:6]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    if len(sys.argv) > 6 and sys.argv[6] == "--shuffle-csv":
        shuffled = sys.argv[7]
        con.execute(
            f"COPY (SELECT * FROM {reader(source)} ORDER BY hash(lsoa11, age, exam_code, test_date, "
            f"provider_code, gp_practice_code, sex, modality)) TO '{shuffled}' (HEADER, DELIMITER ',')"
        )
        source = shuffled
    con.execute(f"CREATE VIEW activity AS SELECT * FROM {reader(source)}")
    con.execute(Path(setup).read_text())
    for name, path in [("counts", counts), ("quality", quality)]:
        query = Path(path).read_text().strip().rstrip(";")
        con.sql(query).write_csv(str(out / f"{name}.csv"))


if __name__ == "__main__":
    main()
