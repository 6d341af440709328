"""Registers record-level files as tables of a running Spark Connect server, for
`strata run --spark` (tests/tests/it/spark_connect.rs).

    python spark_tables.py sc://HOST:PORT NAME=FILE.parquet | NAME=SOURCE:DIR | NAME=SOURCE~COLUMN ...

NAME=FILE.parquet: a table over the Parquet file, as Spark reads it. NAME=SOURCE:DIR: Spark
rewrites table SOURCE (named before) as one CSV file in DIR in a hashed row order (an input form
strata did not write) and NAME is a table over it, its column types found by Spark's CSV
inference. NAME=SOURCE~COLUMN: a copy of table SOURCE with COLUMN as a TIMESTAMP (an instant,
Spark's time-zone-aware type), each instant the UTC reading of the source's wall-clock value.
Tables live in the server's catalog, so another session (strata's) sees them.
"""
import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F


def quoted(text):
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def main():
    url, *specs = sys.argv[1:]
    spark = SparkSession.builder.remote(url).getOrCreate()
    # This session only: wall-clock values become instants read in UTC.
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    for spec in specs:
        name, target = spec.split("=", 1)
        spark.sql(f"DROP TABLE IF EXISTS {name}")
        if "~" in target:
            source, column = target.split("~", 1)
            copy = spark.table(source).withColumn(column, F.col(column).cast("timestamp"))
            copy.write.format("parquet").saveAsTable(name)
            print(f"{name}: {copy.count()} rows ({column} {spark.table(name).schema[column].dataType.simpleString()})")
            continue
        if ":" in target and not target.endswith(".parquet"):
            source, out = target.split(":", 1)
            ordered = spark.table(source).orderBy(F.hash(*spark.table(source).columns))
            ordered.coalesce(1).write.mode("overwrite").option("header", True).csv(out)
            using = f"csv OPTIONS (header 'true', inferSchema 'true', path {quoted(out)})"
        else:
            using = f"parquet OPTIONS (path {quoted(target)})"
        spark.sql(f"CREATE TABLE {name} USING {using}")
        types = ", ".join(f"{f.name} {f.dataType.simpleString()}" for f in spark.table(name).schema)
        rows = spark.table(name).count()
        print(f"{name}: {rows} rows ({types})")
    spark.stop()


if __name__ == "__main__":
    main()
