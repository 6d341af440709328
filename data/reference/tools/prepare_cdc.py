"""Reference data of the CDC share recipe (seed 004, `configs/cdc-share-2024.toml`), standard library only.

Run from data/reference: `python3 tools/prepare_cdc.py /work/shared/data`. Writes
- cdc-2024/cdc_sites.csv: NHS England's approved CDC site list (Nov 2025, the shared tidy copy) row for row,
  with two columns added: `region_code` (the NHS England region's ODS code for the list's region abbreviation)
  and `icb_code` (the ICB's ODS code, matched on its name against 2023-24/areas.csv). Duplicate site codes are
  kept as they are (J2H6R names two CDCs): the engine reports them.
- cdc-2024/provider_icbs.csv: each trust of backlog-2020/provider_regions.csv with the ICB holding the largest
  part of its catchment (2023-24/trust_catchment.csv), for DM01 activity by ICB.
"""

import csv
import re
import sys
from pathlib import Path

REGIONS = {
    "London": ("Y56", "London"),
    "SW": ("Y58", "South West"),
    "SE": ("Y59", "South East"),
    "Midlands": ("Y60", "Midlands"),
    "EoE": ("Y61", "East of England"),
    "NW": ("Y62", "North West"),
    "NE&Y": ("Y63", "North East and Yorkshire"),
}

# The list's spellings that are not the ICB's name (abbreviated, or a typo in the source list).
ALIASES = {
    "Bedford, Luton and Milton Keynes ICB": "NHS Bedfordshire, Luton and Milton Keynes ICB",
    "Herts and West Essex ICB": "NHS Hertfordshire and West Essex ICB",
    "Bristol, North Somerset, East Gloucestershire ICB": "NHS Bristol, North Somerset and South Gloucestershire ICB",
}


def norm(name):
    s = name.lower().replace("&", " and ")
    s = re.sub(r"\bnhs\b|\bicb\b", "", s)
    return re.sub(r"[^a-z]", "", s)


def read(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def write(path, header, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def main(shared):
    here = Path(__file__).resolve().parent.parent
    areas = read(here / "2023-24/areas.csv")
    by_name = {norm(a["area_name"]): a for a in areas}
    sites = read(Path(shared) / "did_related/cdc_approved_sites_nov2025_tidy.csv")
    header = list(sites[0].keys()) + ["region_code", "icb_code"]
    rows = []
    for s in sites:
        icb = by_name[norm(ALIASES.get(s["icb"], s["icb"]))]
        rows.append([s[k] for k in sites[0].keys()] + [REGIONS[s["region"]][0], icb["area_code"]])
    write(here / "cdc-2024/cdc_sites.csv", header, rows)

    names = {a["area_code"]: a["area_name"] for a in areas}
    best = {}
    for r in read(here / "2023-24/trust_catchment.csv"):
        p, v = r["provider_code"], float(r["proportion"])
        if p not in best or v > best[p][1]:
            best[p] = (r["area_code"], v)
    out = []
    for p in read(here / "backlog-2020/provider_regions.csv"):
        icb = best[p["provider_code"]][0]
        out.append([p["provider_code"], icb, names[icb]])
    write(here / "cdc-2024/provider_icbs.csv", ["provider_code", "icb_code", "icb_name"], sorted(out))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data")
