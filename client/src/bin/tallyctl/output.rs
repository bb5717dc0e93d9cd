//! Human tables and JSON renderings of accounts, transfers and balances. JSON carries u128 values
//! as decimal strings (JSON numbers lose precision past 2^53 in many parsers) and u64/u32 as
//! numbers.

use serde_json::{json, Value};
use tally_client::{
    Account, AccountFlags, Balance, Balances, PendingStatus, Transfer, TransferFlags,
};

/// A plain text table: left-aligned columns separated by two spaces.
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|header| header.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<String>) {
        assert_eq!(
            row.len(),
            self.headers.len(),
            "row width must match the headers"
        );
        self.rows.push(row);
    }

    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|header| header.len()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut text = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            text.push_str(cells.join("  ").trim_end());
            text.push('\n');
        }
        text
    }
}

/// The names of the flags set, lowest bit first; a bit without a name (reserved) as `bit_<n>`.
fn flag_names(named: Vec<&'static str>, bits: u16, known: u16) -> Vec<String> {
    let reserved = (0..16)
        .map(|shift| 1u16 << shift)
        .filter(|bit| bits & !known & bit != 0)
        .map(|bit| format!("bit_{bit}"));
    named
        .into_iter()
        .map(str::to_string)
        .chain(reserved)
        .collect()
}

fn account_flag_names(flags: AccountFlags) -> Vec<String> {
    flag_names(flags.names(), flags.bits(), AccountFlags::KNOWN.bits())
}

fn transfer_flag_names(flags: TransferFlags) -> Vec<String> {
    flag_names(flags.names(), flags.bits(), TransferFlags::KNOWN.bits())
}

fn flags_text(names: Vec<String>) -> String {
    if names.is_empty() {
        "-".to_string()
    } else {
        names.join(",")
    }
}

pub fn account_json(account: &Account) -> Value {
    json!({
        "id": account.id.to_string(),
        "ledger": account.ledger,
        "code": account.code,
        "flags": account.flags.bits(),
        "flag_names": account_flag_names(account.flags),
        "debits_pending": account.debits_pending.to_string(),
        "debits_posted": account.debits_posted.to_string(),
        "credits_pending": account.credits_pending.to_string(),
        "credits_posted": account.credits_posted.to_string(),
        "user_data_128": account.user_data_128.to_string(),
        "user_data_64": account.user_data_64,
        "user_data_32": account.user_data_32,
        "timestamp": account.timestamp,
    })
}

pub fn accounts_table(accounts: &[Account]) -> String {
    let mut table = Table::new(&[
        "id",
        "ledger",
        "code",
        "flags",
        "debits_pending",
        "debits_posted",
        "credits_pending",
        "credits_posted",
    ]);
    for account in accounts {
        let balances = Balances::of_account(account);
        table.push(vec![
            account.id.to_string(),
            account.ledger.to_string(),
            account.code.to_string(),
            flags_text(account_flag_names(account.flags)),
            balances.debits_pending.to_string(),
            balances.debits_posted.to_string(),
            balances.credits_pending.to_string(),
            balances.credits_posted.to_string(),
        ]);
    }
    table.render()
}

pub fn transfer_json(transfer: &Transfer) -> Value {
    json!({
        "id": transfer.id.to_string(),
        "debit_account_id": transfer.debit_account_id.to_string(),
        "credit_account_id": transfer.credit_account_id.to_string(),
        "amount": transfer.amount.to_string(),
        "pending_id": transfer.pending_id.to_string(),
        "ledger": transfer.ledger,
        "code": transfer.code,
        "flags": transfer.flags.bits(),
        "flag_names": transfer_flag_names(transfer.flags),
        "timeout": transfer.timeout,
        "user_data_128": transfer.user_data_128.to_string(),
        "user_data_64": transfer.user_data_64,
        "user_data_32": transfer.user_data_32,
        "timestamp": transfer.timestamp,
    })
}

/// The transfers table with a `state` column (`tallyctl transfer get`).
pub fn transfer_states_table(found: &[(Transfer, Option<PendingStatus>)]) -> String {
    let transfers: Vec<Transfer> = found.iter().map(|(t, _)| t.clone()).collect();
    let mut lines = transfers_table(&transfers)
        .lines()
        .map(str::to_string)
        .collect::<Vec<_>>();
    let width = lines
        .iter()
        .map(|line| line.chars().count())
        .max()
        .unwrap_or(0);
    let states = std::iter::once("state").chain(found.iter().map(|(_, s)| state_name(*s)));
    for (line, state) in lines.iter_mut().zip(states) {
        let pad = width - line.chars().count();
        line.push_str(&" ".repeat(pad + 2));
        line.push_str(state);
    }
    lines.iter().map(|line| format!("{line}\n")).collect()
}

