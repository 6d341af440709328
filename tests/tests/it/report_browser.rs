//! The 2023/24 report as a person sees it: rendered by headless Chromium (Debian's `chromium`,
//! which `.ci/run` installs), screenshotted, and checked for its maps, charts and a known area.

use std::path::Path;
use std::process::Command;

use strata_tests::{strata, temp_dir};

const CHROMIUM: &str = "/usr/bin/chromium";

fn chromium(profile: &Path, args: &[&str]) -> std::process::Output {
    Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("run chromium")
}

#[test]
fn the_2023_24_report_loads_its_maps_and_charts_in_chromium() {
    if !Path::new(CHROMIUM).exists() {
        // CI installs it (and sets CI=true); elsewhere say how to get it rather than pass silently.
        assert!(
            std::env::var_os("CI").is_none(),
            "{CHROMIUM} is missing: .ci/run installs Debian's chromium package"
        );
        eprintln!("skipped: install Debian's `chromium` to run this test");
        return;
    }
    let tmp = temp_dir("browser");
    let out = tmp.path().join("out");
    let recipe = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/did-2023-24-icb.toml");
    let (code, stdout, err) = strata(&[
        "run",
        recipe.to_str().unwrap(),
        "--scale",
        "0.002",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}{err}");
    let page = format!("file://{}", out.join("report.html").display());

    // The DOM after load: the browser parsed every inline map and chart.
    let dom = chromium(&tmp.path().join("profile-dom"), &["--dump-dom", &page]);
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let dom = String::from_utf8_lossy(&dom.stdout);
    let svgs = dom.matches("<svg").count();
    // 14 measures × (map, ranked chart, funnel plot).
    assert_eq!(svgs, 42, "inline SVGs in the loaded page");
    assert!(
        dom.contains("<title>QOQ NHS Humber and North Yorkshire ICB"),
        "a known area's title is in the page"
    );
    assert!(dom.contains("Table 1. National imaging rates per 10,000 by modality"));
    // Self-contained: nothing is fetched from anywhere.
    for fetch in [
        "src=\"http",
        "src='http",
        "<link rel=\"stylesheet\" href=\"http",
    ] {
        assert!(!dom.contains(fetch), "the page loads `{fetch}…`");
    }

    // A screenshot, for a person to look at.
    let shot = std::env::temp_dir().join("strata-report-2023-24.png");
    let capture = chromium(
        &tmp.path().join("profile-shot"),
        &[
            "--window-size=1280,2400",
            &format!("--screenshot={}", shot.display()),
            &page,
        ],
    );
    assert!(
        capture.status.success(),
        "{}",
        String::from_utf8_lossy(&capture.stderr)
    );
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(size > 50_000, "screenshot of {size} bytes");
    println!("screenshot: {}", shot.display());
}

/// The period-comparison report (seed 002) as a person sees it: its charts load, a known trust's
/// bar and a region's are in the page, and it fetches nothing.
#[test]
fn the_backlog_report_loads_its_charts_in_chromium() {
    if !Path::new(CHROMIUM).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{CHROMIUM} is missing: .ci/run installs Debian's chromium package"
        );
        eprintln!("skipped: install Debian's `chromium` to run this test");
        return;
    }
    let tmp = temp_dir("browser-backlog");
    let out = tmp.path().join("out");
    let recipe = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/backlog-2020.toml");
    let (code, stdout, err) = strata(&[
        "run",
        recipe.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}{err}");
    let page = format!("file://{}", out.join("report.html").display());
    let dom = chromium(&tmp.path().join("profile-dom"), &["--dump-dom", &page]);
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let dom = String::from_utf8_lossy(&dom.stdout);
    // Six monthly line charts (all modalities and five), trusts ranked, regions waiting.
    assert_eq!(
        dom.matches("<svg").count(),
        8,
        "inline SVGs in the loaded page"
    );
    assert!(
        dom.contains("<title>R0A Manchester University NHS Foundation Trust:"),
        "a known trust's bar is in the page"
    );
    assert!(
        dom.contains("<title>Y62 North West: 33.3%</title>"),
        "the North West's bar"
    );
    assert!(
        dom.contains("data-filter=\"trusts-ranked\""),
        "the search box"
    );
    for fetch in [
        "src=\"http",
        "src='http",
        "<link rel=\"stylesheet\" href=\"http",
    ] {
        assert!(!dom.contains(fetch), "the page loads `{fetch}…`");
    }
}
