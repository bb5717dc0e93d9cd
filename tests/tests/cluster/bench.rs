//! `tallyctl bench` with tiny sizes against real nodes: every transfer answered `ok`, the final
//! line is JSON whose figures add up, and the ledger still balances afterwards.

use serde_json::Value;

use crate::harness::{output_text, TestCluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_sends_every_transfer_and_ends_with_a_json_line() {
    let cluster = TestCluster::start(3, &[]).await;
    for (batch, clients, hot) in [("1", "8", false), ("50", "2", true)] {
        let mut args = vec![
            "--json",
            "bench",
            "--accounts",
            "20",
            "--transfers",
            "200",
            "--batch",
            batch,
            "--clients",
            clients,
        ];
        if hot {
            args.push("--hot");
        }
        let output = cluster.tallyctl(&args);
        assert!(output.status.success(), "{}", output_text(&output));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(stdout.lines().count(), 1, "stdout holds only the JSON line");
        let report: Value = serde_json::from_str(stdout.trim()).expect("a JSON line");
        assert_eq!(report["transfers"], 200, "{report}");
        assert_eq!(report["errors"], 0, "{report}");
        assert_eq!(report["failed_requests"], 0, "{report}");
        assert_eq!(report["hot"], hot, "{report}");
        let batch: u64 = batch.parse().unwrap();
        assert_eq!(report["requests"], 200 / batch, "{report}");
        assert!(
            report["transfers_per_sec"].as_f64().unwrap() > 0.0,
            "{report}"
        );
        let p = |name: &str| report[name].as_f64().unwrap();
        assert!(p("p50_ms") > 0.0 && p("p50_ms") <= p("p99_ms") && p("p99_ms") <= p("p999_ms"));
    }
    cluster.wait_caught_up().await;
    let verify = cluster.tallyctl(&["verify"]);
    assert!(verify.status.success(), "{}", output_text(&verify));

    // A batch over the node's limit is refused before anything is sent, naming the limit.
    let refused = cluster.tallyctl(&["bench", "--batch", "9000"]);
    assert_eq!(refused.status.code(), Some(1), "{}", output_text(&refused));
    assert!(output_text(&refused).contains("--batch must be between 1 and 8192"));
}