/// `single` (a single-phase transfer), `pending`, `posted`, `voided` or `expired`.
pub fn state_name(state: Option<PendingStatus>) -> &'static str {
    match state {
        None => "single",
        Some(PendingStatus::Pending) => "pending",
        Some(PendingStatus::Posted) => "posted",
        Some(PendingStatus::Voided) => "voided",
        Some(PendingStatus::Expired) => "expired",
    }
}

pub fn transfers_table(transfers: &[Transfer]) -> String {
    let mut table = Table::new(&[
        "id",
        "debit",
        "credit",
        "amount",
        "ledger",
        "code",
        "flags",
        "pending_id",
        "timestamp",
    ]);
    for transfer in transfers {
        let pending_id = transfer.pending_id;
        table.push(vec![
            transfer.id.to_string(),
            transfer.debit_account_id.to_string(),
            transfer.credit_account_id.to_string(),
            transfer.amount.to_string(),
            transfer.ledger.to_string(),
            transfer.code.to_string(),
            flags_text(transfer_flag_names(transfer.flags)),
            if pending_id == 0 {
                "-".to_string()
            } else {
                pending_id.to_string()
            },
            transfer.timestamp.to_string(),
        ]);
    }
    table.render()
}

pub fn balance_json(balance: &Balance) -> Value {
    let balances = Balances::of_history(balance);
    json!({
        "timestamp": balance.timestamp,
        "debits_pending": balances.debits_pending.to_string(),
        "debits_posted": balances.debits_posted.to_string(),
        "credits_pending": balances.credits_pending.to_string(),
        "credits_posted": balances.credits_posted.to_string(),
    })
}

pub fn balances_table(history: &[Balance]) -> String {
    let mut table = Table::new(&[
        "timestamp",
        "debits_pending",
        "debits_posted",
        "credits_pending",
        "credits_posted",
    ]);
    for balance in history {
        let balances = Balances::of_history(balance);
        table.push(vec![
            balance.timestamp.to_string(),
            balances.debits_pending.to_string(),
            balances.debits_posted.to_string(),
            balances.credits_pending.to_string(),
            balances.credits_posted.to_string(),
        ]);
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_client::{AccountBuilder, TransferBuilder};

    #[test]
    fn table_aligns_columns_and_trims_trailing_space() {
        let mut table = Table::new(&["id", "role"]);
        table.push(vec!["1".into(), "leader".into()]);
        table.push(vec!["12345".into(), "-".into()]);
        assert_eq!(table.render(), "id     role\n1      leader\n12345  -\n");
    }

    #[test]
    fn json_carries_u128_as_decimal_strings() {
        let mut account = AccountBuilder::new(u128::MAX, 840, 10)
            .flags(AccountFlags::HISTORY)
            .build();
        account.credits_posted = 1u128 << 64;
        let value = account_json(&account);
        assert_eq!(value["id"], "340282366920938463463374607431768211455");
        assert_eq!(value["credits_posted"], "18446744073709551616");
        assert_eq!(value["debits_posted"], "0");
        assert_eq!(value["ledger"], 840);
        assert_eq!(value["flags"], 8);
        assert_eq!(value["flag_names"], json!(["history"]));

        let transfer = TransferBuilder::post(5, 4, None).build();
        let value = transfer_json(&transfer);
        assert_eq!(value["amount"], u128::MAX.to_string());
        assert_eq!(value["pending_id"], "4");
        assert_eq!(value["flag_names"], json!(["post_pending_transfer"]));
    }

    #[test]
    fn reserved_flag_bits_are_named_by_number() {
        let flags = TransferFlags(TransferFlags::LINKED.bits() | 64);
        assert_eq!(transfer_flag_names(flags), ["linked", "bit_64"]);
        assert_eq!(flags_text(account_flag_names(AccountFlags::empty())), "-");
        assert_eq!(state_name(None), "single");
        assert_eq!(state_name(Some(PendingStatus::Expired)), "expired");
    }

    #[test]
    fn account_table_shows_balances_and_flags() {
        let mut account = AccountBuilder::new(1, 840, 10).build();
        account.debits_posted = 250;
        let text = accounts_table(&[account]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("id  ledger  code  flags  debits_pending"));
        let cells: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(cells, ["1", "840", "10", "-", "0", "250", "0", "0"]);
    }

    #[test]
    fn transfer_table_shows_pending_id_only_when_set() {
        let plain = TransferBuilder::new(1, 2, 3, 40, 840, 1).build();
        let void = TransferBuilder::void(2, 1).build();
        let text = transfers_table(&[plain, void]);
        let rows: Vec<Vec<&str>> = text
            .lines()
            .skip(1)
            .map(|line| line.split_whitespace().collect())
            .collect();
        assert_eq!(rows[0], ["1", "2", "3", "40", "840", "1", "-", "-", "0"]);
        assert_eq!(rows[1][6], "void_pending_transfer");
        assert_eq!(rows[1][7], "1");
    }
}
