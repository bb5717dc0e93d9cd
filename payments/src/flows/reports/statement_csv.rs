//! A seller's statement as CSV (the dashboard's download): one `line,amount` row per figure,
//! amounts as decimals of the currency.

use super::{csv_finish, csv_row, csv_writer, Statement};
use crate::domain::money::{format_signed, Currency};
use crate::error::PayError;

impl Statement {
    pub fn to_csv(&self, currency: Currency) -> Result<String, PayError> {
        let mut writer = csv_writer();
        csv_row(&mut writer, &["line", "amount", "currency"])?;
        let lines = [
            ("opening_balance", self.opening_balance),
            ("pay_ins", self.pay_ins),
            ("fees", self.fees),
            ("refunds", self.refunds),
            ("fee_returns", self.fee_returns),
            ("payouts", self.payouts),
            ("releases", self.releases),
            ("other", self.other),
            ("closing_balance", self.closing_balance),
        ];
        for (name, amount) in lines {
            csv_row(
                &mut writer,
                &[name, &format_signed(currency, amount), currency.code],
            )?;
        }
        let id = self.seller_id.to_string();
        let movements = self.movements.to_string();
        let adds_up = self.adds_up.to_string();
        for (name, value) in [
            ("seller_id", id.as_str()),
            ("from", &self.from),
            ("to", &self.to),
            ("movements", &movements),
            ("adds_up", &adds_up),
        ] {
            csv_row(&mut writer, &[name, value, ""])?;
        }
        csv_finish(writer)
    }
}
