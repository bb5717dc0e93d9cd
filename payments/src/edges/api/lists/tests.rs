use super::*;
use crate::domain::model::PayoutStatus;

fn parse<T: Listed>(pairs: &[(&str, &str)]) -> Result<ListQuery<T::Status>, PayError> {
    let pairs = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    parse_query::<T>(Ok(Query(pairs)))
}

fn refused<T: Listed>(pairs: &[(&str, &str)]) -> (String, Option<String>) {
    let error = parse::<T>(pairs).unwrap_err();
    assert_eq!(error.status(), StatusCode::BAD_REQUEST);
    let body = error.body().error;
    (body.code, body.param)
}

fn refusal(code: &str, param: &str) -> (String, Option<String>) {
    (code.to_string(), Some(param.to_string()))
}

#[test]
fn a_query_parses_into_inclusive_bounds() {
    let query = parse::<Payout>(&[
        ("limit", "2"),
        ("starting_after", "po_0123456789abcdef"),
        ("created[gt]", "1000"),
        ("created[lt]", "2000"),
        ("status", "in_transit"),
        ("seller", "sel_0123456789abcdef"),
    ])
    .unwrap();
    assert_eq!(query.limit, 2);
    assert_eq!(query.starting_after.as_deref(), Some("po_0123456789abcdef"));
    assert_eq!(
        (query.created_gte, query.created_lte),
        (Some(1001), Some(1999))
    );
    assert_eq!(query.status, Some(PayoutStatus::InTransit));
    assert_eq!(query.seller.unwrap().as_str(), "sel_0123456789abcdef");
    let plain = parse::<Customer>(&[]).unwrap();
    assert_eq!(plain, ListQuery::new(LIST_LIMIT_DEFAULT));
    let inclusive = parse::<Customer>(&[("created[gte]", "5"), ("created[lte]", "7")]);
    let inclusive = inclusive.unwrap();
    assert_eq!(
        (inclusive.created_gte, inclusive.created_lte),
        (Some(5), Some(7))
    );
}

#[test]
fn each_bad_parameter_is_named() {
    for limit in ["0", "101", "ten", "-1", ""] {
        assert_eq!(
            refused::<Payout>(&[("limit", limit)]),
            refusal("invalid_limit", "limit")
        );
    }
    assert_eq!(
        refused::<Payout>(&[("status", "lost")]),
        refusal("invalid_status", "status")
    );
    assert_eq!(
        refused::<Payout>(&[("seller", "bob")]),
        refusal("invalid_id", "seller")
    );
    assert_eq!(
        refused::<Order>(&[("customer", "sel_0123456789abcdef")]),
        refusal("invalid_id", "customer")
    );
    assert_eq!(
        refused::<Payout>(&[("created[gte]", "yesterday")]),
        refusal("invalid_time", "created[gte]")
    );
    assert_eq!(
        refused::<Payout>(&[("created[lt]", "-5")]),
        refusal("invalid_time", "created[lt]")
    );
    assert_eq!(
        refused::<Payout>(&[("created[gte]", "1"), ("created[gt]", "2")]),
        refusal("conflicting_parameters", "created[gt]")
    );
    assert_eq!(
        refused::<Payout>(&[("limit", "2"), ("limit", "3")]),
        refusal("duplicate_parameter", "limit")
    );
}

#[test]
fn a_parameter_the_list_does_not_take_is_refused() {
    assert_eq!(
        refused::<Customer>(&[("status", "active")]),
        refusal("unknown_parameter", "status")
    );
    assert_eq!(
        refused::<Payout>(&[("customer", "cus_0123456789abcdef")]),
        refusal("unknown_parameter", "customer")
    );
    assert_eq!(
        refused::<Payout>(&[("ending_before", "po_0123456789abcdef")]),
        refusal("unknown_parameter", "ending_before")
    );
    // A name that could be anything is not repeated back.
    let error = parse::<Payout>(&[("4242424242424242", "1")]).unwrap_err();
    assert_eq!(error.param(), None);
    assert!(!error.to_string().contains("4242"));
}

#[test]
fn the_document_shows_lists_and_param_with_examples() {
    let doc = serde_json::to_value(crate::edges::api::document()).unwrap();
    let payouts = &doc["paths"]["/v1/payouts"]["get"];
    let names: Vec<&str> = payouts["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for name in [
        "limit",
        "starting_after",
        "created[gte]",
        "created[lt]",
        "status",
    ] {
        assert!(names.contains(&name), "{name} missing: {names:?}");
    }
    let example = &payouts["responses"]["200"]["content"]["application/json"]["example"];
    assert_eq!(example["object"], "list");
    let error = &payouts["responses"]["400"]["content"]["application/json"]["example"];
    assert_eq!(error["error"]["param"], "status");
    let detail = &doc["components"]["schemas"]["ErrorDetail"]["properties"];
    assert!(detail["param"].is_object(), "{detail}");
}

/// Each list's example is a page of objects that read back as the list's type.
#[test]
fn every_list_has_an_example_of_its_objects() {
    fn check<T: serde::de::DeserializeOwned>(doc: &serde_json::Value, path: &str) {
        let response = &doc["paths"][path]["get"]["responses"]["200"];
        let example = &response["content"]["application/json"]["example"];
        assert_eq!(example["object"], "list", "{path}");
        assert_eq!(example["url"], path);
        let data = example["data"].as_array().expect("data");
        assert!(!data.is_empty(), "{path}");
        for object in data {
            let read = serde_json::from_value::<T>(object.clone());
            assert!(read.is_ok(), "{path}: {read:?}", read = read.err());
        }
    }
    let doc = serde_json::to_value(crate::edges::api::document()).unwrap();
    check::<Customer>(&doc, "/v1/customers");
    check::<Seller>(&doc, "/v1/sellers");
    check::<Payment>(&doc, "/v1/payments");
    check::<Order>(&doc, "/v1/payment_orders");
    check::<Refund>(&doc, "/v1/refunds");
    check::<Payout>(&doc, "/v1/payouts");
    check::<Invoice>(&doc, "/v1/invoices");
    check::<Subscription>(&doc, "/v1/subscriptions");
    check::<crate::domain::disputes::Dispute>(&doc, "/v1/disputes");
    assert_eq!(
        routes().table().len(),
        9,
        "a new list needs its example here"
    );
}

#[test]
fn every_list_kind_is_routed_once() {
    let routes = routes();
    let paths: Vec<&str> = routes.table().iter().map(|r| r.path).collect();
    assert_eq!(paths.len(), crate::domain::lists::ListKind::ALL.len());
    assert!(routes.table().iter().all(|r| r.method == "GET"));
}
