//! The dashboard's access rules over plain HTTP: no page without a session, no action without
//! the session's CSRF token or without the operator role, and sessions only from keys that hold
//! the `dashboard` scope.

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::json;

use crate::env::{PayEnv, CARD_OK};

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// Signs in with `secret`; returns the response's status and the session cookie (`name=value`).
pub(crate) async fn sign_in(env: &PayEnv, secret: &str) -> (u16, Option<String>) {
    let response = client()
        .post(format!("{}/dashboard/login", env.pay_url))
        .form(&[("key", secret)])
        .send()
        .await
        .unwrap();
    let cookie = response
        .headers()
        .get(SET_COOKIE)
        .map(|v| v.to_str().unwrap().to_string());
    if let Some(cookie) = &cookie {
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
            "{cookie}"
        );
        assert!(
            !cookie.contains(secret),
            "the key itself is never the cookie"
        );
    }
    let pair = cookie.map(|c| c.split(';').next().unwrap().to_string());
    (response.status().as_u16(), pair)
}

/// The CSRF token of the page at `path`, as its forms carry it.
pub(crate) async fn csrf_of(env: &PayEnv, cookie: &str, path: &str) -> String {
    let page = client()
        .get(format!("{}{path}", env.pay_url))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker).expect("a form with a CSRF field") + marker.len();
    page[start..start + 64].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_without_a_session_redirects_to_sign_in() {
    let env = PayEnv::start("", &[]).await;
    let http = client();
    for (method, path, access) in tally_payments::edges::dashboard::PAGES {
        if access.starts_with("public") {
            continue;
        }
        let url = format!("{}{}", env.pay_url, path.replace("{id}", "x"));
        let request = match *method {
            "GET" => http.get(&url),
            _ => http.post(&url).form(&[("csrf", "x")]),
        };
        let response = request
            .header(COOKIE, "tally_dashboard=not-a-session")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 303, "{method} {path}");
        assert_eq!(
            response.headers()[LOCATION],
            "/dashboard/login",
            "{method} {path}"
        );
    }
    let login = http
        .get(format!("{}/dashboard/login", env.pay_url))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status().as_u16(), 200);

    // Only a key holding the dashboard scope signs in; a wrong key is refused.
    let (_, payments_only) = env.api_key("restricted", &["payments:read"]).await;
    assert_eq!(sign_in(&env, &payments_only).await, (401, None));
    assert_eq!(sign_in(&env, "sk_0_nonsense").await, (401, None));
    let (_, reader) = env.api_key("restricted", &["dashboard"]).await;
    let (status, cookie) = sign_in(&env, &reader).await;
    assert_eq!(status, 303);
    let cookie = cookie.expect("a session cookie");
    let overview = http
        .get(format!("{}/dashboard", env.pay_url))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(overview.status().as_u16(), 200);

    // Signing out ends the session everywhere: the old cookie no longer opens a page.
    let csrf = csrf_of(&env, &cookie, "/dashboard").await;
    let out = http
        .post(format!("{}/dashboard/logout", env.pay_url))
        .header(COOKIE, &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status().as_u16(), 303);
    let after = http
        .get(format!("{}/dashboard", env.pay_url))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status().as_u16(), 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_without_the_csrf_token_or_the_operator_role_is_refused() {
    let env = PayEnv::start("", &[]).await;
    let (customer, card) = env.customer_with_card(CARD_OK).await;
    let seller = env.seller("Csrf").await;
    let payment = env
        .post(
            "/v1/payments",
            Some("dashboard-csrf"),
            &json!({"customer_id": customer, "card_id": card, "currency": "USD",
                    "orders": [{"seller_id": seller, "amount": 5_000}]}),
        )
        .await
        .expect(201);
    let order = payment["orders"][0]["id"].as_str().unwrap().to_string();
    let refund_url = format!("{}/dashboard/orders/{order}/refund", env.pay_url);
    let key = "0123456789abcdef0123456789abcdef";
    let confirm = |csrf: &str| {
        vec![
            ("csrf", csrf.to_string()),
            ("step", "confirm".into()),
            ("key", key.into()),
            ("amount", "10.00".into()),
        ]
    };
    let (_, operator) = env
        .api_key("restricted", &["dashboard", "dashboard:operate"])
        .await;
    let (_, cookie) = sign_in(&env, &operator).await;
    let cookie = cookie.unwrap();
    let http = client();
    for form in [
        vec![("step", "confirm".to_string()), ("key", key.to_string())],
        confirm("0000000000000000000000000000000000000000000000000000000000000000"),
    ] {
        let refused = http
            .post(&refund_url)
            .header(COOKIE, &cookie)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status().as_u16(), 403);
        assert!(refused.text().await.unwrap().contains("CSRF"));
    }
    let order_now = env
        .get(&format!("/v1/payment_orders/{order}"))
        .await
        .expect(200);
    assert_eq!(order_now["refunded"], 0, "nothing was refunded");

    // A read-only user's valid form is refused too.
    let (_, reader) = env.api_key("restricted", &["dashboard"]).await;
    let (_, reader_cookie) = sign_in(&env, &reader).await;
    let reader_cookie = reader_cookie.unwrap();
    let reader_csrf = csrf_of(&env, &reader_cookie, "/dashboard").await;
    let refused = http
        .post(&refund_url)
        .header(COOKIE, &reader_cookie)
        .form(&confirm(&reader_csrf))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 403);

    // With the token the action runs, and sending the same form twice refunds once.
    let csrf = csrf_of(&env, &cookie, "/dashboard").await;
    for _ in 0..2 {
        let done = http
            .post(&refund_url)
            .header(COOKIE, &cookie)
            .form(&confirm(&csrf))
            .send()
            .await
            .unwrap();
        assert_eq!(done.status().as_u16(), 303);
    }
    let order_now = env
        .get(&format!("/v1/payment_orders/{order}"))
        .await
        .expect(200);
    assert_eq!(order_now["refunded"], 1_000, "{order_now}");
}
