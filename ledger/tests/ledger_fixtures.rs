//! Scenario tests of the ledger state machine: every `tests/fixtures/ledger/*.txt` is one scenario.
//!
//! Format (one item per line, `#` starts a comment):
//!
//! ```text
//! at 1000                         # context timestamp (ns) of the following batches
//! accounts [-> too_many_events]   # one command = one batch (unless inside batch/end)
//!   id=1 ledger=1 code=10 flags=history,closed [repeat=N] [-> result]   # default: ok
//! transfers
//!   id=10 debit=2 credit=1 amount=100 ledger=1 code=1 [-> result]
//! txn -> committed [versions=1,0] | condition_failed index=I actual=V | record_invalid index=I
//!      | account_failed index=I result=R | transfer_failed index=I result=R | too_many_operations
//!   if_version ns/key 2 | if_absent ns/key | put ns/key value | delete ns/key
//!   account <account fields> | transfer <transfer fields>
//! batch ... end                   # the commands in between share one LedgerBatch
//! expire                          # an empty batch: only pending expiry runs
//! expect account 1 debits_posted=0 credits_posted=100 flags=history ...
//! expect transfer 10 amount=100 debit=2 timestamp=1001 ...
//! expect pending 10 posted        # pending | posted | voided | expired
//! expect record ns/key version=2 value=abc | expect record ns/key absent
//! expect history 1 count=2        # balance history entries of an account
//! expect account_transfers 1 count=3
//! expect last_timestamp 1005
//! ```
//!
//! Numbers are decimal, `0x` hex, or `max` (the field type's maximum). In record keys and values a
//! token `c*N` stands for the character `c` repeated N times. After every batch the runner checks
//! per-ledger conservation, account flags and strictly increasing timestamps. Across all fixtures
//! every result code of both enums must be expected at least once.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use tally_ledger::{
    Account, AccountFlags, ApplyContext, Command, CommandResult, Condition, CreateAccountResult,
    CreateTransferResult, LedgerBatch, LedgerState, MemState, PendingStatus, RecordKey, RecordOp,
    Transfer, TransferFlags, Txn, TxnOutcome,
};

/// Result names that some fixture expected, per enum.
#[derive(Default)]
struct Coverage {
    accounts: BTreeSet<String>,
    transfers: BTreeSet<String>,
}

#[test]
fn fixtures() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ledger");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixture directory")
        .map(|entry| entry.expect("fixture entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "txt"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no fixtures in {}", dir.display());
    let mut coverage = Coverage::default();
    for path in &paths {
        check(path, &mut coverage);
    }
    check_coverage(&coverage);
}

fn check_coverage(coverage: &Coverage) {
    let missing_accounts: Vec<&str> = CreateAccountResult::ALL
        .iter()
        .map(|r| r.name())
        .filter(|name| !coverage.accounts.contains(*name))
        .collect();
    let missing_transfers: Vec<&str> = CreateTransferResult::ALL
        .iter()
        .map(|r| r.name())
        .filter(|name| !coverage.transfers.contains(*name))
        .collect();
    assert!(
        missing_accounts.is_empty() && missing_transfers.is_empty(),
        "result codes no fixture expects: accounts {missing_accounts:?}, \
         transfers {missing_transfers:?}"
    );
}

/// Runs one fixture file.
fn check(path: &Path, coverage: &mut Coverage) {
    let text = std::fs::read_to_string(path).expect("read fixture");
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let items = parse(&text).unwrap_or_else(|(line, error)| panic!("{name}:{line}: {error}"));
    let mut runner = Runner {
        state: MemState::new(),
        at: 0,
        batch: None,
        coverage,
    };
    for item in items {
        let line = item.line;
        if let Err(error) = runner.run(item.kind) {
            panic!("{name}:{line}: {error}");
        }
    }
    assert!(runner.batch.is_none(), "{name}: `batch` without `end`");
}

// --- Parsing -------------------------------------------------------------------------------------

struct Item {
    line: usize,
    kind: ItemKind,
}

enum ItemKind {
    At(u64),
    BatchStart,
    BatchEnd,
    Expire,
    Command(CommandBlock),
    Expect(Vec<String>),
}

/// A command with what the fixture expects of it.
struct CommandBlock {
    line: usize,
    command: Command,
    expected: Expected,
}

