//! The synthetic DM01 activity and community diagnostic centre (CDC) activity of seed 004
//! (`configs/synth/cdc-share-2024.toml`): England's monthly figures of the config shared out over
//! the real trusts (by their scanners and machines) and the real approved CDC sites: each CDC
//! test type over the ICBs by their trusts' weights for it (so a CDC's activity follows the
//! local size of the service), then over each ICB's CDCs by archetype, each step with a
//! log-normal spread, in whole tests that sum to the config's figures.
//!
//! The CDC rows come out as the activity file's rows would ([`crate::cdc::CdcRecord`]), with the
//! config's test type names, so they pass the recipe's test-name map like a real file's. The
//! DM01 rows carry activity only (no waiting list: every weekly band is 0).

use std::collections::BTreeMap;
use std::path::Path;

use strata_api::{RegionalProvider, SettingSite, WAITING_WEEK_BANDS, WaitingListRow};
use strata_synth::periods::largest_remainder;

use crate::cdc::CdcRecord;
use crate::dm01::DM01_TESTS;
use crate::error::{Error, Result};
use crate::input::TextTable;
use crate::periods::ProviderRegion;

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Trusts and their machines (relative to the config).
    providers: String,
    /// Each trust's ICB (relative to the config).
    provider_icbs: String,
    /// The approved CDC sites (relative to the config).
    sites: String,
    /// DM01 test → the provider columns whose sum weights it; `default` for the other tests.
    provider_weights: BTreeMap<String, Vec<String>>,
    /// Log-scale spread of a trust's test around its weight.
    provider_spread: f64,
    /// CDC archetype → weight.
    archetype_weights: BTreeMap<String, f64>,
    /// Log-scale spread of an ICB's CDC activity around its trusts' weight.
    icb_spread: f64,
    /// CDC test type name → the DM01 test whose trusts' weights place it among ICBs (the other
    /// types: every test's weights summed).
    #[serde(default)]
    cdc_weights_by: BTreeMap<String, String>,
    /// Log-scale spread of a CDC around its archetype's weight, and of its test types.
    site_spread: f64,
    test_spread: f64,
    /// Shares of DM01 activity beyond a month's named tests, by DM01 test.
    dm01_mix: BTreeMap<String, f64>,
    /// Shares of CDC activity of DM01 tests, by the CDC file's test type name.
    cdc_dm01_mix: BTreeMap<String, f64>,
    /// Shares of CDC activity of other tests, by test type name.
    cdc_other_mix: BTreeMap<String, f64>,
    /// Share of a month's CDC tests that are DM01 tests, where the month does not say.
    dm01_fraction: f64,
    dm01: Vec<Dm01Month>,
    cdc: Vec<CdcMonth>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Dm01Month {
    month: String,
    all_tests: u64,
    #[serde(default)]
    tests: BTreeMap<String, u64>,
    #[allow(dead_code)]
    source: String,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CdcMonth {
    month: String,
    total: u64,
    #[serde(default)]
    dm01_tests: Option<u64>,
    #[serde(default)]
    tests: BTreeMap<String, u64>,
    #[allow(dead_code)]
    source: String,
}

/// A CDC of the site list with its weight.
struct Site {
    site: SettingSite,
    weight: f64,
}

/// The synthetic DM01 activity and CDC activity rows.
pub fn cdc_share(
    spec: &crate::recipe::SyntheticProviderMonths,
    regions: &BTreeMap<String, ProviderRegion>,
) -> Result<(strata_api::WaitingListInput, Vec<CdcRecord>)> {
    let path = &spec.config.path;
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let config: Config = toml::from_str(&text)
        .map_err(|e| Error::data(path, None, None, format!("synthetic CDC: {e}")))?;
    check_config(path, &config)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let providers_path = dir.join(&config.providers);
    let t = TextTable::read(&providers_path, &["provider_code"])?;
    let weights = provider_weights(&config, &t, spec.seed)?;
    let dm01 = dm01_activity(&config, &t, &weights, regions)?;
    let sites = read_sites(&config, &dir.join(&config.sites), regions, spec.seed)?;
    let icb_weights = icb_weights(
        &config,
        &dir.join(&config.provider_icbs),
        &t,
        &weights,
        spec.seed,
    )?;
    let records = cdc_activity(path, &config, &sites, &icb_weights, spec.seed)?;
    Ok((dm01, records))
}

/// Months are months, DM01 tests are DM01's, mixes are shares that sum to 1.
fn check_config(path: &Path, config: &Config) -> Result<()> {
    let bad = |key: &str, message: String| Err(Error::data(path, None, Some(key), message));
    let tests = &DM01_TESTS[..15];
    for (key, mix) in [
        ("dm01_mix", &config.dm01_mix),
        ("cdc_dm01_mix", &config.cdc_dm01_mix),
        ("cdc_other_mix", &config.cdc_other_mix),
    ] {
        let sum: f64 = mix.values().sum();
        if (sum - 1.0).abs() > 1e-9 || mix.values().any(|s| *s < 0.0) {
            return bad(
                key,
                format!("shares sum to {sum}, not 1, or one is negative"),
            );
        }
    }
    if let Some(t) = config
        .dm01_mix
        .keys()
        .chain(config.dm01.iter().flat_map(|m| m.tests.keys()))
        .find(|t| !tests.contains(&t.as_str()))
    {
        return bad("dm01", format!("`{t}` is not a DM01 test"));
    }
    let months = config.dm01.iter().map(|m| &m.month);
    if let Some(m) = months
        .chain(config.cdc.iter().map(|m| &m.month))
        .find(|m| crate::periods::parse_month(m).is_none())
    {
        return bad("month", format!("`{m}` is not a month (YYYY-MM)"));
    }
    if !(0.0..=1.0).contains(&config.dm01_fraction) {
        return bad("dm01_fraction", "must be between 0 and 1".into());
    }
    Ok(())
}

/// Each trust's weight for each DM01 test: its weight columns summed, times its spread.
fn provider_weights(
    config: &Config,
    t: &TextTable,
    seed: u64,
) -> Result<BTreeMap<&'static str, Vec<f64>>> {
    let tests = &DM01_TESTS[..15];
    let factors =
        strata_synth::cdc::spread_factors(t.height() * tests.len(), config.provider_spread, seed);
    let mut out = BTreeMap::new();
    for (k, test) in tests.iter().enumerate() {
        let columns = config
            .provider_weights
            .get(*test)
            .or_else(|| config.provider_weights.get("default"))
            .ok_or_else(|| {
                Error::data(
                    &t.path,
                    None,
                    None,
                    format!("synthetic CDC: no provider weight columns for `{test}` nor `default`"),
                )
            })?;
        let mut weights = vec![0.0; t.height()];
        for column in columns {
            for (row, v) in t.required_column(column)?.into_iter().enumerate() {
                weights[row] += crate::input::count_value(t, row, column, v)?;
            }
        }
        for (row, w) in weights.iter_mut().enumerate() {
            *w *= factors[row * tests.len() + k];
        }
        out.insert(*test, weights);
    }
    Ok(out)
}

