//! `tally-pay bench` drives real checkouts through tally-pay, the cluster and the sandbox PSP and
//! ends with one JSON line of figures that add up.

use std::process::{Command, Stdio};

use serde_json::Value;

use crate::env::PayEnv;
use crate::harness::binary;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_runs_checkouts_and_reports_a_json_line() {
    let env = PayEnv::start("", &[]).await;
    let output = Command::new(binary("tally-pay"))
        .args(["bench", "--payments", "30", "--clients", "4", "--json"])
        .args([
            "--url",
            &env.pay_url,
            "--psp",
            &env.psp_url,
            "--key",
            &env.api_key,
        ])
        .env_remove("TALLY_PAY_KEY")
        .stdin(Stdio::null())
        .output()
        .expect("run tally-pay bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let last = stdout.lines().last().expect("a final line");
    let report: Value = serde_json::from_str(last).expect("the last line is JSON");
    assert_eq!(report["payments"], 30, "{report}");
    assert_eq!(report["failed"], 0, "{report}");
    let orders = report["orders"].as_u64().unwrap();
    assert!((30..=90).contains(&orders), "{report}");
    assert!(
        report["payments_per_sec"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    let p = |name: &str| report[name].as_f64().unwrap();
    assert!(p("p50_ms") > 0.0 && p("p50_ms") <= p("p99_ms") && p("p99_ms") <= p("p999_ms"));
    // 30 succeeded payments exist, and the ledger still balances.
    let listed = env.psp_charges().await;
    assert!(listed.len() >= 30, "{} charges at the PSP", listed.len());
    env.verify_ledger();

    // Without a key it says what to do, exit code 2.
    let keyless = Command::new(binary("tally-pay"))
        .args(["bench", "--payments", "1", "--url", &env.pay_url])
        .env_remove("TALLY_PAY_KEY")
        .env("TALLY_DEV_DIR", "/nonexistent")
        .env("TMPDIR", "/nonexistent")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(keyless.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&keyless.stderr).contains("no API key"));
}