enum Expected {
    Accounts(Vec<String>),
    Transfers(Vec<String>),
    Txn(Vec<String>),
    TooManyEvents,
}

type ParseResult<T> = Result<T, String>;

/// A command block being read: header line number, header text, (line number, text) of its body.
type OpenBlock = (usize, String, Vec<(usize, String)>);

fn parse(text: &str) -> Result<Vec<Item>, (usize, String)> {
    let mut items: Vec<Item> = Vec::new();
    let mut block: Option<OpenBlock> = None;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let content = raw.split('#').next().unwrap_or("").trim_end();
        if content.trim().is_empty() {
            continue;
        }
        if raw.starts_with(' ') || raw.starts_with('\t') {
            match block.as_mut() {
                Some((_, _, body)) => body.push((line, content.trim().to_string())),
                None => return Err((line, "indented line outside a block".into())),
            }
            continue;
        }
        if let Some((start, header, body)) = block.take() {
            items.push(parse_block(start, &header, body)?);
        }
        let word = content.split_whitespace().next().unwrap_or("");
        if matches!(word, "accounts" | "transfers" | "txn") {
            block = Some((line, content.to_string(), Vec::new()));
        } else {
            let kind = parse_simple(content).map_err(|error| (line, error))?;
            items.push(Item { line, kind });
        }
    }
    if let Some((start, header, body)) = block.take() {
        items.push(parse_block(start, &header, body)?);
    }
    Ok(items)
}

fn parse_simple(content: &str) -> ParseResult<ItemKind> {
    let words: Vec<String> = content.split_whitespace().map(str::to_string).collect();
    match words[0].as_str() {
        "at" if words.len() == 2 => Ok(ItemKind::At(
            parse_number(&words[1], u64::MAX.into())? as u64
        )),
        "batch" => Ok(ItemKind::BatchStart),
        "end" => Ok(ItemKind::BatchEnd),
        "expire" => Ok(ItemKind::Expire),
        "expect" => Ok(ItemKind::Expect(words[1..].to_vec())),
        other => Err(format!("unknown item {other:?}")),
    }
}

/// Splits `text -> result` into the fields part and the expected result (default `ok`).
fn split_result(text: &str) -> (&str, String) {
    match text.split_once("->") {
        Some((fields, result)) => (fields.trim(), result.trim().to_string()),
        None => (text.trim(), "ok".to_string()),
    }
}

fn parse_block(
    line: usize,
    header: &str,
    body: Vec<(usize, String)>,
) -> Result<Item, (usize, String)> {
    let (word, header_result) = split_result(header);
    let block = match word {
        "accounts" => parse_events(
            line,
            &header_result,
            body,
            parse_account,
            Command::CreateAccounts,
            Expected::Accounts,
        )?,
        "transfers" => parse_events(
            line,
            &header_result,
            body,
            parse_transfer,
            Command::CreateTransfers,
            Expected::Transfers,
        )?,
        _ => parse_txn(line, &header_result, body)?,
    };
    Ok(Item {
        line,
        kind: ItemKind::Command(block),
    })
}

fn parse_events<E: Clone>(
    line: usize,
    header_result: &str,
    body: Vec<(usize, String)>,
    parse_event: fn(&str) -> ParseResult<(E, usize)>,
    to_command: fn(Vec<E>) -> Command,
    to_expected: fn(Vec<String>) -> Expected,
) -> Result<CommandBlock, (usize, String)> {
    let mut events = Vec::new();
    let mut results = Vec::new();
    for (event_line, text) in body {
        let (fields, result) = split_result(&text);
        let (event, repeat) = parse_event(fields).map_err(|error| (event_line, error))?;
        for _ in 0..repeat {
            events.push(event.clone());
            results.push(result.clone());
        }
    }
    let expected = match header_result {
        "ok" => to_expected(results),
        "too_many_events" => Expected::TooManyEvents,
        other => return Err((line, format!("unknown block result {other:?}"))),
    };
    Ok(CommandBlock {
        line,
        command: to_command(events),
        expected,
    })
}

/// Parses `key=value` pairs; `repeat=N` is handled by the caller (ids are then incremented).
fn fields(text: &str) -> ParseResult<Vec<(String, String)>> {
    text.split_whitespace()
        .map(|pair| {
            pair.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| format!("expected key=value, got {pair:?}"))
        })
        .collect()
}

