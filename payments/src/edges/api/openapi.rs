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
                       Errors are `{\"error\": {\"type\", \"code\", \"message\", \"param\"}}`, \
                       `param` naming the request field at fault when one is (absent otherwise). \
                       Lists (`GET /v1/customers`, `/v1/payouts`, ...) are newest first: \
                       `{\"object\": \"list\", \"data\", \"has_more\", \"next_starting_after\"}`, \
                       paged with `limit` and `starting_after`, filtered by `created[gte|gt|lte|lt]` \
                       (Unix milliseconds) and, per list, `status`, `seller`, `customer`. \
                       Every route but health, metrics, this document and the PSP's signed \
                       webhooks needs `Authorization: Bearer KEY` holding the route's scope: \
                       401 `authentication_error` without a valid key, 403 `permission_error` \
                       naming the missing scope, 429 `rate_limit_error` with `Retry-After`."
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
        handlers::update_seller,
        handlers::add_bank_account,
        handlers::list_bank_accounts,
        handlers::seller_balance,
        handlers::create_payment,
        handlers::get_payment,
        handlers::get_order,
        handlers::release_order,
        handlers::capture_order,
        handlers::cancel_order,
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
    doc.merge(super::admin::AdminDoc::openapi());
    doc.merge(super::events::EventsDoc::openapi());
    doc.merge(super::fx::FxDoc::openapi());
    doc.merge(super::lists::ListsDoc::openapi());
    doc.merge(super::disputes::DisputesDoc::openapi());
    secure(&mut doc, super::routes().table());
    let error = ResponseBuilder::new()
        .description("An error: `{\"error\": {\"type\", \"code\", \"message\", \"param\"}}`")
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

/// The name of the security scheme in the document.
pub const SECURITY_SCHEME: &str = "api_key";

/// Declares the bearer-key scheme and puts each route's scope on its operation (public routes
/// get an empty requirement list: no key).
fn secure(doc: &mut utoipa::openapi::OpenApi, table: &[super::RouteAccess]) {
    use utoipa::openapi::security::{
        HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
    };
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        SECURITY_SCHEME,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("API key: sk_… (secret), rk_… (restricted), pk_… (publishable)")
                .description(Some(
                    "Secret keys hold every scope, restricted keys the scopes named at creation, \
                     publishable keys none of these routes.",
                ))
                .build(),
        ),
    );
    for route in table {
        let Some(item) = doc.paths.paths.get_mut(route.path) else {
            continue;
        };
        let operation = match route.method {
            "GET" => item.get.as_mut(),
            "POST" => item.post.as_mut(),
            _ => None,
        };
        let Some(operation) = operation else {
            continue;
        };
        operation.security = Some(match route.access {
            crate::edges::auth::Access::Scope(scope) => {
                vec![SecurityRequirement::new(SECURITY_SCHEME, [scope.name()])]
            }
            crate::edges::auth::Access::Public | crate::edges::auth::Access::Signed => Vec::new(),
        });
        let note = format!("Access: `{}`.", route.access.name());
        operation.description = Some(match operation.description.take() {
            Some(text) if !text.is_empty() => format!("{text}\n\n{note}"),
            _ => note,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route the router serves is in the document with its scope, and the document has
    /// no operation the router lacks.
    #[test]
    fn document_covers_every_route_and_reference() {
        let doc = serde_json::to_value(document()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        let routes = super::super::routes();
        for route in routes.table() {
            let operation = &paths[route.path][route.method.to_ascii_lowercase()];
            assert!(
                operation.is_object(),
                "{} {} missing from the OpenAPI document",
                route.method,
                route.path
            );
            let security = operation["security"].as_array().expect("security is set");
            match route.access {
                crate::edges::auth::Access::Scope(scope) => {
                    assert_eq!(security[0][SECURITY_SCHEME][0], scope.name())
                }
                _ => assert!(security.is_empty(), "{}", route.path),
            }
        }
        for (path, item) in paths {
            for method in item.as_object().unwrap().keys() {
                let method = method.to_ascii_uppercase();
                assert!(
                    routes
                        .table()
                        .iter()
                        .any(|r| r.path == path && r.method == method),
                    "{method} {path} is documented but not routed"
                );
            }
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

    /// The document's `Idempotency-Key` header is the route declaration's form: required on
    /// the routes that demand it, optional on those that use it, absent everywhere else.
    #[test]
    fn document_states_each_routes_idempotency_form() {
        use crate::edges::api::Idempotency;
        let doc = serde_json::to_value(document()).unwrap();
        for route in super::super::routes().table() {
            let operation = &doc["paths"][route.path][route.method.to_ascii_lowercase()];
            let parameters = operation["parameters"].as_array().cloned();
            let header = parameters
                .unwrap_or_default()
                .into_iter()
                .find(|p| p["in"] == "header" && p["name"].as_str() == Some("Idempotency-Key"));
            let documented = header.map(|p| {
                if p["required"] == true {
                    Idempotency::Required
                } else {
                    Idempotency::Optional
                }
            });
            assert_eq!(
                documented, route.idempotency,
                "{} {}: the document and the route declaration differ on Idempotency-Key",
                route.method, route.path
            );
        }
    }
}
