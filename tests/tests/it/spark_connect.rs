//! `strata run --spark` end to end against a real Spark Connect server: pyspark (PyPI, with its
//! `connect` extra, in `target/spark-venv`) on the machine's Java 17 starts a local server on
//! 127.0.0.1 once; the synthetic year as `strata synth` writes it, the same records rewritten by
//! Spark as CSV in a hashed order (types found by Spark's CSV inference), and the UDAL-shaped
//! export through its mapping (its dates as TIMESTAMP_NTZ, and as TIMESTAMP instants in a server
//! whose sessions start in another time zone) are registered as tables; `strata run --spark` on each writes every
//! table file byte for byte as the record-level run on the same records does (so `strata diff`
//! would find 0 differing cells). The server is stopped at the end, also when the test fails.
//!
//! Without Java or pyspark (no venv and no network to make one) the test fails when `CI=true`
//! and otherwise says loudly that it did not run.

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use strata_tests::{strata, temp_dir};

use super::sql_pushdown::{assert_same_tables, ok, workspace};

/// The pyspark release the venv holds (its Spark Connect server and client).
const PYSPARK: &str = "pyspark[connect]==4.3.0";
/// How long the server may take to listen (about 35 s on this 2-core machine under load).
const START_TIMEOUT: Duration = Duration::from_secs(300);

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn not_run(why: &str) -> Option<(PathBuf, PathBuf)> {
    if in_ci() {
        panic!("{why}: CI must run the Spark Connect test");
    }
    eprintln!("NOT RUN: spark_connect's test ({why})");
    None
}

/// The venv's python with pyspark, and pyspark's own folder (its SPARK_HOME), made on first use.
fn spark_python() -> Option<(PathBuf, PathBuf)> {
    if !Command::new("java")
        .arg("-version")
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        return not_run("no `java` on PATH (Debian: openjdk-17-jre-headless)");
    }
    let venv = workspace().join("target").join("spark-venv");
    let python = venv.join("bin").join("python");
    let home = |p: &Path| -> Option<PathBuf> {
        let out = Command::new(p)
            .args([
                "-c",
                "import pyspark, os; print(os.path.dirname(pyspark.__file__))",
            ])
            .output()
            .ok()?;
        let dir = String::from_utf8(out.stdout).ok()?.trim().to_string();
        (out.status.success() && Path::new(&dir).join("bin/spark-submit").exists())
            .then(|| PathBuf::from(dir))
    };
    if home(&python).is_none() {
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(&python)
                .args(["-m", "pip", "install", "--quiet", PYSPARK])
                .status()
                .is_ok_and(|s| s.success());
        if !made {
            return not_run(&format!(
                "no pyspark in {} and it could not be installed",
                venv.display()
            ));
        }
    }
    match home(&python) {
        Some(h) => Some((python, h)),
        None => not_run(&format!(
            "pyspark in {} has no spark-submit",
            venv.display()
        )),
    }
}

/// A local Spark Connect server, in its own process group; dropping it stops the group.
struct Server {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Server {
    fn start(spark_home: &Path, dir: &Path) -> Server {
        // A free port: bound and released (the server binds it a moment later).
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log = dir.join("spark-server.log");
        let log_file = std::fs::File::create(&log).expect("server log");
        let conf = |k: &str, v: &str| ["--conf".to_string(), format!("{k}={v}")];
        let dir_text = dir.to_str().expect("utf-8 temp dir");
        let mut command = Command::new(spark_home.join("bin/spark-submit"));
        command
            .env("SPARK_HOME", spark_home)
            .current_dir(dir)
            .args([
                "--class",
                "org.apache.spark.sql.connect.service.SparkConnectServer",
                "--master",
                "local[2]",
                "--driver-memory",
                "1g",
            ])
            .args(conf("spark.connect.grpc.binding.address", "127.0.0.1"))
            .args(conf("spark.connect.grpc.binding.port", &port.to_string()))
            .args(conf("spark.ui.enabled", "false"))
            // Sessions start 14 hours ahead of UTC: strata must set its own session to UTC for a
            // TIMESTAMP's date to be the record-level reader's (the `udal_instants` table).
            .args(conf("spark.sql.session.timeZone", "Pacific/Kiritimati"))
            // A few hundred stratum rows need no 200 shuffle partitions.
            .args(conf("spark.sql.shuffle.partitions", "2"))
            .args(conf("spark.local.dir", dir_text))
            .args(conf(
                "spark.sql.warehouse.dir",
                &format!("{dir_text}/warehouse"),
            ))
            .arg("spark-internal")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log"))
            .stderr(log_file)
            .process_group(0);
        let child = command.spawn().expect("start spark-submit");
        let mut server = Server {
            child,
            url: format!("sc://127.0.0.1:{port}"),
            log,
        };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "the Spark Connect server exited ({status}):\n{}",
                    server.log_tail()
                );
            }
            if started.elapsed() > START_TIMEOUT {
                panic!(
                    "the Spark Connect server did not listen within {:?}:\n{}",
                    START_TIMEOUT,
                    server.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        eprintln!(
            "Spark Connect server at {} after {:.1} s",
            server.url,
            started.elapsed().as_secs_f64()
        );
        server
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let signal = |s: &str| {
            Command::new("kill")
                .args([s, "--", &group])
                .stderr(Stdio::null())
                .status()
                .ok();
        };
        signal("-TERM");
        let asked = Instant::now();
        while asked.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        signal("-KILL");
        self.child.wait().ok();
    }
}

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let value = f();
    eprintln!("{what}: {:.1} s", started.elapsed().as_secs_f64());
    value
}

