#!/usr/bin/env python3
"""Rebuild data/reference/ from the shared source copies (see ../PROVENANCE.md).

One-off tidy step: selects columns, renames them to short lower_snake names, joins codes, and gzips
tables over ~1 MB. Uses only the Python standard library (csv, gzip, json).
Usage: python3 prepare_reference.py /work/shared/data  (writes next to this script's parent folder)
"""
import csv, gzip, json, sys, collections, os

SRC = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
AGE_BANDS = [f"{a}-{a+4}" for a in range(0, 90, 5)] + ["90+"]


def read(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(os.path.join(SRC, path), "rt", encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def write(rel, header, rows):
    path = os.path.join(OUT, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    opener = (lambda p: gzip.open(p, "wt", encoding="utf-8", newline="", compresslevel=9)) if rel.endswith(".gz") \
        else (lambda p: open(p, "w", encoding="utf-8", newline=""))
    with opener(path) as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    print(rel, len(rows))


def band_of_age(age):
    return "90+" if age >= 90 else AGE_BANDS[age // 5]


master = read("geography/lsoa11_master_imd2015_ccg20_ccg21_icb22.csv.gz")
lsoa_pop5 = {r["lsoa11_code"]: r for r in read("imd/lsoa11_population_mid2020_5yr_persons.csv")}
pop_cols = [f"age_{a}_{a+4}" for a in range(0, 90, 5)] + ["age_90_plus"]

# ---------------- common ----------------
write("common/lsoa11_imd2015.csv.gz", ["lsoa11_code", "imd_decile", "imd_quintile"],
      sorted((r["lsoa11_code"], r["imd2015_decile"], r["imd2015_quintile"]) for r in master))
write("common/lsoa11_population_mid2020.csv.gz", ["lsoa11_code"] + [b for b in AGE_BANDS],
      sorted([code] + [r[c] for c in pop_cols] for code, r in lsoa_pop5.items()))

sexage = collections.defaultdict(lambda: {"MALE": 0, "FEMALE": 0})
for r in read("gp_registration/england_registered_by_sex_single_age_aug2026.csv"):
    if r["age"] == "ALL" or r["sex"] == "ALL":
        continue
    age = 95 if r["age"] == "95+" else int(r["age"])
    sexage[band_of_age(age)][r["sex"]] += int(r["number_of_patients"])
write("common/registered_sex_ratio_by_age.csv", ["age_band", "male", "female", "male_share"],
      [(b, sexage[b]["MALE"], sexage[b]["FEMALE"],
        f'{sexage[b]["MALE"] / (sexage[b]["MALE"] + sexage[b]["FEMALE"]):.6f}') for b in AGE_BANDS])

# Trust names (ODS) plus the independent-sector providers named in the publications' Annex A.
trusts = read("providers/nhs_trusts22_points.csv")
trust_names = {t["nhs_trust22_code"]: t["nhs_trust22_name"] for t in trusts}
independent = {
    "2020-21": {"NT9": "Alliance Medical", "NTP": "Practice Plus Group", "NT4": "BMI Healthcare",
                "NT2": "Nuffield Health", "AC7": "Cobalt Health", "NFO": "Kleyen Healthcare",
                "NYR": "Healthshare Diagnostics"},
    "2023-24": {"NT9": "Alliance Medical", "NTP": "Practice Plus Group", "NT4": "Circle Health Group Limited",
                "NT2": "Nuffield Health", "AC7": "Cobalt Health", "NFO": "Kley Healthcare",
                "NYR": "Healthshare Diagnostics"},
}
# Trust names exactly as printed in each year's Annex A (where they differ from the ODS spelling).
printed = {
    "2020-21": {"RVV": "East Kent Hospitals University NHS Foundation Trust",
                "RWP": "Worcestershire Acute Hospitals NHS Trust",
                "RTD": "The Newcastle Upon Tyne Hospitals NHS Foundation Trust",
                "RN5": "Hampshire Hospitals NHS Foundation Trust", "RMC": "Bolton NHS Foundation Trust",
                "RQ3": "Birmingham Women's & Children's NHS Foundation Trust",
                "REM": "Liverpool University Hospitals NHS Foundation Trust",
                "RTP": "Surrey and Sussex Healthcare NHS Trust",
                "RQM": "Chelsea and Westminster Hospital NHS Foundation Trust",
                "RDE": "East Suffolk and North Essex NHS Foundation Trust"},
    "2023-24": {"RM3": "Northern Care Alliance NHS Foundation Trust",
                "REM": "Liverpool University Hospitals NHS Foundation Trust",
                "RWF": "Maidstone and Tunbridge Wells NHS Trust",
                "RCX": "The Queen Elizabeth Hospital King's Lynn NHS Foundation Trust",
                "RVV": "East Kent Hospitals University NHS Foundation Trust",
                "RN5": "Hampshire Hospitals NHS Foundation Trust",
                "RJ1": "Guy's and St Thomas' NHS Foundation Trust",
                "RGP": "James Paget University Hospitals NHS Foundation Trust",
                "RCB": "York and Scarborough Teaching Hospitals NHS Foundation Trust",
                "RJ2": "Lewisham and Greenwich NHS Trust",
                "RQ3": "Birmingham Women's and Children's NHS Foundation Trust",
                "RJZ": "King's College Hospital NHS Foundation Trust",
                "RXQ": "Buckinghamshire Healthcare NHS Trust"},
}
for year in ("2020-21", "2023-24"):
    rows = []
    for t in trusts:
        code = t["nhs_trust22_code"]
        name = printed[year].get(code, t["nhs_trust22_name"])
        rows.append((code, name, "nhs_trust", t["status"]))
    for code, name in independent[year].items():
        rows.append((code, name, "independent_sector", "open"))
    write(f"{year}/providers.csv", ["provider_code", "provider_name", "provider_type", "status"], sorted(rows))

# ---------------- epraccur: non-English practices ----------------
epraccur = read("gp_registration/epraccur_apr2023.csv")


def open_during(r, start, end):
    return r["OpenDate"] <= end and (r["CloseDate"] == "" or r["CloseDate"] >= start)


def non_english(start, end):
    rows = []
    for r in epraccur:
        if not open_during(r, start, end):
            continue
        if r["PrescrSet"] == "4" and r["Commissioner"].startswith("7A"):
            rows.append((r["OrgCode"], r["Name"], "wales", r["Commissioner"]))
        elif r["PrescrSet"] != "4" and any(w in f' {r["Name"]} ' for w in (" HMP ", " HMYOI ", " PRISON ", " YOI ")):
            rows.append((r["OrgCode"], r["Name"], "prison", r["Commissioner"]))
    return sorted(set(rows))


# ---------------- 2020/21: CCG20 ----------------
ccg_names = read("geography/ccg20_names_codes_april2020.csv")
ccg_e38_to_ods = {r["CCG20CD"]: r["CCG20CDH"] for r in ccg_names}
write("2020-21/areas.csv", ["area_code", "area_name", "ons_code"],
      sorted((r["CCG20CDH"], r["CCG20NM"], r["CCG20CD"]) for r in ccg_names))
write("2020-21/lsoa11_area.csv.gz", ["lsoa11_code", "area_code"],
      sorted((r["lsoa11_code"], r["ccg20_code_h"]) for r in master))
list_sizes = {r["CODE"]: r["NUMBER_OF_PATIENTS"] for r in read("gp_registration/gp_reg_pat_prac_all_jan2021.csv")}
pmap = read("gp_registration/gp_reg_pat_prac_map_sep2020.csv")
write("2020-21/practice_area.csv", ["practice_code", "area_code", "list_size"],
      sorted((r["PRACTICE_CODE"], r["CCG_CODE"], list_sizes.get(r["PRACTICE_CODE"], "")) for r in pmap))
write("2020-21/non_english_practices.csv", ["practice_code", "practice_name", "reason", "commissioner"],
      non_english("20200401", "20210331"))

# ---------------- 2023/24: SICBL22 -> ICB ----------------
icb_names = {}
for r in master:
    icb_names[r["icb22_code_h"]] = (r["icb22_name"], r["icb22_code"])
sicbl = read("gp_registration/sicbl22_to_icb22_july2022.csv")
sicbl_to_icb = {r["Sub ICB Location ODS Code"]: r["ICB Code"] for r in sicbl}
write("2023-24/areas.csv", ["area_code", "area_name", "ons_code"],
      sorted((code, name.replace("Integrated Care Board", "ICB"), e54) for code, (name, e54) in icb_names.items()))
lsoa_sicbl = read("geography/lsoa11_sicbl22_icb22_lad22_july2022.csv.gz")
write("2023-24/lsoa11_area.csv.gz", ["lsoa11_code", "sicbl_code", "area_code"],
      sorted((r["lsoa11_code"], r["sicbl22_code_h"], r["icb22_code_h"]) for r in lsoa_sicbl))
prac23 = []
for r in epraccur:
    if r["PrescrSet"] == "4" and r["StatusCode"] == "A" and r["Commissioner"] in sicbl_to_icb:
        prac23.append((r["OrgCode"], r["Commissioner"], sicbl_to_icb[r["Commissioner"]], list_sizes.get(r["OrgCode"], "")))
write("2023-24/practice_area.csv", ["practice_code", "sicbl_code", "area_code", "list_size_jan2021"], sorted(prac23))
write("2023-24/non_english_practices.csv", ["practice_code", "practice_name", "reason", "commissioner"],
      non_english("20230401", "20240331"))

# ---------------- population structure (resident persons, mid-2020) ----------------
for year, key in (("2020-21", "ccg20_code_h"), ("2023-24", "icb22_code_h")):
    pop = collections.Counter()
    for r in master:
        p = lsoa_pop5[r["lsoa11_code"]]
        for band, col in zip(AGE_BANDS, pop_cols):
            pop[(r[key], band, r["imd2015_quintile"])] += int(p[col])
    write(f"{year}/population_area_age_imd.csv", ["area_code", "age_band", "imd_quintile", "population"],
          sorted((a, b, q, n) for (a, b, q), n in pop.items() if n > 0))

# ---------------- trust catchments ----------------
icb_e54_to_ods = {e54: code for code, (_, e54) in icb_names.items()}
write("2023-24/trust_catchment.csv", ["provider_code", "area_code", "proportion"],
      sorted((r["nhs_trust22_code"], icb_e54_to_ods[r["icb22_code"]], r["proportion_trust_came_from_icb"])
             for r in read("providers/nhs_trusts22_to_icb22_catchment_proportions.csv")))
# CCG20 catchment: trust -> LAD21 shares spread over CCG20s by resident population of the LAD's LSOAs.
lad21_of = {r["LSOA11CD"]: r["LAD21CD"] for r in read("geography/lsoa11_ccg21_lad21_april2021.csv")}
lad_ccg = collections.defaultdict(collections.Counter)
for r in master:
    lad_ccg[lad21_of[r["lsoa11_code"]]][r["ccg20_code_h"]] += int(r["pop_mid2020_persons"])
catch = collections.Counter()
for r in read("providers/nhs_trusts22_to_lad21_catchment_proportions.csv"):
    split = lad_ccg.get(r["ltla21_code"])
    if not split:
        continue  # Welsh or Scottish LADs: no English CCG
    total = sum(split.values())
    for ccg, n in split.items():
        catch[(r["nhs_trust22_code"], ccg)] += float(r["proportion_trust_came_from_ltla"]) * n / total
write("2020-21/trust_catchment.csv", ["provider_code", "area_code", "proportion"],
      sorted((t, c, f"{p:.8f}") for (t, c), p in catch.items() if p >= 1e-6))

# ---------------- boundaries with the ODS join key ----------------
g = json.load(open(os.path.join(SRC, "boundaries/ccg20_april2020_en_buc.geojson")))
for f in g["features"]:
    p = f["properties"]
    f["properties"] = {"area_code": ccg_e38_to_ods[p["ccg20cd"]], "ons_code": p["ccg20cd"], "area_name": p["ccg20nm"]}
json.dump(g, open(os.path.join(OUT, "2020-21/boundaries_ccg20.geojson"), "w"), separators=(",", ":"))
g = json.load(open(os.path.join(SRC, "boundaries/icb23_april2023_ons.geojson")))
# ONS gave Surrey Heartlands and Sussex new E54 codes in April 2023; their ODS codes are unchanged.
icb_e54_to_ods.update({"E54000063": "QXU", "E54000064": "QNX"})
for f in g["features"]:
    p = f["properties"]
    f["properties"] = {"area_code": icb_e54_to_ods[p["ICB23CD"]], "ons_code": p["ICB23CD"], "area_name": p["ICB23NM"]}
json.dump(g, open(os.path.join(OUT, "2023-24/boundaries_icb23.geojson"), "w"), separators=(",", ":"))
print("boundaries written")
