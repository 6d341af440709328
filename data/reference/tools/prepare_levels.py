#!/usr/bin/env python3
"""Geography levels below the ICB for 2023/24: sub-ICB locations and GP practices, each area with
its parent (see ../PROVENANCE.md, "2023-24/sicbl/ and 2023-24/practice/").

Reads the 2023-24 tables prepare_reference.py wrote (practice -> sub-ICB -> ICB, LSOA -> sub-ICB)
and two shared source files for names: the NHS England Sub-ICB -> ICB list (July 2022) and ODS
epraccur (Apr 2023). Python standard library only.
Usage: python3 prepare_levels.py /work/shared/data
"""
import csv, gzip, os, sys

SRC = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data"
REF = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
YEAR = os.path.join(REF, "2023-24")


def read(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def write(path, header, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    opener = (lambda p: gzip.GzipFile(p, "wb", mtime=0)) if path.endswith(".gz") else (lambda p: open(p, "wb"))
    with opener(path) as raw:
        text = "".join(",".join(csv_field(v) for v in row) + "\n" for row in [header] + rows)
        raw.write(text.encode("utf-8"))


def csv_field(v):
    v = str(v)
    return '"' + v.replace('"', '""') + '"' if any(c in v for c in ',"\n') else v


icbs = {r["area_code"]: r["area_name"] for r in read(os.path.join(YEAR, "areas.csv"))}
sicbls = read(os.path.join(SRC, "gp_registration/sicbl22_to_icb22_july2022.csv"))
sicbl_rows = []
sicbl_name = {}
for r in sicbls:
    code, icb = r["Sub ICB Location ODS Code"], r["ICB Code"]
    assert icb in icbs, icb
    # "NHS BATH AND ... ICB - 92G": the publisher's capitals kept, as printed.
    sicbl_name[code] = r["Sub ICB Location Name"]
    sicbl_rows.append([code, r["Sub ICB Location Name"], icb, icbs[icb]])
sicbl_rows.sort()
assert len(sicbl_rows) == 106

practices = read(os.path.join(YEAR, "practice_area.csv"))
names = {r["OrgCode"]: r["Name"] for r in read(os.path.join(SRC, "gp_registration/epraccur_apr2023.csv"))}
for p in practices:
    assert p["sicbl_code"] in sicbl_name, p
    assert icbs and p["area_code"] == next(r[2] for r in sicbl_rows if r[0] == p["sicbl_code"]), p

write(os.path.join(YEAR, "sicbl", "areas.csv"), ["area_code", "area_name", "parent_code", "parent_name"], sicbl_rows)
write(
    os.path.join(YEAR, "sicbl", "practice_area.csv"),
    ["practice_code", "area_code"],
    [[p["practice_code"], p["sicbl_code"]] for p in practices],
)
lsoas = read(os.path.join(YEAR, "lsoa11_area.csv.gz"))
write(
    os.path.join(YEAR, "sicbl", "lsoa11_area.csv.gz"),
    ["lsoa11_code", "area_code"],
    [[l["lsoa11_code"], l["sicbl_code"]] for l in lsoas],
)

write(
    os.path.join(YEAR, "practice", "areas.csv"),
    ["area_code", "area_name", "parent_code", "parent_name"],
    [[p["practice_code"], names[p["practice_code"]], p["sicbl_code"], sicbl_name[p["sicbl_code"]]] for p in practices],
)
write(
    os.path.join(YEAR, "practice", "practice_area.csv"),
    ["practice_code", "area_code"],
    [[p["practice_code"], p["practice_code"]] for p in practices],
)
# An LSOA names no practice: a record without a known practice has no practice-level area.
write(
    os.path.join(YEAR, "practice", "lsoa11_area.csv.gz"),
    ["lsoa11_code", "area_code"],
    [[l["lsoa11_code"], ""] for l in lsoas],
)
print(len(sicbl_rows), "sub-ICB locations,", len(practices), "practices")
