//! Methods a methodologist asks for beyond the publications' (issue 13), each chosen by a recipe
//! and named in every row it produces: confidence limits for the factor ratios.

use strata_tests::{strata, temp_dir, write_world};

/// A CSV table as a header and rows of text cells.
fn read_table(path: &std::path::Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_path(path).expect("a CSV table");
    let header = reader
        .headers()
        .expect("a header")
        .iter()
        .map(str::to_string)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.expect("a record").iter().map(str::to_string).collect())
        .collect();
    (header, rows)
}

/// Runs the test world with the ratio plugin `ratio` and its `params` (TOML inline-table body,
/// empty for none), returning `factor_ratios.csv`.
fn factor_ratios(name: &str, ratio: &str, params: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let tmp = temp_dir(name);
    let world = write_world(tmp.path(), ratio);
    if !params.is_empty() {
        let text = std::fs::read_to_string(&world.recipe).expect("recipe");
        let text = text.replacen(
            &format!("plugin = \"{ratio}\"\n"),
            &format!("plugin = \"{ratio}\"\nparams = {{ {params} }}\n"),
            1,
        );
        std::fs::write(&world.recipe, text).expect("recipe");
    }
    let (code, out, err) = strata(&["run", world.recipe.to_str().expect("path")]);
    assert_eq!(code, 0, "{out}{err}");
    read_table(&world.dir.join("out").join("factor_ratios.csv"))
}

/// The table without the columns whose names start with `ratio_ci`.
fn without_limits(table: &(Vec<String>, Vec<Vec<String>>)) -> (Vec<String>, Vec<Vec<String>>) {
    let keep: Vec<usize> = (0..table.0.len())
        .filter(|&i| !table.0[i].starts_with("ratio_ci"))
        .collect();
    let pick = |row: &Vec<String>| keep.iter().map(|&i| row[i].clone()).collect::<Vec<_>>();
    (pick(&table.0), table.1.iter().map(pick).collect())
}

/// Asking the rate ratio for Katz limits adds their columns and changes nothing else; each
/// non-base row's limits are ratio × exp(∓ z √(1/O_base + 1/O)) of the printed counts, and every
/// row names the limits' method.
#[test]
fn katz_limits_of_rate_ratios_are_opt_in_and_by_the_formula() {
    let plain = factor_ratios("ratio-plain", "ratio.rate", "");
    assert!(
        !plain.0.iter().any(|c| c.starts_with("ratio_ci")),
        "{:?}",
        plain.0
    );
    let limited = factor_ratios(
        "ratio-katz",
        "ratio.rate",
        "limits = \"log-normal\", levels = [0.95, 0.998]",
    );
    assert_eq!(
        without_limits(&limited),
        plain,
        "only the limit columns differ"
    );
    let col = |name: &str| limited.0.iter().position(|c| c == name).expect(name);
    let number = |row: &Vec<String>, name: &str| row[col(name)].parse::<f64>().ok();
    let mut checked = 0;
    for row in &limited.1 {
        assert_eq!(row[col("ratio_ci_method")], "Katz log-normal 95%/99.8%");
        // The base category is the first row of its factor × measure, with no limits.
        let base = limited
            .1
            .iter()
            .find(|b| {
                b[col("factor")] == row[col("factor")] && b[col("measure")] == row[col("measure")]
            })
            .expect("a base row");
        assert!(base[col("ratio_ci_lower")].is_empty(), "{base:?}");
        if std::ptr::eq(base, row) {
            continue;
        }
        let (Some(ratio), Some(o), Some(o_base)) = (
            number(row, "ratio"),
            number(row, "observed"),
            number(base, "observed"),
        ) else {
            continue;
        };
        let se = (1.0 / o_base + 1.0 / o).sqrt();
        for (lower, upper, z) in [
            ("ratio_ci_lower", "ratio_ci_upper", 1.959_963_984_540_054),
            (
                "ratio_ci_lower_99_8",
                "ratio_ci_upper_99_8",
                3.090_232_306_167_813,
            ),
        ] {
            let (l, u) = (
                number(row, lower).expect("lower"),
                number(row, upper).expect("upper"),
            );
            // The CSV prints ratios and limits at fixed precision.
            assert!((l - ratio * (-z * se).exp()).abs() < 1e-4, "{row:?}");
            assert!((u - ratio * (z * se).exp()).abs() < 1e-4, "{row:?}");
            assert!(l <= ratio && ratio <= u);
        }
        checked += 1;
    }
    assert!(checked > 20, "{checked} rows checked");
}

