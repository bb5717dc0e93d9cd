//! Human tables and JSON renderings of accounts, transfers and balances. JSON carries u128 values
//! as decimal strings (JSON numbers lose precision past 2^53 in many parsers) and u64/u32 as
//! numbers.

use serde_json::{json, Value};
use tally_client::codes::{flag_names, ACCOUNT_FLAGS, TRANSFER_FLAGS};
use tally_client::v1;
use tally_client::Balances;
use tally_proto::u128_of;

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

fn flags_text(table: &[(u32, &str)], bits: u32) -> String {
    let names = flag_names(table, bits);
    if names.is_empty() {
        "-".to_string()
    } else {
        names.join(",")
    }
}

pub fn account_json(account: &v1::Account) -> Value {
    json!({
        "id": u128_of(account.id).to_string(),
        "ledger": account.ledger,
        "code": account.code,
        "flags": account.flags,
        "flag_names": flag_names(ACCOUNT_FLAGS, account.flags),
        "debits_pending": u128_of(account.debits_pending).to_string(),
        "debits_posted": u128_of(account.debits_posted).to_string(),
        "credits_pending": u128_of(account.credits_pending).to_string(),
        "credits_posted": u128_of(account.credits_posted).to_string(),
        "user_data_128": u128_of(account.user_data_128).to_string(),
        "user_data_64": account.user_data_64,
        "user_data_32": account.user_data_32,
        "timestamp": account.timestamp,
    })
}

pub fn accounts_table(accounts: &[v1::Account]) -> String {
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
            u128_of(account.id).to_string(),
            account.ledger.to_string(),
            account.code.to_string(),
            flags_text(ACCOUNT_FLAGS, account.flags),
            balances.debits_pending.to_string(),
            balances.debits_posted.to_string(),
            balances.credits_pending.to_string(),
            balances.credits_posted.to_string(),
        ]);
    }
    table.render()
}

pub fn transfer_json(transfer: &v1::Transfer) -> Value {
    json!({
        "id": u128_of(transfer.id).to_string(),
        "debit_account_id": u128_of(transfer.debit_account_id).to_string(),
        "credit_account_id": u128_of(transfer.credit_account_id).to_string(),
        "amount": u128_of(transfer.amount).to_string(),
        "pending_id": u128_of(transfer.pending_id).to_string(),
        "ledger": transfer.ledger,
        "code": transfer.code,
        "flags": transfer.flags,
        "flag_names": flag_names(TRANSFER_FLAGS, transfer.flags),
        "timeout": transfer.timeout,
        "user_data_128": u128_of(transfer.user_data_128).to_string(),
        "user_data_64": transfer.user_data_64,
        "user_data_32": transfer.user_data_32,
        "timestamp": transfer.timestamp,
    })
}

/// The transfers table with a `state` column (`tallyctl transfer get`).
pub fn transfer_states_table(
    found: &[(v1::Transfer, tally_client::codes::TransferState)],
) -> String {
    let transfers: Vec<v1::Transfer> = found.iter().map(|(t, _)| *t).collect();
    let mut lines = transfers_table(&transfers)
        .lines()
        .map(str::to_string)
        .collect::<Vec<_>>();
    let width = lines
        .iter()
        .map(|line| line.chars().count())
        .max()
        .unwrap_or(0);
    let states = std::iter::once("state").chain(found.iter().map(|(_, s)| s.name()));
    for (line, state) in lines.iter_mut().zip(states) {
        let pad = width - line.chars().count();
        line.push_str(&" ".repeat(pad + 2));
        line.push_str(state);
    }
    lines.iter().map(|line| format!("{line}\n")).collect()
}

pub fn transfers_table(transfers: &[v1::Transfer]) -> String {
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
        let pending_id = u128_of(transfer.pending_id);
        table.push(vec![
            u128_of(transfer.id).to_string(),
            u128_of(transfer.debit_account_id).to_string(),
            u128_of(transfer.credit_account_id).to_string(),
            u128_of(transfer.amount).to_string(),
            transfer.ledger.to_string(),
            transfer.code.to_string(),
            flags_text(TRANSFER_FLAGS, transfer.flags),
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

pub fn balance_json(balance: &v1::AccountBalance) -> Value {
    let balances = Balances::of_history(balance);
    json!({
        "timestamp": balance.timestamp,
        "debits_pending": balances.debits_pending.to_string(),
        "debits_posted": balances.debits_posted.to_string(),
        "credits_pending": balances.credits_pending.to_string(),
        "credits_posted": balances.credits_posted.to_string(),
    })
}

pub fn balances_table(history: &[v1::AccountBalance]) -> String {
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
        let mut account = AccountBuilder::new(u128::MAX, 840, 10).flags(8).build();
        account.credits_posted = Some((1u128 << 64).into());
        let value = account_json(&account);
        assert_eq!(value["id"], "340282366920938463463374607431768211455");
        assert_eq!(value["credits_posted"], "18446744073709551616");
        assert_eq!(value["debits_posted"], "0");
        assert_eq!(value["ledger"], 840);
        assert_eq!(value["flag_names"], json!(["history"]));

        let transfer = TransferBuilder::post(5, 4, None).build();
        let value = transfer_json(&transfer);
        assert_eq!(value["amount"], u128::MAX.to_string());
        assert_eq!(value["pending_id"], "4");
        assert_eq!(value["flag_names"], json!(["post_pending_transfer"]));
    }

    #[test]
    fn account_table_shows_balances_and_flags() {
        let mut account = AccountBuilder::new(1, 840, 10).build();
        account.debits_posted = Some(250u128.into());
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
