//! Every star in the publications' factor tables (Tables 1–6 of both years) against this method,
//! using only published figures: the ratios (2 decimals) and the national rates (Table 1 and 2 of
//! §2.2, whole numbers per 10,000).
//!
//! The two standardised rates behind a ratio are not published, but they can be bracketed. In
//! indirect standardisation Σ_c E_c = Σ_c O_c, so the national rate is the E-weighted mean of the
//! categories' standardised rates and lies between the smallest and largest of them. With all
//! categories' ratios to the base known, that bounds the base rate r1; each comparison rate follows
//! from r1 and its ratio (r2 = R·r1 for rate ratios, 2023/24; through the odds for odds ratios,
//! 2020/21). Scanning r1 over its bracket and each ratio over its rounding interval (±0.005) gives
//! a range of χ²; where the whole range falls in one star class, the published star must be that
//! class. Elsewhere the published star must at least lie inside the range.
//!
//! Sources: NHS England, *Diagnostic Imaging Dataset: Standardised CCG rates 2020/21* and
//! *Standardised ICB rates 2023/24*, §2.2 Tables 1–2 and §3.2 Tables 1–6. The 2020/21 X-ray age
//! column is left out: its 75+ entry is the 65+ ratio standing in (note to Table 5), so its bracket
//! is not that of the other columns.

use strata_significance_pearson::PearsonRatesPer10k;

// National rates per 10,000, §2.2 Tables 1 (modalities) and 2 (EDOC) of each year.
const NATIONAL_2020_21: [f64; 9] = [2764.0, 1347.0, 917.0, 496.0, 122.0, 44.0, 33.0, 5.0, 8.0];
const NATIONAL_2020_21_EDOC: [f64; 5] = [114.0, 1104.0, 93.0, 29.0, 156.0];
const NATIONAL_2023_24: [f64; 9] = [3551.0, 1703.0, 1207.0, 694.0, 143.0, 50.0, 43.0, 8.0, 11.0];
const NATIONAL_2023_24_EDOC: [f64; 5] = [150.0, 1289.0, 127.0, 34.0, 199.0];

/// One published table: the non-base rows, cells as printed (`0.77***`).
struct Table {
    odds: bool,
    national: &'static [f64],
    rows: &'static str,
    skip_column: Option<usize>,
}

const TABLES: &[Table] = &[
    // 2020/21, odds ratios. Table 1 (sex, modalities), Table 2 (sex, EDOC).
    Table {
        odds: true,
        national: &NATIONAL_2020_21,
        rows: "0.77*** 0.28*** 1.00 0.82** 1.15 0.87 1.14 0.83 1.01",
        skip_column: None,
    },
    Table {
        odds: true,
        national: &NATIONAL_2020_21_EDOC,
        rows: "0.81 1.17** 1.21 0.99 0.69**",
        skip_column: None,
    },
    // Tables 3 and 4 (deprivation).
    Table {
        odds: true,
        national: &NATIONAL_2020_21,
        rows: "0.84*** 0.89** 0.85*** 0.95 0.89 0.98 0.94 0.93 0.64
               0.73*** 0.86*** 0.75*** 0.92 0.84 0.92 0.91 0.83 0.63
               0.68*** 0.84*** 0.70*** 0.91 0.79 0.93 0.90 0.83 0.55
               0.62*** 0.81*** 0.64*** 0.89 0.75* 0.91 0.88 0.86 0.55",
        skip_column: None,
    },
    Table {
        odds: true,
        national: &NATIONAL_2020_21_EDOC,
        rows: "0.94 0.80*** 0.80 0.94 0.88
               0.91 0.66*** 0.68** 0.82 0.77*
               0.89 0.59*** 0.64** 0.81 0.73**
               0.85 0.53*** 0.58*** 0.74 0.68**",
        skip_column: None,
    },
    // Tables 5 and 6 (age).
    Table {
        odds: true,
        national: &NATIONAL_2020_21,
        rows: "2.16*** 0.87** 3.22*** 2.24*** 2.52*** 2.69** 4.81*** 2.34 1.69
               3.24*** 0.87** 5.25*** 2.71*** 4.22*** 4.35*** 9.96*** 3.85 2.60
               5.21*** 0.99 9.28*** 3.17*** 6.32*** 7.17*** 17.74*** 6.56** 4.75**
               28.36*** 1.22*** 21.69*** 2.87*** 8.62*** 7.91*** 16.89*** 7.83** 11.50***",
        skip_column: Some(0),
    },
    Table {
        odds: true,
        national: &NATIONAL_2020_21_EDOC,
        rows: "1.86*** 2.64*** 4.74*** 1.31 1.84***
               2.30*** 4.02*** 9.22*** 1.69 2.16***
               2.88*** 6.48*** 16.36*** 2.57*** 2.37***
               3.35*** 17.81*** 21.59*** 4.33*** 2.65***",
        skip_column: None,
    },
    // 2023/24, rate ratios, same six tables.
    Table {
        odds: false,
        national: &NATIONAL_2023_24,
        rows: "0.79*** 0.35*** 0.97 0.81*** 1.07 0.91 1.10 0.87 0.96",
        skip_column: None,
    },
    Table {
        odds: false,
        national: &NATIONAL_2023_24_EDOC,
        rows: "0.80 1.06 1.13 0.96 0.71***",
        skip_column: None,
    },
    Table {
        odds: false,
        national: &NATIONAL_2023_24,
        rows: "0.90*** 0.89*** 0.86*** 0.92 0.89 0.97 0.93 0.90 0.65
               0.84*** 0.84*** 0.77*** 0.89* 0.86 0.93 0.90 0.83 0.66
               0.81*** 0.84*** 0.73*** 0.88* 0.82 0.91 0.88 0.83 0.55
               0.75*** 0.81*** 0.66*** 0.85** 0.76* 0.88 0.84 0.86 0.54",
        skip_column: None,
    },
    Table {
        odds: false,
        national: &NATIONAL_2023_24_EDOC,
        rows: "0.92 0.84*** 0.82 0.95 0.89
               0.88 0.75*** 0.72** 0.84 0.78*
               0.86 0.69*** 0.68** 0.85 0.75**
               0.82 0.63*** 0.61*** 0.78 0.70***",
        skip_column: None,
    },
    Table {
        odds: false,
        national: &NATIONAL_2023_24,
        rows: "1.74*** 1.05 2.87*** 2.23*** 2.57*** 2.85*** 4.95*** 2.36 1.44
               2.49*** 1.08* 4.66*** 2.80*** 4.33*** 4.77*** 10.76*** 4.40* 2.50
               3.42*** 1.18*** 7.57*** 3.25*** 6.32*** 7.86*** 19.41*** 8.15*** 4.43**
               5.27*** 1.34*** 13.16*** 2.98*** 8.34*** 8.96*** 19.34*** 10.09*** 10.34***",
        skip_column: None,
    },
    Table {
        odds: false,
        national: &NATIONAL_2023_24_EDOC,
        rows: "1.92*** 2.15*** 4.74*** 1.40 1.84***
               2.46*** 3.29*** 10.23*** 1.79* 2.15***
               3.13*** 5.10*** 18.72*** 2.70*** 2.34***
               3.74*** 9.18*** 23.67*** 4.25*** 2.37***",
        skip_column: None,
    },
];