/// Woolf's limits of the odds ratios: every defined non-base odds ratio gets limits that bracket
/// it, a ratio without odds (p ≥ 1) none.
#[test]
fn woolf_limits_of_odds_ratios_bracket_each_ratio() {
    let plain = factor_ratios("odds-plain", "ratio.odds", "");
    let limited = factor_ratios("odds-woolf", "ratio.odds", "limits = \"woolf\"");
    assert_eq!(without_limits(&limited), plain);
    let col = |name: &str| limited.0.iter().position(|c| c == name).expect(name);
    let mut bracketed = 0;
    for row in &limited.1 {
        assert_eq!(row[col("ratio_ci_method")], "Woolf logit 95%");
        assert_eq!(row[col("ratio_ci_level")], "0.950000");
        let ratio = row[col("ratio")].parse::<f64>();
        match (
            ratio,
            row[col("ratio_ci_lower")].parse::<f64>(),
            row[col("ratio_ci_upper")].parse::<f64>(),
        ) {
            (Ok(r), Ok(l), Ok(u)) => {
                assert!(l < r && r < u, "{row:?}");
                bracketed += 1;
            }
            (Err(_), lower, _) => assert!(lower.is_err(), "no ratio, no limits: {row:?}"),
            _ => {}
        }
    }
    assert!(bracketed > 20, "{bracketed}");
}

/// The test world's recipe with `from` replaced by `to` (once each), run; its output folder.
fn run_with(name: &str, swaps: &[(&str, &str)]) -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = temp_dir(name);
    let world = write_world(tmp.path(), "ratio.rate");
    let mut text = std::fs::read_to_string(&world.recipe).expect("recipe");
    for (from, to) in swaps {
        assert!(text.contains(from), "{from}");
        text = text.replacen(from, to, 1);
    }
    std::fs::write(&world.recipe, text).expect("recipe");
    let (code, out, err) = strata(&["run", world.recipe.to_str().expect("path")]);
    assert_eq!(code, 0, "{out}{err}");
    let dir = world.dir.join("out");
    (tmp, dir)
}

/// The 2013 European Standard Population per 100,000, bands 0-4 … 90+.
const ESP_2013: [(&str, f64); 19] = [
    ("0-4", 5000.0),
    ("5-9", 5500.0),
    ("10-14", 5500.0),
    ("15-19", 5500.0),
    ("20-24", 6000.0),
    ("25-29", 6000.0),
    ("30-34", 6500.0),
    ("35-39", 7000.0),
    ("40-44", 7000.0),
    ("45-49", 7000.0),
    ("50-54", 7000.0),
    ("55-59", 6500.0),
    ("60-64", 6000.0),
    ("65-69", 5500.0),
    ("70-74", 5000.0),
    ("75-79", 4000.0),
    ("80-84", 2500.0),
    ("85-89", 1500.0),
    ("90+", 1000.0),
];

/// A recipe chooses direct standardisation to the 2013 ESP with Dobson's limits in place of
/// indirect standardisation: every area row names both methods, and one area's DSR and limits
/// equal those computed here from the run's own stratum counts, by the formulas written out.
#[test]
fn direct_standardisation_with_dobson_limits_replaces_indirect() {
    let (_tmp, out) = run_with(
        "direct-dobson",
        &[
            (
                "plugin = \"standardise.indirect\"\n",
                "plugin = \"standardise.direct-dobson\"\nparams = { standard = \"esp2013\" }\n",
            ),
            ("plugin = \"ci.byar-exact\"", "plugin = \"ci.dobson\""),
        ],
    );
    let (header, rows) = read_table(&out.join("area_rates.csv"));
    let col = |name: &str| header.iter().position(|c| c == name).expect(name);
    for row in &rows {
        assert_eq!(
            row[col("standardisation_method")],
            "direct, 2013 European Standard Population (age_band); none below 10 tests"
        );
        assert_eq!(row[col("ci_method")], "Dobson (exact Poisson) 95%/99.8%");
    }
    // By hand for one area × measure: t and n by age band from the stratum tables.
    let (area, measure) = (rows[0][col("area_code")].clone(), "xray");
    let (ch, counts) = read_table(&out.join("stratum_counts.csv"));
    let (ph, people) = read_table(&out.join("stratum_population.csv"));
    let band_sum = |h: &[String], rows: &[Vec<String>], value: &str, band: &str, m: bool| {
        let c = |n: &str| h.iter().position(|x| x == n).expect(n);
        rows.iter()
            .filter(|r| r[c("area_code")] == area && r[c("age_band")] == band)
            .filter(|r| !m || r[c("measure")] == measure)
            .map(|r| r[c(value)].parse::<f64>().expect("a number"))
            .sum::<f64>()
    };
    let (mut dsr, mut variance, mut observed) = (0.0, 0.0, 0.0);
    for (band, standard) in ESP_2013 {
        let w = standard / 100_000.0;
        let t = band_sum(&ch, &counts, "tests", band, true);
        let n = band_sum(&ph, &people, "population", band, false);
        dsr += w * t / n * 10_000.0; // DSR = U Σ w t / n
        variance += w * w * t / (n * n) * 1e8; // V = U² Σ w² t / n²
        observed += t;
    }
    let row = rows
        .iter()
        .find(|r| r[col("area_code")] == area && r[col("measure")] == measure)
        .expect("the area's X-ray row");
    let number = |name: &str| row[col(name)].parse::<f64>().expect(name);
    assert!(observed >= 10.0, "{observed}");
    assert!(
        (number("standardised_rate") - dsr).abs() < 1e-5,
        "{row:?} {dsr}"
    );
    // Dobson: DSR + √(V/O)(O_L − O), O_L Garwood's exact lower limit: the μ at which
    // P(X ≥ O) = 0.025 for X ~ Poisson(μ), found here by bisection on the Poisson sum.
    let slope = (variance / observed).sqrt();
    let o_lower = (number("ci_lower") - dsr) / slope + observed;
    assert!(
        (o_lower - garwood_lower(observed, 0.025)).abs() < 1e-3,
        "{o_lower}"
    );
    assert!(number("ci_upper") > dsr);
}

