//! `GET /payments/config`: what a browser needs to pay without card details ever reaching the
//! gateway (design document §12): where to tokenize a card and with which publishable key, and
//! where the sandbox plays the buyer's 3-D Secure step.

use serde::Serialize;

use super::cacheable_json;
use crate::App;

/// The page may cache it this long: it changes only with a deployment.
pub const MAX_AGE_SECS: u64 = 300;

/// The public half of the payment settings.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PaymentConfig {
    /// `stripe` (Stripe, or the sandbox provider service speaking its wire format) or
    /// `sandbox` (the embedded sandbox).
    pub provider: &'static str,
    /// `POST` card details here (form fields `card[number]`, `card[exp_month]`,
    /// `card[exp_year]`, `card[cvc]`, with `Authorization: Bearer <publishable_key>`) to get a
    /// one-time token for the commit's `payment_token`. `None` with the embedded sandbox,
    /// which takes its test tokens (`tok_visa`, …) as they are.
    pub tokenize_url: Option<String>,
    /// `POST result=succeed|fail` here, `{id}` replaced by the commit's `payment_id`, to play
    /// the buyer's 3-D Secure step; `None` where the provider's own script does it.
    pub authenticate_url: Option<String>,
    /// The publishable key (public by design).
    pub publishable_key: Option<String>,
    /// The test tokens the embedded sandbox recognises; empty otherwise.
    pub test_tokens: Vec<&'static str>,
}

impl PaymentConfig {
    /// From the settings; secrets are never part of it.
    pub fn from_settings(settings: &settings::Payments) -> Self {
        match settings.provider {
            settings::ProviderKind::Sandbox => Self::default(),
            settings::ProviderKind::Stripe => {
                // The sandbox provider service is reached at its public URL; Stripe itself
                // at its API base, with 3-D Secure in Stripe.js.
                let base = settings
                    .stripe_public_url
                    .as_deref()
                    .unwrap_or(&settings.stripe_base_url)
                    .trim_end_matches('/');
                Self {
                    provider: "stripe",
                    tokenize_url: Some(format!("{base}/v1/tokens")),
                    authenticate_url: settings
                        .stripe_public_url
                        .is_some()
                        .then(|| format!("{base}/v1/payment_intents/{{id}}/authenticate")),
                    publishable_key: settings.stripe_publishable_key.clone(),
                    test_tokens: Vec::new(),
                }
            }
        }
    }
}

impl Default for PaymentConfig {
    /// The embedded sandbox's.
    fn default() -> Self {
        Self {
            provider: "sandbox",
            tokenize_url: None,
            authenticate_url: None,
            publishable_key: None,
            test_tokens: vec![
                "tok_visa",
                "tok_chargeDeclined",
                "tok_requires_action",
                "tok_timeout",
            ],
        }
    }
}

/// `GET /payments/config`.
pub async fn get(
    if_none_match: Option<String>,
    app: App,
) -> Result<warp::reply::Response, warp::Rejection> {
    Ok(cacheable_json(
        &*app.payment_config,
        MAX_AGE_SECS,
        if_none_match,
    ))
}
