//! The cost of the serialized call on the largest structured input: `StratifiedCounts` at 42 areas
//! × 14 measures × 6×3×20 cells, encoded and decoded both ways (best of 50).
//! `cargo run --release -p strata-api --example call_cost`

use std::borrow::Cow;
use std::time::Instant;
use strata_api::ffi::call::{Request, Response, decode, encode};
use strata_api::{Area, Dimension, StratifiedCounts};

fn main() {
    let areas = (0..42)
        .map(|i| Area {
            code: format!("E{i:08}"),
            name: format!("Area {i}"),
        })
        .collect();
    let measures = (0..14).map(|i| format!("measure_{i}")).collect();
    let ages: Vec<String> = (0..20)
        .map(|i| format!("{}-{}", i * 5, i * 5 + 4))
        .collect();
    let ages: Vec<&str> = ages.iter().map(|s| s.as_str()).collect();
    let dims = vec![
        Dimension::new("imd_quintile", &["1", "2", "3", "4", "5", "unknown"]),
        Dimension::new("sex", &["1", "2", "unknown"]),
        Dimension::new("age_band", &ages),
    ];
    let mut c = StratifiedCounts::zeroed(areas, measures, dims);
    for (i, t) in c.tests.iter_mut().enumerate() {
        *t = (i % 997) as f64;
    }
    for (i, p) in c.population.iter_mut().enumerate() {
        *p = (i % 5003) as f64 * 3.0;
    }
    println!(
        "cells {} tests {} population {}",
        c.cells(),
        c.tests.len(),
        c.population.len()
    );
    let n = 50;
    let mut best = [f64::MAX; 4];
    let mut size = (0, 0);
    for _ in 0..n {
        let t = Instant::now();
        let req = encode(&Request::Exclude(Cow::Borrowed(&c))).unwrap();
        let t1 = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let back: Request<'static> = decode(&req).unwrap();
        let t2 = t.elapsed().as_secs_f64();
        let Request::Exclude(back) = back else {
            unreachable!("encoded an exclude request")
        };
        let resp_value = Response::Counts(back.into_owned());
        let t = Instant::now();
        let resp = encode(&resp_value).unwrap();
        let t3 = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let r: Response = decode(&resp).unwrap();
        let t4 = t.elapsed().as_secs_f64();
        std::hint::black_box(r);
        size = (req.len(), resp.len());
        for (b, v) in best.iter_mut().zip([t1, t2, t3, t4]) {
            *b = b.min(v);
        }
    }
    println!("request {} bytes, response {} bytes", size.0, size.1);
    println!(
        "best of {n} (ms): encode request {:.3}, decode request {:.3}, encode response {:.3}, decode response {:.3}; round trip {:.3}",
        best[0] * 1e3,
        best[1] * 1e3,
        best[2] * 1e3,
        best[3] * 1e3,
        best.iter().sum::<f64>() * 1e3
    );
}