/// Half a unit in the last published decimal place.
const RATIO_ROUNDING: f64 = 0.005;
const RATE_ROUNDING: f64 = 0.5;

fn parse_rows(rows: &str) -> Vec<Vec<(f64, String)>> {
    rows.lines()
        .map(|line| {
            line.split_whitespace()
                .map(|cell| {
                    let stars = cell.chars().filter(|&c| c == '*').count();
                    let ratio: f64 = cell.trim_end_matches('*').parse().expect("a ratio");
                    (ratio, "*".repeat(stars))
                })
                .collect()
        })
        .collect()
}

/// The comparison rate per 10,000 for a base rate and a ratio.
fn comparison_rate(odds: bool, base_rate: f64, ratio: f64) -> f64 {
    if !odds {
        return ratio * base_rate;
    }
    let base_p = base_rate / 10_000.0;
    let comparison_odds = ratio * base_p / (1.0 - base_p);
    comparison_odds / (1.0 + comparison_odds) * 10_000.0
}

/// The base rate whose comparison rate at `ratio` equals `target` (both increase together).
fn base_rate_for(odds: bool, ratio: f64, target: f64) -> f64 {
    let (mut low, mut high) = (0.0, 10_000.0);
    for _ in 0..200 {
        let mid = (low + high) / 2.0;
        if comparison_rate(odds, mid, ratio) < target {
            low = mid;
        } else {
            high = mid;
        }
    }
    low
}

fn star_rank(stars: &str) -> usize {
    stars.len()
}

#[test]
fn published_stars_are_reproduced() {
    let mut cells = 0;
    let mut decided = 0;
    for table in TABLES {
        let rows = parse_rows(table.rows);
        for (column, &national) in table.national.iter().enumerate() {
            if table.skip_column == Some(column) {
                continue;
            }
            // The base category has ratio exactly 1; the others are rounded.
            let ratios: Vec<f64> = rows.iter().map(|r| r[column].0).collect();
            let largest = ratios.iter().copied().fold(1.0, f64::max);
            let smallest = ratios.iter().copied().fold(1.0, f64::min);
            let widen = |r: f64, by: f64| if r == 1.0 { r } else { r + by };
            // The largest category rate is at least national, the smallest at most national.
            let base_low = base_rate_for(
                table.odds,
                widen(largest, RATIO_ROUNDING),
                national - RATE_ROUNDING,
            );
            let base_high = base_rate_for(
                table.odds,
                widen(smallest, -RATIO_ROUNDING),
                national + RATE_ROUNDING,
            );
            assert!(base_low <= base_high);
            for row in &rows {
                let (ratio, published) = &row[column];
                cells += 1;
                let mut ranks = Vec::new();
                for step in 0..=60 {
                    let base = base_low + (base_high - base_low) * f64::from(step) / 60.0;
                    for r in [ratio - RATIO_ROUNDING, *ratio, ratio + RATIO_ROUNDING] {
                        let result = PearsonRatesPer10k::test_rates(
                            base,
                            comparison_rate(table.odds, base, r),
                        );
                        ranks.push(star_rank(&result.stars));
                    }
                }
                let lowest = *ranks.iter().min().unwrap();
                let highest = *ranks.iter().max().unwrap();
                let published_rank = star_rank(published);
                assert!(
                    lowest <= published_rank && published_rank <= highest,
                    "national {national}, ratio {ratio}{published}: stars range {lowest}..={highest}"
                );
                if lowest == highest {
                    decided += 1;
                }
            }
        }
    }
    // 248 published cells; 200 have one possible star class, and all 200 match.
    assert_eq!(cells, 248);
    assert_eq!(decided, 200);
}