/// The μ with P(X ≥ o) = tail for X ~ Poisson(μ), o a whole count ≥ 1: P(X ≤ o − 1) is summed
/// term by term in logs (ln pmf(k) = −μ + k ln μ − ln k!) and μ bisected on [0, o].
fn garwood_lower(o: f64, tail: f64) -> f64 {
    let at_most = |mu: f64| {
        let (mut log_pmf, mut sum) = (-mu, 0.0);
        for k in 0..o as u64 {
            if k > 0 {
                log_pmf += mu.ln() - (k as f64).ln();
            }
            sum += log_pmf.exp();
        }
        sum
    };
    let (mut lo, mut hi) = (0.0, o);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        // P(X ≥ o) = 1 − P(X ≤ o − 1) rises with μ.
        if 1.0 - at_most(mid) < tail {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Dobson's limits need the variance only a direct standardisation gives: with indirect
/// standardisation the run is refused, naming the plugin to choose.
#[test]
fn dobson_limits_need_a_direct_standardisation() {
    let tmp = temp_dir("dobson-indirect");
    let world = write_world(tmp.path(), "ratio.rate");
    let text = std::fs::read_to_string(&world.recipe).expect("recipe");
    let text = text.replacen("plugin = \"ci.byar-exact\"", "plugin = \"ci.dobson\"", 1);
    std::fs::write(&world.recipe, text).expect("recipe");
    let (code, out, err) = strata(&["run", world.recipe.to_str().expect("path")]);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("standardise.direct-dobson"), "{err}");
}

/// The test world's run with the indirect standardisation's standard taken from `standard`'s
/// stratum files (`stratum_counts.csv`, `stratum_population.csv`, copied next to the recipe).
fn run_against_standard(
    name: &str,
    standard: &std::path::Path,
) -> (i32, String, tempfile::TempDir, std::path::PathBuf) {
    let tmp = temp_dir(name);
    let world = write_world(tmp.path(), "ratio.rate");
    for file in ["stratum_counts.csv", "stratum_population.csv"] {
        std::fs::copy(
            standard.join(file),
            world.dir.join(format!("standard_{file}")),
        )
        .expect("copy");
    }
    let text = std::fs::read_to_string(&world.recipe).expect("recipe");
    let text = text.replacen(
        "plugin = \"standardise.indirect\"\n",
        "plugin = \"standardise.indirect\"\n\
         params = { standard_label = \"the test world's own counts\" }\n\
         data = { standard_tests = \"standard_stratum_counts.csv\", \
         standard_population = \"standard_stratum_population.csv\" }\n",
        1,
    );
    std::fs::write(&world.recipe, text).expect("recipe");
    let (code, out, err) = strata(&["run", world.recipe.to_str().expect("path")]);
    (
        code.into(),
        format!("{out}{err}"),
        tmp,
        world.dir.join("out"),
    )
}

/// An external standard equal to the run's own national stratum counts (another run's
/// `stratum_counts.csv` and `stratum_population.csv`) gives the run's own area rates, cell for
/// cell but the method's name; a different standard moves the standardised rates and limits
/// and nothing else; a bad cell in the standard is refused naming the file and its row.
#[test]
fn an_external_standard_equal_to_the_own_rates_changes_nothing() {
    let own_tmp = temp_dir("own-standard");
    let own = write_world(own_tmp.path(), "ratio.rate");
    let (code, out, err) = strata(&["run", own.recipe.to_str().expect("path")]);
    assert_eq!(code, 0, "{out}{err}");
    let own_out = own.dir.join("out");
    let (code, log, _same, external_out) = run_against_standard("external-same", &own_out);
    assert_eq!(code, 0, "{log}");
    let (header, own_rows) = read_table(&own_out.join("area_rates.csv"));
    let (header2, external_rows) = read_table(&external_out.join("area_rates.csv"));
    assert_eq!(header, header2);
    let method = header
        .iter()
        .position(|c| c == "standardisation_method")
        .expect("column");
    for (a, b) in own_rows.iter().zip(&external_rows) {
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            if i == method {
                assert_eq!(y, &format!("{x} against the test world's own counts"));
            } else {
                assert_eq!(x, y, "{}: {a:?} against {b:?}", header[i]);
            }
        }
    }
    assert_eq!(own_rows.len(), external_rows.len());

    // A standard with twice the tests at 90+ expects more of areas with older people.
    let changed_tmp = temp_dir("changed-standard");
    let changed = changed_tmp.path();
    let text = std::fs::read_to_string(own_out.join("stratum_counts.csv")).expect("counts");
    let (columns, _) = read_table(&own_out.join("stratum_counts.csv"));
    let (band, tests) = (
        columns
            .iter()
            .position(|c| c == "age_band")
            .expect("age_band"),
        columns.iter().position(|c| c == "tests").expect("tests"),
    );
    let doubled: String = text
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let mut cells: Vec<String> = line.split(',').map(str::to_string).collect();
            if i > 0 && cells[band] == "90+" {
                cells[tests] = (cells[tests].parse::<f64>().expect("tests") * 2.0).to_string();
            }
            cells.join(",") + "\n"
        })
        .collect();
    std::fs::write(changed.join("stratum_counts.csv"), doubled).expect("write");
    std::fs::copy(
        own_out.join("stratum_population.csv"),
        changed.join("stratum_population.csv"),
    )
    .expect("copy");
    let (code, log, _moved, moved_out) = run_against_standard("external-changed", changed);
    assert_eq!(code, 0, "{log}");
    let (_, moved) = read_table(&moved_out.join("area_rates.csv"));
    let col = |name: &str| header.iter().position(|c| c == name).expect(name);
    let differs = |name: &str| {
        own_rows
            .iter()
            .zip(&moved)
            .filter(|(a, b)| a[col(name)] != b[col(name)])
            .count()
    };
    assert!(differs("standardised_rate") > 0 && differs("expected") > 0);
    assert_eq!(
        differs("observed") + differs("crude_rate") + differs("population"),
        0
    );
    // The national rates are the run's own (only the method named beside them differs).
    let national = |dir: &std::path::Path| {
        let (h, rows) = read_table(&dir.join("national_rates.csv"));
        let keep: Vec<usize> = (0..h.len()).filter(|&i| h[i] != "method").collect();
        rows.iter()
            .map(|r| keep.iter().map(|&i| r[i].clone()).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    };
    assert_eq!(national(&own_out), national(&moved_out));

    // A cell that is not a count is refused, naming the data file and row.
    let bad_tmp = temp_dir("bad-standard");
    let bad = bad_tmp.path();
    let broken = text.replacen(",1\n", ",one\n", 1);
    assert_ne!(broken, text, "the counts hold a 1");
    std::fs::write(bad.join("stratum_counts.csv"), &broken).expect("write");
    std::fs::copy(
        own_out.join("stratum_population.csv"),
        bad.join("stratum_population.csv"),
    )
    .expect("copy");
    let (code, log, _bad, _) = run_against_standard("external-bad", bad);
    assert_ne!(code, 0);
    assert!(
        log.contains("standard_stratum_counts.csv") && log.contains("data row"),
        "{log}"
    );
    assert!(log.contains("`one`"), "{log}");
}

