//! `tallyctl record ...`, `tallyctl dead-letters` and `tallyctl recon`: read-only views of the
//! record space.

use std::process::ExitCode;

use serde_json::{json, Value};
use tally_client::Record;

use crate::cli::RecordCommand;
use crate::output::Table;
use crate::Context;

/// Namespace of tally-pay's dead letters.
const DEAD_LETTER_NAMESPACE: &str = "pay.dead_letter";

/// Namespaces of tally-pay's reconciliation summaries and items.
const RECON_RUN_NAMESPACE: &str = "pay.recon_run";
const RECON_ITEM_NAMESPACE: &str = "pay.recon_item";

/// Namespace of the audit trail (tally-pay's actions and the nodes' membership changes).
const AUDIT_NAMESPACE: &str = "audit";

/// Records read per page of a scan.
const SCAN_PAGE: u32 = 500;

fn value_of(record: &Record) -> Value {
    serde_json::from_slice(&record.value)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&record.value).into_owned()))
}

fn key_of(record: &Record) -> String {
    String::from_utf8_lossy(&record.key.key).into_owned()
}

fn record_json(record: &Record) -> Value {
    json!({
        "key": key_of(record),
        "version": record.version,
        "timestamp": record.timestamp,
        "value": value_of(record),
    })
}

