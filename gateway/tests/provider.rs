//! Checkout through the sandbox provider *service* (`payments::stripe::stub`, what the
//! `sandbox-provider` binary runs): the gateway talks to it through the Stripe adapter as to any
//! remote provider, the "browser" (this test) tokenizes cards and plays 3-D Secure on the
//! provider directly, and the provider's signed webhooks complete the orders.
#![allow(clippy::unwrap_used)]

use test_support::stack as harness;

use std::time::Duration;

use harness::{
    assert_books_balance_with, assert_error, commit, db, eventually, free_port, gateway_opts,
    hold_seats, support, Opts, WEBHOOK_SECRET,
};
use payments::stripe::stub::{spawn, StubConfig};
use reqwest::StatusCode;
use serde_json::Value;

const PUBLISHABLE: &str = "pk_test_service";

/// What a browser does with a card form: `POST /v1/tokens` with the publishable key, from
/// another origin.
async fn tokenize(provider: &str, number: &str) -> (StatusCode, Value) {
    let answer = reqwest::Client::new()
        .post(format!("{provider}/v1/tokens"))
        .header("Origin", "http://shop.example")
        .bearer_auth(PUBLISHABLE)
        .form(&[
            ("card[number]", number),
            ("card[exp_month]", "12"),
            ("card[exp_year]", "2099"),
            ("card[cvc]", "123"),
        ])
        .send()
        .await
        .unwrap();
    let status = answer.status();
    assert_eq!(
        answer
            .headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("http://shop.example"),
        "a browser on the shop's origin may read the answer"
    );
    (status, answer.json().await.unwrap())
}

#[tokio::test]
async fn cards_tokenized_in_the_browser_pay_decline_and_pass_3ds_through_the_provider_service() {
    let db = db::TestDb::new("provider").await;
    let port = free_port();
    let (addr, provider_handle) = spawn(
        StubConfig {
            secret_key: "sk_test_service".into(),
            publishable_key: PUBLISHABLE.into(),
            webhook: Some(payments::delivery::WebhookTarget {
                url: format!("http://127.0.0.1:{port}/webhooks/payments"),
                secret: WEBHOOK_SECRET.to_owned().into(),
            }),
            ..StubConfig::default()
        },
        ([127, 0, 0, 1], 0).into(),
    )
    .await
    .unwrap();
    let provider = format!("http://{addr}");
    let mut config = payments::stripe::StripeConfig::new("sk_test_service".to_owned().into());
    config.base_url = provider.clone();
    let stripe = payments::Provider::Stripe(std::sync::Arc::new(
        payments::stripe::Stripe::new(config).unwrap(),
    ));
    let gw = gateway_opts(
        &db,
        Opts {
            provider: Some(stripe),
            port: Some(port),
            ..Opts::default()
        },
    )
    .await;
    let event = support::unique_event("provider");
    catalog::load_demo(&db.pool, &gw.app.coordinator, &event)
        .await
        .unwrap();

    // The secret key is not the browser's, nor the publishable key the server's.
    let refused = reqwest::Client::new()
        .post(format!("{provider}/v1/tokens"))
        .bearer_auth("sk_test_service")
        .form(&[("card[number]", "4242424242424242")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);

    // A card number that fails the Luhn check never becomes a token.
    let (s, v) = tokenize(&provider, "4242424242424241").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::PAYMENT_REQUIRED, Some("incorrect_number")),
        "{v}"
    );

    // A declined card: 402, and the hold stays for another card.
    let hold = hold_seats(&gw, &event, "alice", &["orch-A-1", "orch-A-2"], 300).await;
    let (s, declined) = tokenize(&provider, "4000000000000002").await;
    assert_eq!(s, StatusCode::OK, "{declined}");
    let (s, v) = commit(&gw, "alice", &hold, "k-1", declined["id"].as_str().unwrap()).await;
    assert_error(s, &v, 402, "payment_declined");

    // A good card pays; the order is written once the provider has captured the money.
    let (s, visa) = tokenize(&provider, "4242424242424242").await;
    assert_eq!(
        (s, visa["card"]["last4"].as_str()),
        (StatusCode::OK, Some("4242")),
        "{visa}"
    );
    let visa = visa["id"].as_str().unwrap().to_owned();
    assert!(visa.starts_with("tok_"), "{visa}");
    let (s, paid) = commit(&gw, "alice", &hold, "k-2", &visa).await;
    assert_eq!(
        (s, paid["status"].as_str()),
        (StatusCode::OK, Some("paid")),
        "{paid}"
    );

    // 3-D Secure: the commit answers 202 with the payment to authenticate; the browser plays
    // the step on the provider; the provider's signed webhook completes the order.
    let hold = hold_seats(&gw, &event, "bob", &["orch-B-1"], 300).await;
    let (_, secure) = tokenize(&provider, "4000002500003155").await;
    let (s, pending) = commit(&gw, "bob", &hold, "k-3", secure["id"].as_str().unwrap()).await;
    assert_eq!(
        (s, pending["status"].as_str()),
        (StatusCode::ACCEPTED, Some("requires_action")),
        "{pending}"
    );
    let payment = pending["payment_id"].as_str().unwrap();
    let order = pending["order_id"].as_str().unwrap().to_owned();
    let authenticated = reqwest::Client::new()
        .post(format!(
            "{provider}/v1/payment_intents/{payment}/authenticate"
        ))
        .bearer_auth(PUBLISHABLE)
        .form(&[("result", "succeed")])
        .send()
        .await
        .unwrap();
    assert_eq!(authenticated.status(), StatusCode::OK);
    let status: String = eventually(
        Duration::from_secs(10),
        "the webhook completes the 3-D Secure order",
        || {
            let db = db.pool.clone();
            let order = order.clone();
            async move {
                let (status,): (String,) =
                    sqlx::query_as("SELECT status::text FROM orders WHERE id = $1::uuid")
                        .bind(&order)
                        .fetch_one(&db)
                        .await
                        .ok()?;
                (status == "paid").then_some(status)
            }
        },
    )
    .await;
    assert_eq!(status, "paid");

    // A token pays once: replaying it for another hold is the buyer's mistake (402, with the
    // provider's reason), and charges nothing more.
    let hold = hold_seats(&gw, &event, "carol", &["orch-C-1"], 300).await;
    let (s, v) = commit(&gw, "carol", &hold, "k-4", &visa).await;
    assert_error(s, &v, 402, "payment_declined");
    assert_eq!(v["error"]["details"]["reason"], "token_already_used", "{v}");
    assert_eq!(provider_handle.charges_for_key(&format!("{hold}:k-4")), 0);

    assert_books_balance_with(&gw.app.payments, &db).await;
    db.drop().await;
}