fn parse_number(text: &str, max: u128) -> ParseResult<u128> {
    let value = if text == "max" {
        max
    } else if let Some(hex) = text.strip_prefix("0x") {
        u128::from_str_radix(hex, 16).map_err(|e| format!("{text:?}: {e}"))?
    } else {
        text.parse::<u128>().map_err(|e| format!("{text:?}: {e}"))?
    };
    if value > max {
        return Err(format!("{text} does not fit"));
    }
    Ok(value)
}

fn num<T: TryFrom<u128>>(text: &str, max: T) -> ParseResult<T>
where
    u128: From<T>,
{
    let value = parse_number(text, u128::from(max))?;
    T::try_from(value).map_err(|_| format!("{text} does not fit"))
}

/// Parses an account; returns it with its repeat count. Repeated accounts get consecutive ids.
fn parse_account(text: &str) -> ParseResult<(Account, usize)> {
    let mut account = Account::default();
    let mut repeat = 1;
    for (key, value) in fields(text)? {
        let v = value.as_str();
        match key.as_str() {
            "id" => account.id = num(v, u128::MAX)?,
            "ledger" => account.ledger = num(v, u32::MAX)?,
            "code" => account.code = num(v, u16::MAX)?,
            "flags" => account.flags = AccountFlags::from_names(v)?,
            "flag_bits" => account.flags = AccountFlags(num(v, u16::MAX)?),
            "ud128" => account.user_data_128 = num(v, u128::MAX)?,
            "ud64" => account.user_data_64 = num(v, u64::MAX)?,
            "ud32" => account.user_data_32 = num(v, u32::MAX)?,
            "timestamp" => account.timestamp = num(v, u64::MAX)?,
            "debits_pending" => account.debits_pending = num(v, u128::MAX)?,
            "debits_posted" => account.debits_posted = num(v, u128::MAX)?,
            "credits_pending" => account.credits_pending = num(v, u128::MAX)?,
            "credits_posted" => account.credits_posted = num(v, u128::MAX)?,
            "repeat" => repeat = num(v, u32::MAX)? as usize,
            other => return Err(format!("unknown account field {other:?}")),
        }
    }
    Ok((account, repeat))
}

fn parse_transfer(text: &str) -> ParseResult<(Transfer, usize)> {
    let mut transfer = Transfer::default();
    let mut repeat = 1;
    for (key, value) in fields(text)? {
        let v = value.as_str();
        match key.as_str() {
            "id" => transfer.id = num(v, u128::MAX)?,
            "debit" => transfer.debit_account_id = num(v, u128::MAX)?,
            "credit" => transfer.credit_account_id = num(v, u128::MAX)?,
            "amount" => transfer.amount = num(v, u128::MAX)?,
            "pending_id" => transfer.pending_id = num(v, u128::MAX)?,
            "ud128" => transfer.user_data_128 = num(v, u128::MAX)?,
            "ud64" => transfer.user_data_64 = num(v, u64::MAX)?,
            "ud32" => transfer.user_data_32 = num(v, u32::MAX)?,
            "timeout" => transfer.timeout = num(v, u32::MAX)?,
            "ledger" => transfer.ledger = num(v, u32::MAX)?,
            "code" => transfer.code = num(v, u16::MAX)?,
            "flags" => transfer.flags = TransferFlags::from_names(v)?,
            "flag_bits" => transfer.flags = TransferFlags(num(v, u16::MAX)?),
            "timestamp" => transfer.timestamp = num(v, u64::MAX)?,
            "repeat" => repeat = num(v, u32::MAX)? as usize,
            other => return Err(format!("unknown transfer field {other:?}")),
        }
    }
    Ok((transfer, repeat))
}

/// Expands `c*N` into N copies of `c`; any other token is taken literally.
fn expand(token: &str) -> Vec<u8> {
    let mut chars = token.chars();
    if let (Some(c), Some('*')) = (chars.next(), chars.next()) {
        if let Ok(count) = chars.as_str().parse::<usize>() {
            return c.to_string().repeat(count).into_bytes();
        }
    }
    token.as_bytes().to_vec()
}