#[test]
fn spark_connect_counts_give_the_record_level_outputs() {
    let Some((python, spark_home)) = timed("pyspark venv", spark_python) else {
        return;
    };
    let tmp = temp_dir("spark-connect");
    let dir = tmp.path();
    let p = |x: &Path| x.to_str().unwrap().to_string();
    let recipe = workspace().join("configs/did-2023-24-icb.toml");
    let synth = dir.join("synth");
    ok(&[
        "synth",
        &p(&recipe),
        "--out",
        &p(&synth),
        "--scale",
        "0.002",
    ]);
    let (activity, population) = (synth.join("activity.parquet"), synth.join("population.csv"));
    let record_level = dir.join("record-level");
    ok(&[
        "run",
        &p(&recipe),
        "--activity",
        &p(&activity),
        "--population",
        &p(&population),
        "--out",
        &p(&record_level),
    ]);
    let udal = workspace().join("tests/fixtures/extracts/udal");
    let mapping = udal.join("mapping.toml");
    let udal_population = workspace().join("tests/fixtures/extracts/forms/population.csv");
    let udal_record_level = dir.join("udal-record-level");
    ok(&[
        "run",
        &p(&recipe),
        "--activity",
        &p(&udal.join("udal-dids.parquet")),
        "--mapping",
        &p(&mapping),
        "--population",
        &p(&udal_population),
        "--out",
        &p(&udal_record_level),
    ]);

    let server = timed("server start", || Server::start(&spark_home, dir));
    let registered = timed("tables registered", || {
        Command::new(&python)
            .arg(workspace().join("tests/sql/spark_tables.py"))
            .arg(&server.url)
            .arg(format!("activity_parquet={}", p(&activity)))
            .arg(format!(
                "activity_csv=activity_parquet:{}",
                p(&dir.join("csv"))
            ))
            .arg(format!("udal_dids={}", p(&udal.join("udal-dids.parquet"))))
            .arg("udal_instants=udal_dids~DidDate3")
            .status()
            .expect("run python")
    });
    assert!(
        registered.success(),
        "spark_tables.py:\n{}",
        server.log_tail()
    );

    let run = |table: &str, extra: &[&str], population: &Path, out: &Path| {
        let mut args = vec![
            "run".to_string(),
            p(&recipe),
            "--spark".into(),
            server.url.clone(),
            "--table".into(),
            table.into(),
            "--population".into(),
            p(population),
            "--out".into(),
            p(out),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, _, err) = timed(&format!("strata run --spark --table {table}"), || {
            strata(&args)
        });
        assert_eq!(code, 0, "strata {args:?}: {err}\n{}", server.log_tail());
    };
    for table in ["activity_parquet", "activity_csv"] {
        let out = dir.join(format!("out-{table}"));
        run(table, &[], &population, &out);
        assert_same_tables(&record_level, &out);
    }
    for table in ["udal_dids", "udal_instants"] {
        let out = dir.join(format!("out-{table}"));
        run(table, &["--mapping", &p(&mapping)], &udal_population, &out);
        assert_same_tables(&udal_record_level, &out);
    }
    drop(server);
}

/// A server that is not there is a clear error naming the address, at once (no retries).
#[test]
fn an_absent_server_is_named() {
    let closed = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let url = format!("sc://127.0.0.1:{closed}");
    let recipe = workspace().join("configs/example.toml");
    let started = Instant::now();
    let (code, _, err) = strata(&["run", recipe.to_str().unwrap(), "--spark", &url]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&url) && err.contains("Spark Connect"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30), "{err}");
}