pub async fn run(context: &Context, command: RecordCommand) -> anyhow::Result<ExitCode> {
    match command {
        RecordCommand::Get { namespace, key } => {
            match context
                .client
                .get_record(&namespace, key.as_bytes())
                .await?
            {
                Some(record) => {
                    outln!("{}", serde_json::to_string_pretty(&record_json(&record))?);
                    Ok(ExitCode::SUCCESS)
                }
                None => {
                    eprintln!("no record {namespace}/{key}");
                    Ok(ExitCode::from(1))
                }
            }
        }
        RecordCommand::Scan {
            namespace,
            prefix,
            limit,
        } => {
            let records = scan(context, &namespace, &prefix, limit).await?;
            if context.json {
                outln!(
                    "{}",
                    Value::Array(records.iter().map(record_json).collect())
                );
            } else {
                for record in &records {
                    outln!(
                        "{}\tv{}\t{}",
                        key_of(record),
                        record.version,
                        value_of(record)
                    );
                }
                if records.is_empty() {
                    outln!("no records in {namespace} with prefix {prefix:?}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn scan(
    context: &Context,
    namespace: &str,
    prefix: &str,
    limit: u32,
) -> anyhow::Result<Vec<Record>> {
    let mut records: Vec<Record> = Vec::new();
    let mut after = Vec::new();
    while (records.len() as u32) < limit {
        let page = context
            .client
            .scan_records(
                namespace,
                prefix.as_bytes(),
                &after,
                SCAN_PAGE.min(limit - records.len() as u32),
            )
            .await?;
        let Some(last) = page.last() else { break };
        after = last.key.key.clone();
        records.extend(page);
    }
    Ok(records)
}

pub async fn dead_letters(context: &Context) -> anyhow::Result<ExitCode> {
    let records = scan(context, DEAD_LETTER_NAMESPACE, "", u32::MAX).await?;
    if context.json {
        outln!("{}", Value::Array(records.iter().map(value_of).collect()));
        return Ok(ExitCode::SUCCESS);
    }
    if records.is_empty() {
        outln!("no dead letters");
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new(&["kind", "id", "amount", "currency", "attempts", "reason"]);
    for record in &records {
        let v = value_of(record);
        let text = |field: &str| match &v[field] {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        let reason = format!(
            "{}: {}",
            v["reason"]["code"].as_str().unwrap_or(""),
            v["reason"]["message"].as_str().unwrap_or("")
        );
        table.push(vec![
            text("kind"),
            text("id"),
            text("amount"),
            text("currency"),
            text("attempts"),
            reason,
        ]);
    }
    out!("{}", table.render());
    Ok(ExitCode::SUCCESS)
}

/// Audit entries newest first, after the entry `after`, at most `limit` (only those whose
/// action starts with `action`, when given).
pub async fn audit(
    context: &Context,
    limit: u32,
    after: Option<&str>,
    action: Option<&str>,
) -> anyhow::Result<ExitCode> {
    if let Some(after) = after {
        if !after.starts_with("aud_") {
            anyhow::bail!("--after must be an audit entry id (aud_...), the last id of a page");
        }
    }
    let mut entries: Vec<Value> = Vec::new();
    let mut cursor = after.unwrap_or("").as_bytes().to_vec();
    while (entries.len() as u32) < limit {
        let page = context
            .client
            .scan_records(AUDIT_NAMESPACE, b"aud_", &cursor, SCAN_PAGE)
            .await?;
        let Some(last) = page.last() else { break };
        cursor = last.key.key.clone();
        let wanted = page.iter().map(value_of).filter(|entry| {
            action.is_none_or(|prefix| text_of(&entry["action"]).starts_with(prefix))
        });
        entries.extend(wanted.take((limit as usize).saturating_sub(entries.len())));
    }
    if context.json {
        outln!("{}", Value::Array(entries));
        return Ok(ExitCode::SUCCESS);
    }
    if entries.is_empty() {
        outln!("no audit entries");
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new(&["id", "time", "actor", "source", "action", "object"]);
    for entry in &entries {
        let time = entry["at_ms"]
            .as_i64()
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|at| at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
            .unwrap_or_default();
        table.push(vec![
            text_of(&entry["id"]),
            time,
            text_of(&entry["actor"]),
            text_of(&entry["source"]),
            text_of(&entry["action"]),
            text_of(&entry["object_id"]),
        ]);
    }
    out!("{}", table.render());
    Ok(ExitCode::SUCCESS)
}

/// A JSON field as text: strings bare, null empty.
fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The stored reconciliation of `date`: the summary, then every item.
pub async fn recon(context: &Context, date: &str) -> anyhow::Result<ExitCode> {
    let run = context
        .client
        .get_record(RECON_RUN_NAMESPACE, date.as_bytes())
        .await?;
    let items = scan(context, RECON_ITEM_NAMESPACE, &format!("{date}/"), u32::MAX).await?;
    let Some(run) = run else {
        eprintln!("{date} was never reconciled (run `tally-pay recon --date {date}`)");
        return Ok(ExitCode::from(1));
    };
    let summary = value_of(&run)["summary"].clone();
    if context.json {
        let items: Vec<Value> = items.iter().map(value_of).collect();
        outln!(
            "{}",
            json!({"date": date, "summary": summary, "items": items})
        );
    } else {
        print_recon(date, &summary, &items);
    }
    let ok = summary["ok"].as_bool().unwrap_or(false);
    Ok(ExitCode::from(if ok { 0 } else { 1 }))
}

fn print_recon(date: &str, summary: &Value, items: &[Record]) {
    outln!("Reconciliation of {date}");
    let mut counts = Table::new(&[
        "lines",
        "matched",
        "missing_in_tally",
        "missing_at_psp",
        "amount_mismatch",
        "status_mismatch",
        "fee_mismatch",
        "resolved",
        "queued",
        "ledger",
    ]);
    let field = |name: &str| text_of(&summary[name]);
    let ledger = if summary["ledger_ok"].as_bool().unwrap_or(false) {
        "ok"
    } else {
        "FAILED"
    };
    counts.push(vec![
        field("lines"),
        field("matched"),
        field("missing_in_tally"),
        field("missing_at_psp"),
        field("amount_mismatch"),
        field("status_mismatch"),
        field("fee_mismatch"),
        field("resolved"),
        field("queued"),
        ledger.to_string(),
    ]);
    out!("{}", counts.render());
    let mut table = Table::new(&[
        "reference",
        "kind",
        "class",
        "resolution",
        "psp",
        "tally",
        "detail",
    ]);
    for record in items {
        let item = value_of(record);
        let side = |evidence: &Value, amount: &str| {
            if evidence.is_null() {
                return "-".to_string();
            }
            format!(
                "{} {} {}",
                text_of(&evidence["status"]),
                text_of(&evidence[amount]),
                text_of(&evidence["currency"])
            )
        };
        table.push(vec![
            text_of(&item["reference"]),
            text_of(&item["kind"]),
            text_of(&item["class"]),
            text_of(&item["resolution"]),
            side(&item["psp"], "amount"),
            side(&item["tally"], "amount"),
            text_of(&item["detail"]),
        ]);
    }
    if items.is_empty() {
        outln!("no items");
    } else {
        out!("{}", table.render());
    }
}
