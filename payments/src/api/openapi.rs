//! The OpenAPI 3 document served at `/openapi.json`, generated from the handlers' annotations.

use utoipa::OpenApi;

use super::handlers;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tally-pay",
        description = "Tally's payment service: customers, sellers, cards, bank accounts, pay-in, \
                       deposits, refunds and payouts on the Tally ledger. Amounts are integer \
                       minor units (`amount`) or decimal strings (`amount_decimal`) of an ISO 4217 \
                       currency. Every POST that moves money requires an `Idempotency-Key`. \
                       Errors are `{\"error\": {\"type\", \"code\", \"message\"}}`."
    ),
    paths(
        handlers::healthz,
        handlers::metrics,
        handlers::openapi,
        handlers::create_customer,
        handlers::get_customer,
        handlers::add_card,
        handlers::list_cards,
        handlers::customer_balance,
        handlers::create_seller,
        handlers::get_seller,
        handlers::add_bank_account,
        handlers::list_bank_accounts,
        handlers::seller_balance,
        handlers::create_payment,
        handlers::get_payment,
        handlers::get_order,
        handlers::create_deposit,
        handlers::get_deposit,
        handlers::create_refund,
        handlers::get_refund,
        handlers::create_payout,
        handlers::get_payout,
        handlers::run_daily_payouts,
        handlers::list_dead_letters,
        handlers::retry_dead_letter,
        handlers::psp_webhook,
    )
)]
pub struct ApiDoc;

/// The whole document: the core API plus reconciliation, reporting and billing. Every operation
/// also gets a `default` response: any other status is the error envelope `ErrorBody`.
pub fn document() -> utoipa::openapi::OpenApi {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let mut doc = ApiDoc::openapi();
    doc.merge(super::finance::FinanceDoc::openapi());
    doc.merge(super::billing::BillingDoc::openapi());
    let error = ResponseBuilder::new()
        .description("An error: `{\"error\": {\"type\", \"code\", \"message\"}}`")
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build();
    for item in doc.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            operation
                .responses
                .responses
                .entry("default".to_string())
                .or_insert_with(|| error.clone().into());
        }
    }
    let components = doc.components.get_or_insert_with(Default::default);
    components
        .schemas
        .entry("ErrorBody".to_string())
        .or_insert_with(<crate::error::ErrorBody as utoipa::PartialSchema>::schema);
    components
        .schemas
        .entry("ErrorDetail".to_string())
        .or_insert_with(<crate::error::ErrorDetail as utoipa::PartialSchema>::schema);
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route the router serves is in the document, and every schema it refers to exists.
    #[test]
    fn document_covers_every_route_and_reference() {
        let doc = serde_json::to_value(document()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        let sources = [
            include_str!("mod.rs"),
            include_str!("finance.rs"),
            include_str!("billing.rs"),
        ];
        for line in sources
            .iter()
            .flat_map(|s| s.lines())
            .filter(|l| l.contains(".route(\""))
        {
            let route = line.split('"').nth(1).unwrap();
            assert!(
                paths.contains_key(route),
                "route {route} missing from the OpenAPI document"
            );
        }
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for reference in text.split("\"#/components/schemas/").skip(1) {
            let name = reference.split('"').next().unwrap();
            assert!(
                schemas.contains_key(name),
                "schema {name} is referenced but not defined"
            );
        }
        assert_eq!(doc["openapi"].as_str().unwrap().chars().next(), Some('3'));
    }
}