/// The 2023/24 recipe, made runnable from `dir` at scale 0.002: its paths made absolute, its
/// stratum tables written, no disclosure control (a standard must be the counts as counted), and
/// `standardisation` as given.
fn year_2023_24(dir: &std::path::Path, standardisation: &str) -> std::path::PathBuf {
    let ws = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let ws = ws.canonicalize().expect("workspace");
    let ws = ws.to_str().expect("a UTF-8 path");
    let text =
        std::fs::read_to_string(format!("{ws}/configs/did-2023-24-icb.toml")).expect("recipe");
    let start = text
        .find("[stages.disclosure]")
        .expect("a disclosure stage");
    let end = start + text[start..].find("\n[").expect("a table after it");
    let text = format!("{}{}", &text[..start], &text[end + 1..])
        .replace("= \"../data/", &format!("= \"{ws}/data/"))
        // The CDC context's synthetic set takes its config's path alone (no `root`).
        .replace(
            "synthetic_cdc = { config = \"synth/",
            &format!("synthetic_cdc = {{ config = \"{ws}/configs/synth/"),
        )
        .replace(
            "config = \"synth/",
            &format!("root = \"{ws}\", config = \"{ws}/configs/synth/"),
        )
        .replace(
            "published = \"published/",
            &format!("published = \"{ws}/configs/published/"),
        )
        .replace(
            "dir = \"../out/did-2023-24-icb\"",
            "dir = \"out\"\nstratum_counts = true",
        )
        .replacen(
            "params = { strata = [\"imd_quintile\", \"sex\", \"age_band\"] }\n",
            standardisation,
            1,
        );
    std::fs::create_dir_all(dir).expect("dir");
    let recipe = dir.join("recipe.toml");
    std::fs::write(&recipe, text).expect("recipe");
    let (code, out, err) = strata(&["run", recipe.to_str().expect("path"), "--scale", "0.002"]);
    assert_eq!(code, 0, "{out}{err}");
    dir.join("out")
}