/// DM01 activity by trust × month × test: each month's named tests as given, the rest of its
/// tests by `dm01_mix`, each test over the trusts by weight.
fn dm01_activity(
    config: &Config,
    t: &TextTable,
    weights: &BTreeMap<&'static str, Vec<f64>>,
    regions: &BTreeMap<String, ProviderRegion>,
) -> Result<strata_api::WaitingListInput> {
    let providers_path = &t.path;
    let codes = t.required_column("provider_code")?;
    let mut providers = Vec::new();
    for (row, code) in codes.iter().enumerate() {
        let region = regions.get(*code).ok_or_else(|| {
            Error::data(
                providers_path,
                Some(row + 1),
                Some("provider_code"),
                format!("provider `{code}` is not in the recipe's provider_regions file"),
            )
        })?;
        providers.push(RegionalProvider {
            code: code.to_string(),
            name: region.name.clone(),
            region_code: region.region_code.clone(),
            region_name: region.region_name.clone(),
        });
    }
    let mut rows = Vec::new();
    for m in &config.dm01 {
        for (test, national) in month_tests(&m.tests, &config.dm01_mix, m.all_tests, &m.month)? {
            let split = largest_remainder(national, &weights[test.as_str()]);
            for (provider, activity) in split.into_iter().enumerate() {
                rows.push(WaitingListRow {
                    provider: provider as u32,
                    month: m.month.clone(),
                    test: test.clone(),
                    weeks: vec![0.0; WAITING_WEEK_BANDS],
                    total_activity: activity as f64,
                });
            }
        }
    }
    Ok(strata_api::WaitingListInput {
        providers,
        rows,
        other_nations: Vec::new(),
    })
}