fn parse_key(text: &str) -> ParseResult<RecordKey> {
    let (namespace, key) = text.split_once('/').unwrap_or((text, ""));
    let namespace = String::from_utf8(expand(namespace)).map_err(|e| e.to_string())?;
    Ok(RecordKey {
        namespace,
        key: expand(key),
    })
}

fn parse_txn(
    line: usize,
    header_result: &str,
    body: Vec<(usize, String)>,
) -> Result<CommandBlock, (usize, String)> {
    let mut txn = Txn::default();
    for (op_line, text) in body {
        parse_txn_line(&mut txn, &text).map_err(|error| (op_line, error))?;
    }
    let expected = if header_result == "too_many_events" {
        Expected::TooManyEvents
    } else {
        let words = header_result
            .split_whitespace()
            .map(str::to_string)
            .collect();
        Expected::Txn(words)
    };
    Ok(CommandBlock {
        line,
        command: Command::Txn(txn),
        expected,
    })
}

fn parse_txn_line(txn: &mut Txn, text: &str) -> ParseResult<()> {
    let (word, rest) = text.split_once(' ').unwrap_or((text, ""));
    let args: Vec<&str> = rest.split_whitespace().collect();
    let arg = |index: usize| {
        args.get(index)
            .copied()
            .ok_or_else(|| format!("{word}: missing argument"))
    };
    let repeat = args
        .iter()
        .find_map(|a| a.strip_prefix("repeat="))
        .map_or(Ok(1), |n| num(n, u32::MAX))?;
    for _ in 0..repeat {
        match word {
            "if_version" => txn.conditions.push(Condition::VersionEquals {
                key: parse_key(arg(0)?)?,
                version: num(arg(1)?, u64::MAX)?,
            }),
            "if_absent" => txn.conditions.push(Condition::Absent {
                key: parse_key(arg(0)?)?,
            }),
            "put" => txn.record_ops.push(RecordOp::Put {
                key: parse_key(arg(0)?)?,
                value: args.get(1).map(|v| expand(v)).unwrap_or_default(),
            }),
            "delete" => txn.record_ops.push(RecordOp::Delete {
                key: parse_key(arg(0)?)?,
            }),
            "account" => txn.accounts.push(parse_account(rest)?.0),
            "transfer" => txn.transfers.push(parse_transfer(rest)?.0),
            other => return Err(format!("unknown txn line {other:?}")),
        }
    }
    Ok(())
}

// --- Running -------------------------------------------------------------------------------------

struct Runner<'c> {
    state: MemState,
    at: u64,
    /// Commands collected between `batch` and `end`.
    batch: Option<Vec<CommandBlock>>,
    coverage: &'c mut Coverage,
}