/// 2023/24 against its own national stratum rates, given as an external standard (its own run's
/// stratum tables), gives its own area rates; the same standard with 75-79's tests halved does
/// not.
#[test]
fn year_2023_24_against_its_own_counts_as_an_external_standard() {
    let tmp = temp_dir("year-standard");
    let own = year_2023_24(
        &tmp.path().join("own"),
        "params = { strata = [\"imd_quintile\", \"sex\", \"age_band\"] }\n",
    );
    let external = |name: &str, counts: &std::path::Path| {
        year_2023_24(
            &tmp.path().join(name),
            &format!(
                "params = {{ strata = [\"imd_quintile\", \"sex\", \"age_band\"], standard_label = \"2023/24\" }}\n\
                 data = {{ standard_tests = \"{}\", standard_population = \"{}\" }}\n",
                counts.display(),
                own.join("stratum_population.csv").display()
            ),
        )
    };
    let same = external("same", &own.join("stratum_counts.csv"));
    let (header, own_rows) = read_table(&own.join("area_rates.csv"));
    let (_, same_rows) = read_table(&same.join("area_rates.csv"));
    assert_eq!(own_rows.len(), same_rows.len());
    assert!(own_rows.len() >= 42 * 14, "{}", own_rows.len());
    let method = header
        .iter()
        .position(|c| c == "standardisation_method")
        .expect("method");
    for (a, b) in own_rows.iter().zip(&same_rows) {
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            if i != method {
                assert_eq!(x, y, "{}: {a:?} against {b:?}", header[i]);
            }
        }
        assert_eq!(b[method], format!("{} against 2023/24", a[method]));
    }

    let (columns, count_rows) = read_table(&own.join("stratum_counts.csv"));
    let (band, tests) = (
        columns
            .iter()
            .position(|c| c == "age_band")
            .expect("age_band"),
        columns.iter().position(|c| c == "tests").expect("tests"),
    );
    let mut halved = columns.join(",") + "\n";
    for row in &count_rows {
        let mut row = row.clone();
        if row[band] == "75-79" {
            row[tests] = (row[tests].parse::<f64>().expect("tests") / 2.0).to_string();
        }
        halved += &(row.join(",") + "\n");
    }
    let halved_file = tmp.path().join("halved_counts.csv");
    std::fs::write(&halved_file, halved).expect("write");
    let moved = external("moved", &halved_file);
    let (_, moved_rows) = read_table(&moved.join("area_rates.csv"));
    let rate = header
        .iter()
        .position(|c| c == "standardised_rate")
        .expect("rate");
    let differ = own_rows
        .iter()
        .zip(&moved_rows)
        .filter(|(a, b)| a[rate] != b[rate])
        .count();
    assert!(
        differ > own_rows.len() / 2,
        "{differ} of {} rates moved",
        own_rows.len()
    );
}