/// A month's tests: the named ones as given, `total` less their sum shared by `mix` over the
/// tests it names that are not named.
fn month_tests(
    named: &BTreeMap<String, u64>,
    mix: &BTreeMap<String, f64>,
    total: u64,
    month: &str,
) -> Result<Vec<(String, u64)>> {
    let given: u64 = named.values().sum();
    let rest = total.checked_sub(given).ok_or_else(|| {
        Error::Usage(format!(
            "synthetic CDC, {month}: the named tests ({given}) exceed the month's total ({total})"
        ))
    })?;
    let others: Vec<(&String, f64)> = mix
        .iter()
        .filter(|(t, _)| !named.contains_key(*t))
        .map(|(t, s)| (t, *s))
        .collect();
    let shares: Vec<f64> = others.iter().map(|(_, s)| *s).collect();
    let mut out: Vec<(String, u64)> = named.iter().map(|(t, n)| (t.clone(), *n)).collect();
    for ((test, _), n) in others.iter().zip(largest_remainder(rest, &shares)) {
        out.push(((*test).clone(), n));
    }
    Ok(out)
}

/// ICB code → its weight for each CDC test type name: the summed weights of its trusts (for the
/// type's DM01 test, or every test's), times the ICB's spread.
fn icb_weights(
    config: &Config,
    path: &Path,
    t: &TextTable,
    weights: &BTreeMap<&'static str, Vec<f64>>,
    seed: u64,
) -> Result<BTreeMap<String, BTreeMap<String, f64>>> {
    let (icb_of, icbs) = crate::cdc::read_provider_icbs(path)?;
    let factors = strata_synth::cdc::spread_factors(icbs.len(), config.icb_spread, seed ^ 0x1CB);
    let factor: BTreeMap<&str, f64> = icbs
        .iter()
        .zip(factors)
        .map(|(a, f)| (a.code.as_str(), f))
        .collect();
    let codes = t.required_column("provider_code")?;
    let names = config
        .cdc_dm01_mix
        .keys()
        .chain(config.cdc_other_mix.keys());
    let mut out: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    for name in names {
        let by = config.cdc_weights_by.get(name).map(String::as_str);
        for (row, code) in codes.iter().enumerate() {
            let Some(icb) = icb_of.get(*code) else {
                continue;
            };
            let w: f64 = match by {
                Some(test) => weights.get(test).map_or(0.0, |w| w[row]),
                None => weights.values().map(|w| w[row]).sum(),
            };
            *out.entry(icb.clone())
                .or_default()
                .entry(name.clone())
                .or_default() += w * factor[icb.as_str()];
        }
    }
    Ok(out)
}