impl Runner<'_> {
    fn run(&mut self, item: ItemKind) -> Result<(), String> {
        match item {
            ItemKind::At(at) => self.at = at,
            ItemKind::BatchStart if self.batch.is_none() => self.batch = Some(Vec::new()),
            ItemKind::BatchStart => return Err("nested batch".into()),
            ItemKind::BatchEnd => {
                let blocks = self.batch.take().ok_or("`end` without `batch`")?;
                self.run_batch(blocks)?;
            }
            ItemKind::Expire => self.run_batch(Vec::new())?,
            ItemKind::Command(block) => match self.batch.as_mut() {
                Some(blocks) => blocks.push(block),
                None => self.run_batch(vec![block])?,
            },
            ItemKind::Expect(words) => self.expect(&words)?,
        }
        Ok(())
    }

    /// Applies commands as one batch, commits, and checks the results and the ledger invariants.
    fn run_batch(&mut self, blocks: Vec<CommandBlock>) -> Result<(), String> {
        let before = self.state.last_timestamp();
        let mut batch = LedgerBatch::new(
            &self.state,
            &ApplyContext {
                timestamp_ns: self.at,
            },
        );
        batch.expire_pending();
        let mut failures = Vec::new();
        for block in &blocks {
            let result = batch.apply(&block.command);
            if let Err(error) = compare(&result, &block.expected, self.coverage) {
                failures.push(format!("command at line {}: {error}", block.line));
            }
        }
        let mutations = batch.into_mutations();
        if let Some(transfer) = mutations.transfers.values().find(|t| t.timestamp <= before) {
            failures.push(format!("transfer {} reuses an old timestamp", transfer.id));
        }
        self.state.commit(mutations);
        if !self.state.is_consistent() {
            failures.push("ledger not balanced or an account breaks its flags".into());
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("; "))
        }
    }

    fn expect(&self, words: &[String]) -> Result<(), String> {
        let word = |i: usize| {
            words
                .get(i)
                .map(String::as_str)
                .ok_or("expect: missing argument")
        };
        match word(0)? {
            "account" => self.expect_account(num(word(1)?, u128::MAX)?, &words[2..]),
            "transfer" => self.expect_transfer(num(word(1)?, u128::MAX)?, &words[2..]),
            "pending" => self.expect_pending(num(word(1)?, u128::MAX)?, word(2)?),
            "record" => self.expect_record(word(1)?, &words[2..]),
            "history" => {
                let id = num(word(1)?, u128::MAX)?;
                expect_count(
                    self.state.balances(id, 0, 0, usize::MAX, false).len(),
                    word(2)?,
                )
            }
            "account_transfers" => {
                let id = num(word(1)?, u128::MAX)?;
                expect_count(
                    self.state
                        .account_transfers(id, 0, 0, usize::MAX, false)
                        .len(),
                    word(2)?,
                )
            }
            "last_timestamp" => {
                let want = num(word(1)?, u64::MAX)?;
                check_value("last_timestamp", self.state.last_timestamp(), want)
            }
            other => Err(format!("unknown expectation {other:?}")),
        }
    }

    fn expect_account(&self, id: u128, checks: &[String]) -> Result<(), String> {
        let account = self
            .state
            .account(id)
            .ok_or(format!("account {id} not found"))?;
        for check in checks {
            let (key, value) = check
                .split_once('=')
                .ok_or(format!("bad check {check:?}"))?;
            let actual: String = match key {
                "debits_pending" => account.debits_pending.to_string(),
                "debits_posted" => account.debits_posted.to_string(),
                "credits_pending" => account.credits_pending.to_string(),
                "credits_posted" => account.credits_posted.to_string(),
                "timestamp" => account.timestamp.to_string(),
                "flags" => account.flags.names().join(","),
                other => return Err(format!("unknown account field {other:?}")),
            };
            check_text(
                &format!("account {id} {key}"),
                &actual,
                &normalise(key, value)?,
            )?;
        }
        Ok(())
    }

    fn expect_transfer(&self, id: u128, checks: &[String]) -> Result<(), String> {
        let transfer = self
            .state
            .transfer(id)
            .ok_or(format!("transfer {id} not found"))?;
        for check in checks {
            let (key, value) = check
                .split_once('=')
                .ok_or(format!("bad check {check:?}"))?;
            let actual: String = match key {
                "amount" => transfer.amount.to_string(),
                "debit" => transfer.debit_account_id.to_string(),
                "credit" => transfer.credit_account_id.to_string(),
                "ledger" => transfer.ledger.to_string(),
                "code" => transfer.code.to_string(),
                "timestamp" => transfer.timestamp.to_string(),
                "flags" => transfer.flags.names().join(","),
                other => return Err(format!("unknown transfer field {other:?}")),
            };
            check_text(
                &format!("transfer {id} {key}"),
                &actual,
                &normalise(key, value)?,
            )?;
        }
        Ok(())
    }

    fn expect_pending(&self, id: u128, status: &str) -> Result<(), String> {
        let actual = match self.state.pending_status(id) {
            Some(PendingStatus::Pending) => "pending",
            Some(PendingStatus::Posted) => "posted",
            Some(PendingStatus::Voided) => "voided",
            Some(PendingStatus::Expired) => "expired",
            None => "none",
        };
        check_text(&format!("pending {id}"), actual, status)
    }

    fn expect_record(&self, key: &str, checks: &[String]) -> Result<(), String> {
        let record = self.state.record(&parse_key(key)?);
        if checks.iter().any(|c| c == "absent") {
            return match record {
                None => Ok(()),
                Some(r) => Err(format!("record {key} exists with version {}", r.version)),
            };
        }
        let record = record.ok_or(format!("record {key} not found"))?;
        for check in checks {
            let (field, value) = check
                .split_once('=')
                .ok_or(format!("bad check {check:?}"))?;
            match field {
                "version" => check_value("version", record.version, num(value, u64::MAX)?)?,
                "value" => check_text("value", &String::from_utf8_lossy(&record.value), value)?,
                other => return Err(format!("unknown record field {other:?}")),
            }
        }
        Ok(())
    }
}

