//! Payments under PSP faults and a `kill -9` of tally-pay, with automatic and manual captures
//! (in full, in part, canceled), releases from escrow and disputes (won and lost) mixed in:
//! every order ends in one terminal state, and the PSP's charges and disputes, the orders and the
//! ledger's postings agree one for one.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tally_payments::domain::chart::{self, code};
use tally_payments::domain::ids;

use crate::env::{usd, PayEnv, CARD_OK, HOLD_A_DAY, SHORT_PSP_TIMEOUT};
use crate::harness::eventually;

/// The sandbox PSP's dispute fee (`psp-sandbox` `DISPUTE_FEE`), in any currency.
const DISPUTE_FEE: u64 = 1500;

/// Lets a test's tally-pay take over a dead process's idempotency keys quickly.
const FAST_LEASE: (&str, &str) = ("TALLY_PAY__PAY__IDEMPOTENCY_LEASE_MS", "3000");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psp_timeouts_after_charging_settle_each_order_exactly_once() {
    let env = PayEnv::start("", &[SHORT_PSP_TIMEOUT]).await;
    let (customer, card) = env.customer_with_card(CARD_OK).await;
    let sellers = [
        env.seller("North").await,
        env.seller("South").await,
        env.seller("East").await,
    ];
    // Every charge succeeds at the PSP, then its answer never comes back in time. First with
    // the webhooks lost too, so the worker's status queries must settle the orders; then with
    // webhooks, which race the worker.
    let mut payment_ids = Vec::new();
    for (phase, faults) in [
        "timeout_after_success=1,hang=3s,lost_webhooks=1",
        "timeout_after_success=1,hang=3s,duplicate_webhooks=0.5",
    ]
    .iter()
    .enumerate()
    {
        env.set_faults(faults).await;
        for i in 0..3u64 {
            let orders: Vec<Value> = sellers
                .iter()
                .enumerate()
                .map(|(j, s)| json!({"seller_id": s, "amount": 1000 + 100 * i + j as u64}))
                .collect();
            let payment = env
                .post(
                    "/v1/payments",
                    Some(&format!("timeout-{phase}-{i}")),
                    &json!({"customer_id": customer, "card_id": card, "currency": "USD", "orders": orders}),
                )
                .await
                .expect(201);
            if phase == 0 {
                assert_eq!(
                    payment["status"], "processing",
                    "the PSP's answer was lost: {payment}"
                );
            }
            payment_ids.push(payment["id"].as_str().unwrap().to_string());
        }
        for id in &payment_ids {
            let payment = env.wait_payment_settled(id).await;
            assert_eq!(payment["status"], "succeeded", "{payment}");
        }
    }
    env.set_faults("").await;
    assert_psp_matches_ledger(&env, &payment_ids, &sellers, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_tally_pay_mid_batch_loses_and_duplicates_nothing() {
    let mut env = PayEnv::start("latency=20ms", &[FAST_LEASE, SHORT_PSP_TIMEOUT]).await;
    let setup = Setup::new(&env, 4).await;
    let done = Arc::new(AtomicUsize::new(0));
    let batch = tokio::spawn(run_batch(
        env.handle(),
        setup.clone(),
        150,
        16,
        Arc::clone(&done),
    ));
    eventually(Duration::from_secs(60), "a third of the batch", || async {
        (done.load(Ordering::SeqCst) >= 50).then_some(())
    })
    .await;
    env.kill_pay();
    env.restart_pay().await;
    let payment_ids = batch.await.expect("the batch finishes");
    assert_eq!(payment_ids.len(), 150);
    for id in &payment_ids {
        env.wait_payment_settled(id).await;
    }
    assert_psp_matches_ledger(&env, &payment_ids, &setup.sellers, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_payments_with_captures_releases_and_disputes_under_faults_agree_with_the_psp() {
    let mut env = PayEnv::start("", &[FAST_LEASE, SHORT_PSP_TIMEOUT, HOLD_A_DAY]).await;
    let setup = Setup::new(&env, 5).await;
    env.set_faults(
        "timeout_after_success=0.1,hang=2s,duplicate_webhooks=0.1,lost_webhooks=0.05,seed=7",
    )
    .await;
    let done = Arc::new(AtomicUsize::new(0));
    let batch = tokio::spawn(run_batch(
        env.handle(),
        setup.clone(),
        1000,
        32,
        Arc::clone(&done),
    ));
    eventually(Duration::from_secs(300), "half of the payments", || async {
        (done.load(Ordering::SeqCst) >= 500).then_some(())
    })
    .await;
    env.kill_pay();
    env.restart_pay().await;
    let payment_ids = batch.await.expect("the batch finishes");
    assert_eq!(payment_ids.len(), 1000);
    let mut seen = BTreeMap::<String, usize>::new();
    for id in &payment_ids {
        let payment = env.wait_payment_settled(id).await;
        *seen
            .entry(payment["status"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    // Every payment made to be canceled was canceled, every other one succeeded.
    let canceled = (0..1000).filter(|i| Mix::of(*i) == Mix::Cancel).count();
    assert_eq!(
        seen.get("canceled").copied().unwrap_or(0),
        canceled,
        "{seen:?}"
    );
    assert_eq!(
        seen.get("succeeded").copied().unwrap_or(0),
        1000 - canceled,
        "{seen:?}"
    );
    let disputed = dispute_some(&env, &payment_ids).await;
    assert!(disputed.len() >= 20, "{} disputes", disputed.len());
    env.set_faults("").await;
    assert_psp_matches_ledger(&env, &payment_ids, &setup.sellers, &disputed).await;
    let dead = env.get("/v1/dead_letters").await.expect(200);
    assert_eq!(dead["data"].as_array().unwrap().len(), 0, "{dead}");
}

/// A dispute of the fault run: the disputed order's seller and amount, and whether it was won.
struct Disputed {
    seller: String,
    amount: u64,
    won: bool,
}

/// Opens a dispute at the PSP on the first order of every 25th payment captured at once, with the
/// PSP's webhooks duplicated, and closes each at the PSP, every other one won; waits until
/// tally-pay has each closed as the PSP has it.
async fn dispute_some(env: &PayEnv, payment_ids: &[String]) -> Vec<Disputed> {
    env.set_faults("duplicate_webhooks=0.3,seed=11").await;
    let mut opened = Vec::new();
    let mut automatic = 0usize;
    for id in payment_ids {
        let payment = env.get(&format!("/v1/payments/{id}")).await.expect(200);
        let order = &payment["orders"][0];
        if order["capture"] != "automatic" || order["status"] != "succeeded" {
            continue;
        }
        automatic += 1;
        if automatic % 25 != 1 {
            continue;
        }
        let order_id = order["id"].as_str().unwrap().to_string();
        let dispute = env
            .psp_post(&format!("/_sandbox/charges/{order_id}/dispute"), &json!({}))
            .await;
        assert_eq!(dispute["amount"], order["amount"], "{dispute}");
        let psp_id = dispute["psp_id"].as_str().unwrap().to_string();
        let seller = order["seller_id"].as_str().unwrap().to_string();
        opened.push((order_id, psp_id, seller, order["amount"].as_u64().unwrap()));
    }
    let mut disputed = Vec::new();
    for (n, (order_id, psp_id, seller, amount)) in opened.into_iter().enumerate() {
        tally_dispute(env, &order_id, "needs_response").await;
        let outcome = if n % 2 == 0 { "won" } else { "lost" };
        env.psp_post(
            &format!("/_sandbox/disputes/{psp_id}/resolve"),
            &json!({ "outcome": outcome }),
        )
        .await;
        disputed.push((
            order_id,
            Disputed {
                seller,
                amount,
                won: outcome == "won",
            },
        ));
    }
    for (order_id, dispute) in &disputed {
        let status = if dispute.won { "won" } else { "lost" };
        tally_dispute(env, order_id, status).await;
    }
    disputed.into_iter().map(|(_, d)| d).collect()
}

/// Waits until tally-pay has the dispute of `order_id` in `status`.
async fn tally_dispute(env: &PayEnv, order_id: &str, status: &str) {
    let what = format!("the dispute of {order_id} to be {status}");
    eventually(Duration::from_secs(60), &what, || async {
        let page = env.get("/v1/disputes?limit=100").await.expect(200);
        let found = page["data"]
            .as_array()?
            .iter()
            .any(|d| d["order_id"] == order_id && d["status"] == status);
        found.then_some(())
    })
    .await;
}

#[derive(Clone)]
struct Setup {
    customer: String,
    card: String,
    sellers: Vec<String>,
}

impl Setup {
    async fn new(env: &PayEnv, sellers: usize) -> Setup {
        let (customer, card) = env.customer_with_card(CARD_OK).await;
        let mut ids = Vec::new();
        for i in 0..sellers {
            ids.push(env.seller(&format!("Seller{i}")).await);
        }
        Setup {
            customer,
            card,
            sellers: ids,
        }
    }
}

/// What a batch client does with payment `i`: most are captured at once; some are only
/// authorized, then captured in full, in part, or canceled; every fourth is released from escrow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mix {
    Automatic,
    CaptureAll,
    CapturePart,
    Cancel,
}

impl Mix {
    fn of(i: usize) -> Mix {
        match i % 10 {
            6 => Mix::CaptureAll,
            7 => Mix::CapturePart,
            8 => Mix::Cancel,
            _ => Mix::Automatic,
        }
    }

    fn released(i: usize) -> bool {
        i.is_multiple_of(4)
    }
}

/// Sends `count` payments from `clients` concurrent clients, each retrying with its key until it
/// gets a definite answer, and captures, cancels and releases them as `Mix` says; returns the
/// payment ids.
async fn run_batch(
    env: crate::env::Handle,
    setup: Setup,
    count: usize,
    clients: usize,
    done: Arc<AtomicUsize>,
) -> Vec<String> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let env = env.clone();
        let setup = setup.clone();
        let next = Arc::clone(&next);
        let done = Arc::clone(&done);
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= count {
                    return ids;
                }
                ids.push(one_payment(&env, &setup, i).await);
                done.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("client task"));
    }
    all
}

/// Payment `i` of a batch, from its creation to its capture, cancel or release.
async fn one_payment(env: &crate::env::Handle, setup: &Setup, i: usize) -> String {
    let mix = Mix::of(i);
    // 1 to 3 orders, to different sellers, amounts that differ per payment.
    let orders: Vec<Value> = (0..(i % 3 + 1))
        .map(|j| {
            let seller = &setup.sellers[(i + j) % setup.sellers.len()];
            json!({"seller_id": seller, "amount": 500 + (i as u64 * 7 + j as u64) % 5000})
        })
        .collect();
    let capture = if mix == Mix::Automatic {
        "automatic"
    } else {
        "manual"
    };
    let body = json!({"customer_id": setup.customer, "card_id": setup.card,
                      "currency": "USD", "capture": capture, "orders": orders});
    let response = env
        .post_until_settled("/v1/payments", &format!("batch-{i}"), &body)
        .await;
    assert_eq!(response.status, 201, "payment {i}: {}", response.body);
    let id = response.body["id"].as_str().unwrap().to_string();
    let path = format!("/v1/payments/{id}");
    let payment = env
        .get_until(&path, "the payment to settle", |p| {
            p["status"] != "processing"
        })
        .await;
    for order in payment["orders"].as_array().unwrap() {
        let order_id = order["id"].as_str().unwrap();
        let amount = order["amount"].as_u64().unwrap();
        let (action, body) = match mix {
            Mix::Automatic => continue,
            Mix::CaptureAll => ("capture", json!({})),
            Mix::CapturePart => ("capture", json!({"amount": amount * 3 / 5})),
            Mix::Cancel => ("cancel", json!({})),
        };
        let path = format!("/v1/payment_orders/{order_id}/{action}");
        let key = format!("batch-{i}-{order_id}-{action}");
        let answer = env.post_until_settled(&path, &key, &body).await;
        assert_eq!(
            answer.status, 200,
            "{action} of {order_id}: {}",
            answer.body
        );
    }
    if Mix::released(i) && mix != Mix::Cancel {
        for order in payment["orders"].as_array().unwrap() {
            let order_id = order["id"].as_str().unwrap();
            let path = format!("/v1/payment_orders/{order_id}/release");
            let key = format!("batch-{i}-{order_id}-release");
            let answer = env.post_until_settled(&path, &key, &json!({})).await;
            assert_eq!(answer.status, 200, "release of {order_id}: {}", answer.body);
        }
    }
    id
}

/// The PSP's charges and the ledger agree one for one: every succeeded order has exactly one
/// succeeded charge of its captured amount, a canceled order's charge is canceled, failed orders
/// have none; each seller's pending and available accounts, the fee account and the PSP clearing
/// account hold exactly the sums of the succeeded orders, less what the `disputed` took (amount
/// and the PSP's fee; the amount back when won), and nothing is still held.
async fn assert_psp_matches_ledger(
    env: &PayEnv,
    payment_ids: &[String],
    sellers: &[String],
    disputed: &[Disputed],
) {
    let charges = env.psp_charges().await;
    let mut by_reference: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for charge in &charges {
        by_reference
            .entry(charge["reference"].as_str().unwrap().to_string())
            .or_default()
            .push(charge);
    }
    let mut wallets: BTreeMap<String, i128> = BTreeMap::new();
    let mut pending: BTreeMap<String, i128> = BTreeMap::new();
    let mut fees = 0i128;
    let mut captured = 0i128;
    let mut succeeded = 0usize;
    for id in payment_ids {
        let payment = env.get(&format!("/v1/payments/{id}")).await.expect(200);
        for order in payment["orders"].as_array().unwrap() {
            let reference = order["id"].as_str().unwrap();
            let amount = order["amount"].as_u64().unwrap();
            let psp: Vec<&&Value> = by_reference
                .get(reference)
                .map(|v| v.iter().collect())
                .unwrap_or_default();
            assert!(
                psp.len() <= 1,
                "order {reference} has {} PSP charges",
                psp.len()
            );
            match order["status"].as_str().unwrap() {
                "succeeded" => {
                    assert_eq!(
                        psp.len(),
                        1,
                        "succeeded order {reference} has no PSP charge"
                    );
                    assert_eq!(psp[0]["status"], "succeeded");
                    assert_eq!(psp[0]["amount"].as_u64().unwrap(), amount);
                    let fee = order["fee"].as_u64().unwrap();
                    let seller = order["seller_id"].as_str().unwrap().to_string();
                    let balance = if order["escrow"] == "held" {
                        &mut pending
                    } else {
                        &mut wallets
                    };
                    *balance.entry(seller).or_default() += i128::from(amount - fee);
                    fees += i128::from(fee);
                    captured += i128::from(amount);
                    succeeded += 1;
                }
                "canceled" => {
                    assert_eq!(psp.len(), 1, "canceled order {reference} has no charge");
                    assert_eq!(psp[0]["status"], "canceled", "order {reference}");
                }
                "failed" => {
                    assert!(
                        psp.iter().all(|c| c["status"] != "succeeded"),
                        "failed order {reference} was charged"
                    );
                }
                other => panic!("order {reference} ended {other}"),
            }
        }
    }
    let psp_succeeded = charges
        .iter()
        .filter(|c| c["status"] == "succeeded")
        .count();
    assert_eq!(psp_succeeded, succeeded, "PSP charges vs succeeded orders");
    let mut lost_to_disputes: BTreeMap<&str, i128> = BTreeMap::new();
    let (mut dispute_fees, mut lost) = (0i128, 0i128);
    for dispute in disputed {
        let taken = i128::from(dispute.amount) + i128::from(DISPUTE_FEE);
        let returned = if dispute.won {
            i128::from(dispute.amount)
        } else {
            0
        };
        *lost_to_disputes.entry(&dispute.seller).or_default() += taken - returned;
        dispute_fees += i128::from(DISPUTE_FEE);
        lost += i128::from(dispute.amount) - returned;
    }
    for seller in sellers {
        let wallet = env.seller_wallet(seller).await;
        let escrow = env.seller_pending(seller).await;
        assert_eq!(wallet.credits_pending, 0, "nothing still held for {seller}");
        assert_eq!(
            escrow.credits_pending, 0,
            "no authorization left for {seller}"
        );
        let (want_wallet, want_pending) = (
            wallets.get(seller).copied().unwrap_or(0),
            pending.get(seller).copied().unwrap_or(0),
        );
        match lost_to_disputes.get(seller.as_str()) {
            None => {
                assert_eq!(wallet.net_credit(), want_wallet, "wallet of {seller}");
                assert_eq!(escrow.net_credit(), want_pending, "pending of {seller}");
            }
            // Disputes take from pending, then the wallet, then the platform's loss account
            // (which later pay-ins repay): together they lost exactly what the disputes took.
            Some(taken) => {
                let owner = ids::number(ids::SELLER, seller).unwrap();
                let loss = env
                    .account(chart::account_id(code::DISPUTE_LOSS, usd(), owner))
                    .await;
                assert_eq!(
                    wallet.net_credit() + escrow.net_credit() + loss.net_credit(),
                    want_wallet + want_pending - taken,
                    "the balances of {seller}, after its disputes"
                );
            }
        }
    }
    assert_eq!(env.system(code::PLATFORM_REVENUE).await.net_credit(), fees);
    assert_eq!(env.system(code::DISPUTES_OPEN).await.net_credit(), 0);
    let clearing = env.system(code::PSP_CLEARING).await;
    assert_eq!(clearing.net_credit(), -captured + dispute_fees + lost);
    assert_eq!(clearing.debits_pending, 0);
    env.verify_ledger();
}