/// The approved sites with their weights: archetype weight times spread; region names are the
/// recipe's (`provider_regions`) for the list's region codes.
fn read_sites(
    config: &Config,
    path: &Path,
    regions: &BTreeMap<String, ProviderRegion>,
    seed: u64,
) -> Result<Vec<Site>> {
    let columns = [
        "cdc_ods_site_code",
        "name_of_cdc",
        "region_code",
        "icb_code",
        "cdc_archetype",
    ];
    let t = TextTable::read(path, &columns)?;
    let values: Vec<Vec<&str>> = columns
        .iter()
        .map(|c| t.required_column(c))
        .collect::<Result<_>>()?;
    let region_names: BTreeMap<&str, &str> = regions
        .values()
        .map(|r| (r.region_code.as_str(), r.region_name.as_str()))
        .collect();
    let factors = strata_synth::cdc::spread_factors(t.height(), config.site_spread, seed ^ 0xCDC);
    let mut sites = Vec::new();
    for row in 0..t.height() {
        let archetype = values[4][row];
        let weight = config.archetype_weights.get(archetype).ok_or_else(|| {
            Error::data(
                path,
                Some(row + 1),
                Some("cdc_archetype"),
                format!("archetype `{archetype}` has no weight in the synthetic CDC config"),
            )
        })?;
        sites.push(Site {
            site: SettingSite {
                code: values[0][row].to_string(),
                name: values[1][row].to_string(),
                region_code: values[2][row].to_string(),
                region_name: region_names
                    .get(values[2][row])
                    .map_or_else(|| values[2][row].to_string(), |n| n.to_string()),
                icb_code: values[3][row].to_string(),
            },
            weight: weight * factors[row],
        });
    }
    Ok(sites)
}

/// CDC activity by site × month × test type: each month's DM01 tests (given, or
/// `dm01_fraction` of its total) with its named types as given and the rest by `cdc_dm01_mix`;
/// its other tests by `cdc_other_mix`; each type over the ICBs with a CDC by their weights, then
/// over each ICB's CDCs by weight times the site's spread for that type.
fn cdc_activity(
    path: &Path,
    config: &Config,
    sites: &[Site],
    icb_weights: &BTreeMap<String, BTreeMap<String, f64>>,
    seed: u64,
) -> Result<Vec<CdcRecord>> {
    let names: Vec<&String> = config
        .cdc_dm01_mix
        .keys()
        .chain(config.cdc_other_mix.keys())
        .collect();
    let factors = strata_synth::cdc::spread_factors(
        sites.len() * names.len(),
        config.test_spread,
        seed ^ 0x7E57,
    );
    let mut records = Vec::new();
    for m in &config.cdc {
        let dm01 = m
            .dm01_tests
            .unwrap_or_else(|| (m.total as f64 * config.dm01_fraction).round() as u64);
        let other = m.total.checked_sub(dm01).ok_or_else(|| {
            Error::data(
                path,
                None,
                Some("cdc"),
                format!(
                    "{}: dm01_tests {dm01} exceed the total {}",
                    m.month, m.total
                ),
            )
        })?;
        let mut national = month_tests(&m.tests, &config.cdc_dm01_mix, dm01, &m.month)?;
        national.extend(month_tests(
            &BTreeMap::new(),
            &config.cdc_other_mix,
            other,
            &m.month,
        )?);
        for (name, tests) in national {
            let k = names.iter().position(|n| **n == name).ok_or_else(|| {
                Error::data(
                    path,
                    None,
                    Some("cdc"),
                    format!("{}: test type `{name}` is in neither CDC mix", m.month),
                )
            })?;
            let site_weights: Vec<f64> = (0..sites.len())
                .map(|s| sites[s].weight * factors[s * names.len() + k])
                .collect();
            let icbs: Vec<(&String, f64)> = icb_weights
                .iter()
                .map(|(icb, w)| (icb, w.get(&name).copied().unwrap_or(0.0)))
                .filter(|(icb, _)| sites.iter().any(|s| s.site.icb_code == **icb))
                .collect();
            let shares: Vec<f64> = icbs.iter().map(|(_, w)| *w).collect();
            for ((icb, _), in_icb) in icbs.iter().zip(largest_remainder(tests, &shares)) {
                let here: Vec<usize> = (0..sites.len())
                    .filter(|s| sites[*s].site.icb_code == **icb)
                    .collect();
                let weights: Vec<f64> = here.iter().map(|s| site_weights[*s]).collect();
                for (s, n) in here.iter().zip(largest_remainder(in_icb, &weights)) {
                    if n > 0 {
                        records.push(CdcRecord {
                            site: sites[*s].site.clone(),
                            month: m.month.clone(),
                            test_name: name.clone(),
                            tests: n as f64,
                        });
                    }
                }
            }
        }
    }
    Ok(records)
}
