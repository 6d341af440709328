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

# --- Primary Care Networks (2023-24/pcn/) -------------------------------------------------------
# A practice's PCN is the NHS Digital practice map of July 2022 (PCN_CODE, PCN_NAME); its sub-ICB
# and list size are the Apr 2023 list's (practice_area.csv), as at every other level. Practices in
# no PCN (PCN_CODE "U", "Unallocated") and practices of the Apr 2023 list absent from the July 2022
# map are neither dropped nor guessed into a PCN: each sub-ICB's such practices form one area of
# their own, "<sub-ICB code>-NOPCN", so every practice is in exactly one PCN-level area and the
# level still sums to its sub-ICBs. A PCN whose practices lie in more than one sub-ICB takes as its
# parent the sub-ICB holding the largest part of its practices' Jan 2021 list size (ties: more
# practices, then the lower code); such PCNs are listed in pcn/spanning_pcns.csv.
pcn_map = {r["PRACTICE_CODE"]: r for r in read(os.path.join(SRC, "gp_registration/gp_reg_pat_prac_map_jul2022_with_icb22.csv"))}
pcn_name = {}
pcn_members = {}
practice_pcn = []
unallocated, unmapped = [], []
for p in practices:
    row = pcn_map.get(p["practice_code"])
    if row is None:
        unmapped.append(p["practice_code"])
        code = p["sicbl_code"] + "-NOPCN"
    elif row["PCN_CODE"] in ("", "U"):
        unallocated.append(p["practice_code"])
        code = p["sicbl_code"] + "-NOPCN"
    else:
        code = row["PCN_CODE"]
        pcn_name[code] = row["PCN_NAME"]
    if code.endswith("-NOPCN"):
        pcn_name[code] = "Practices in no PCN (July 2022 map), " + sicbl_name[p["sicbl_code"]]
    pcn_members.setdefault(code, []).append(p)
    practice_pcn.append([p["practice_code"], code])
pcn_rows, spanning = [], []
for code, members in sorted(pcn_members.items()):
    weight = {}
    for p in members:
        w = weight.setdefault(p["sicbl_code"], [0, 0])
        w[0] += int(p["list_size_jan2021"] or 0)
        w[1] += 1
    parent = sorted(weight, key=lambda s: (-weight[s][0], -weight[s][1], s))[0]
    if len(weight) > 1:
        spanning.append([code, pcn_name[code], parent, ";".join(f"{s}:{weight[s][1]}:{weight[s][0]}" for s in sorted(weight))])
    pcn_rows.append([code, pcn_name[code], parent, sicbl_name[parent]])
write(os.path.join(YEAR, "pcn", "areas.csv"), ["area_code", "area_name", "parent_code", "parent_name"], pcn_rows)
write(os.path.join(YEAR, "pcn", "practice_area.csv"), ["practice_code", "area_code"], practice_pcn)
# sub-ICB:practices:list size of each sub-ICB a spanning PCN's practices are in.
write(os.path.join(YEAR, "pcn", "spanning_pcns.csv"), ["area_code", "area_name", "parent_code", "sicbl_practices_list_size"], spanning)
# An LSOA names no PCN: a record without a known practice has no PCN-level area (as for practices).
write(os.path.join(YEAR, "pcn", "lsoa11_area.csv.gz"), ["lsoa11_code", "area_code"], [[l["lsoa11_code"], ""] for l in lsoas])
print(len(pcn_rows), "PCN-level areas,", sum(1 for c in pcn_members if c.endswith("-NOPCN")), "of them no-PCN groups;",
      len(unallocated), "practices unallocated in the July 2022 map,", len(unmapped), "absent from it;",
      len(spanning), "PCNs span sub-ICBs")

# --- NHS England commissioning regions (2023-24/region/) ----------------------------------------
region_of = {r["Sub ICB Location ODS Code"]: (r["Region Code"], r["Region Name"]) for r in sicbls}
regions = sorted(set(region_of.values()))
assert len(regions) == 7, regions
write(os.path.join(YEAR, "region", "areas.csv"), ["area_code", "area_name", "parent_code", "parent_name"],
      [[code, name, "E92000001", "England"] for code, name in regions])
write(os.path.join(YEAR, "region", "practice_area.csv"), ["practice_code", "area_code"],
      [[p["practice_code"], region_of[p["sicbl_code"]][0]] for p in practices])
write(os.path.join(YEAR, "region", "lsoa11_area.csv.gz"), ["lsoa11_code", "area_code"],
      [[l["lsoa11_code"], region_of[l["sicbl_code"]][0]] for l in lsoas])
print(len(regions), "regions")