/// Numbers in expectations may be spelled `max`/hex; flags compare as canonical name lists.
fn normalise(key: &str, value: &str) -> ParseResult<String> {
    match key {
        "flags" => Ok(value.to_string()),
        "timestamp" => Ok(parse_number(value, u64::MAX.into())?.to_string()),
        "ledger" => Ok(parse_number(value, u32::MAX.into())?.to_string()),
        "code" => Ok(parse_number(value, u16::MAX.into())?.to_string()),
        _ => Ok(parse_number(value, u128::MAX)?.to_string()),
    }
}

fn expect_count(actual: usize, spec: &str) -> Result<(), String> {
    let want = spec
        .strip_prefix("count=")
        .ok_or(format!("expected count=N, got {spec:?}"))?;
    check_value("count", actual as u64, num(want, u64::MAX)?)
}

fn check_value(what: &str, actual: u64, want: u64) -> Result<(), String> {
    if actual == want {
        Ok(())
    } else {
        Err(format!("{what}: expected {want}, got {actual}"))
    }
}

fn check_text(what: &str, actual: &str, want: &str) -> Result<(), String> {
    if actual == want {
        Ok(())
    } else {
        Err(format!("{what}: expected {want:?}, got {actual:?}"))
    }
}

fn compare(
    result: &CommandResult,
    expected: &Expected,
    coverage: &mut Coverage,
) -> Result<(), String> {
    match (result, expected) {
        (CommandResult::TooManyEvents, Expected::TooManyEvents) => Ok(()),
        (CommandResult::Accounts(actual), Expected::Accounts(want)) => {
            let names: Vec<&str> = actual.iter().map(|r| r.name()).collect();
            coverage.accounts.extend(want.iter().cloned());
            compare_names(&names, want)
        }
        (CommandResult::Transfers(actual), Expected::Transfers(want)) => {
            let names: Vec<&str> = actual.iter().map(|r| r.name()).collect();
            coverage.transfers.extend(want.iter().cloned());
            compare_names(&names, want)
        }
        (CommandResult::Txn(txn), Expected::Txn(want)) => compare_txn(txn, want, coverage),
        (other, _) => Err(format!("unexpected command result {other:?}")),
    }
}

fn compare_names(actual: &[&str], want: &[String]) -> Result<(), String> {
    for name in want {
        if CreateAccountResult::from_name(name).is_none()
            && CreateTransferResult::from_name(name).is_none()
        {
            return Err(format!("unknown result name {name:?}"));
        }
    }
    if actual.len() != want.len() || actual.iter().zip(want).any(|(a, w)| a != w) {
        return Err(format!("results: expected {want:?}, got {actual:?}"));
    }
    Ok(())
}

/// Renders a Txn result in the fixture's spelling, so the comparison is one string comparison.
fn compare_txn(
    result: &tally_ledger::TxnResult,
    want: &[String],
    coverage: &mut Coverage,
) -> Result<(), String> {
    let actual = match &result.outcome {
        TxnOutcome::Committed => {
            let versions: Vec<String> = result.record_versions.iter().map(u64::to_string).collect();
            if want.iter().any(|w| w.starts_with("versions=")) {
                format!("committed versions={}", versions.join(","))
            } else {
                "committed".to_string()
            }
        }
        TxnOutcome::ConditionFailed {
            index,
            actual_version,
        } => {
            format!("condition_failed index={index} actual={actual_version}")
        }
        TxnOutcome::RecordInvalid { index, reason } => {
            if want.iter().any(|w| w.starts_with("reason=")) {
                format!("record_invalid index={index} reason={reason}")
            } else {
                format!("record_invalid index={index}")
            }
        }
        TxnOutcome::AccountFailed { index, result } => {
            coverage.accounts.insert(result.name().to_string());
            format!("account_failed index={index} result={}", result.name())
        }
        TxnOutcome::TransferFailed { index, result } => {
            coverage.transfers.insert(result.name().to_string());
            format!("transfer_failed index={index} result={}", result.name())
        }
        TxnOutcome::TooManyOperations => "too_many_operations".to_string(),
    };
    let want = want.join(" ");
    check_text("txn", &actual, &want)
}
