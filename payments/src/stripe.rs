//! Stripe PaymentIntents over HTTPS: charge, retrieve, refund, and list, with the `Idempotency-Key`
//! header on every call that creates something.
//!
//! # Wire format
//!
//! Requests are form-encoded (`metadata[order]=…`, `expand[]=…`), answers are JSON, errors are
//! `{"error": {"type", "code", "decline_code", "message", "payment_intent"?}}`. The API version is
//! pinned with `Stripe-Version` ([`API_VERSION`]) so the shape we parse (`latest_charge`) does not
//! move with the account's default version.
//!
//! # What becomes an outcome, what becomes an error
//!
//! - A decline is an outcome ([`ChargeOutcome::Declined`]): Stripe answers `402` with the
//!   PaymentIntent it created inside the error, so the decline has a payment id like any charge.
//! - `processing` (the charge was accepted but its result is not known yet) is
//!   [`PaymentError::Timeout`]: exactly like a lost answer, the charge may still succeed, and the
//!   caller resolves it the same way (replay the key, wait for the webhook, or reconcile).
//! - No answer within [`StripeConfig::timeout`] is [`PaymentError::Timeout`]; `429`, `409`
//!   (a concurrent request with the same key), `5xx`, a rejected API key and transport failures
//!   are [`PaymentError::Unavailable`].
//!
//! The secret key goes into the `Authorization` header only (reqwest marks it sensitive). Every
//! message built from an answer or a transport error is scrubbed of it, and Stripe's own message
//! for a rejected key (which echoes part of it) is never passed on.
//!
//! # Stub
//!
//! With the `stub` feature, `stripe::stub` is a local server that speaks the same wire format
//! for these four calls, so the client is tested against HTTP and JSON, not against mocks of
//! itself.

#[cfg(feature = "stub")]
pub mod stub;

use std::collections::BTreeMap;
use std::error::Error as _;
use std::net::IpAddr;
use std::time::Duration;

use reqwest::header::HeaderValue;
use reqwest::{Method, RequestBuilder, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::{
    ChargeOutcome, ChargeRequest, Payment, PaymentError, PaymentPage, PaymentStatus, RefundOutcome,
};

/// Stripe's API.
pub const DEFAULT_BASE_URL: &str = "https://api.stripe.com";

/// How long a call may take by default. Stripe's own libraries wait up to 80 s; checkout holds
/// seats while it waits, so we give up sooner and let the idempotency key and reconciliation
/// find out what happened.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The API version every request asks for: the one whose shapes this module parses.
pub const API_VERSION: &str = "2024-06-20";

/// Stripe's largest page (`limit` is 1..=100).
const MAX_PAGE_SIZE: u8 = 100;

/// How many pages [`Stripe::list_succeeded_since`] reads before giving up (10 000 payments at the
/// default page size): a window that large means the caller's `since` is wrong.
const DEFAULT_MAX_PAGES: usize = 100;

/// Stripe refuses longer idempotency keys.
const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// Where Stripe is and how to talk to it.
#[derive(Debug, Clone)]
pub struct StripeConfig {
    /// [`DEFAULT_BASE_URL`], or a stub. Plain `http` is accepted only for a loopback host: the
    /// secret key never crosses a network unencrypted.
    pub base_url: String,
    /// `sk_live_…` / `sk_test_…` (or a restricted `rk_…` key). `Debug` prints it redacted.
    pub secret_key: SecretString,
    /// The deadline of one HTTP call, answer body included.
    pub timeout: Duration,
}

impl StripeConfig {
    /// Stripe's API with [`DEFAULT_TIMEOUT`].
    pub fn new(secret_key: SecretString) -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            secret_key,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// A Stripe client. Cheap to share (`Arc`), reuses its connections.
#[derive(Debug)]
pub struct Stripe {
    /// Without a trailing `/`.
    base_url: String,
    secret_key: SecretString,
    http: reqwest::Client,
    /// `limit` of each list page.
    page_size: u8,
    /// Pages a list may read before it is refused.
    max_pages: usize,
}

impl Stripe {
    /// A client for `config`. Fails when the base URL is unusable (not a URL, or plain `http` to
    /// a host that is not loopback) or the HTTP client cannot be built.
    pub fn new(config: StripeConfig) -> Result<Self, PaymentError> {
        let base_url = checked_base_url(&config.base_url)?;
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| PaymentError::Unavailable(format!("stripe: building the client: {e}")))?;
        Ok(Self {
            base_url,
            secret_key: config.secret_key,
            http,
            page_size: MAX_PAGE_SIZE,
            max_pages: DEFAULT_MAX_PAGES,
        })
    }

    /// Changes how lists page: `page_size` (of every page) is clamped to Stripe's 1..=100,
    /// `max_pages` (of [`Self::list_succeeded_since`]) to at least 1. Small pages are for tests
    /// of the paging itself.
    pub fn with_list_paging(mut self, page_size: u8, max_pages: usize) -> Self {
        self.page_size = page_size.clamp(1, MAX_PAGE_SIZE);
        self.max_pages = max_pages.max(1);
        self
    }

    /// Creates and confirms a PaymentIntent, or replays the first answer for the request's
    /// idempotency key (Stripe keeps it 24 hours).
    ///
    /// `succeeded` is [`ChargeOutcome::Succeeded`]; `requires_action` (3-D Secure) is
    /// [`ChargeOutcome::RequiresAction`]; a card error is [`ChargeOutcome::Declined`] with the
    /// issuer's `decline_code` when there is one (`insufficient_funds`, `generic_decline`, …),
    /// else the error `code` (`incorrect_number`, …). `processing` is [`PaymentError::Timeout`]:
    /// the result is not known yet, and the webhook or reconciliation will tell.
    pub async fn charge(&self, request: &ChargeRequest) -> Result<ChargeOutcome, PaymentError> {
        let key = idempotency_key(&request.idempotency_key)?;
        let mut form = vec![
            ("amount".to_owned(), request.amount_cents.to_string()),
            ("currency".to_owned(), request.currency.to_lowercase()),
            ("payment_method".to_owned(), request.token.clone()),
            ("payment_method_types[]".to_owned(), "card".to_owned()),
            ("confirm".to_owned(), "true".to_owned()),
        ];
        form.extend(
            request
                .metadata
                .iter()
                .map(|(name, value)| (format!("metadata[{name}]"), value.clone())),
        );
        let call = self
            .request(Method::POST, "/v1/payment_intents")
            .header("Idempotency-Key", key)
            .form(&form);
        match self.send(call).await? {
            Ok(body) => charge_outcome(decode::<WireIntent>(&body, "PaymentIntent")?),
            Err(failure) => match failure.status {
                StatusCode::PAYMENT_REQUIRED => match failure.error.payment_intent {
                    Some(intent) => Ok(ChargeOutcome::Declined {
                        payment_id: intent.id,
                        reason: failure
                            .error
                            .decline_code
                            .or(failure.error.code)
                            .unwrap_or_else(|| "card_declined".to_owned()),
                    }),
                    // Without the PaymentIntent there is no reference to report the decline under.
                    None => Err(self.unavailable(&failure)),
                },
                StatusCode::BAD_REQUEST
                    if failure.error.kind.as_deref() == Some("idempotency_error") =>
                {
                    Err(PaymentError::IdempotencyMismatch)
                }
                // The buyer's token is unknown or spent (`resource_missing`,
                // `token_already_used` on `payment_method`): the client's mistake, not an outage.
                StatusCode::BAD_REQUEST
                    if failure.error.param.as_deref() == Some("payment_method") =>
                {
                    Err(PaymentError::TokenRefused(
                        failure
                            .error
                            .code
                            .unwrap_or_else(|| "invalid_payment_method".to_owned()),
                    ))
                }
                _ => Err(self.unavailable(&failure)),
            },
        }
    }

    /// The PaymentIntent's state now, with its latest charge expanded (a refund shows there).
    /// `None` when Stripe does not know the id, or the id could not be one of Stripe's.
    pub async fn retrieve(&self, payment_id: &str) -> Result<Option<Payment>, PaymentError> {
        if !is_plausible_id(payment_id) {
            return Ok(None);
        }
        let call = self
            .request(Method::GET, &format!("/v1/payment_intents/{payment_id}"))
            .query(&[("expand[]", "latest_charge")]);
        match self.send(call).await? {
            Ok(body) => Ok(Some(payment_of(decode::<WireIntent>(
                &body,
                "PaymentIntent",
            )?))),
            Err(failure) if failure.status == StatusCode::NOT_FOUND => Ok(None),
            Err(failure) => Err(self.unavailable(&failure)),
        }
    }

    /// Refunds a PaymentIntent in full, under the idempotency key `refund:<id>` so that a retry
    /// never refunds twice. A charge refunded before (`charge_already_refunded`, e.g. once the
    /// key expired) is [`RefundOutcome::Refunded`] too. An unknown PaymentIntent, or one without a
    /// successful charge (declined, waiting for 3-D Secure), is [`RefundOutcome::NotCaptured`].
    /// A refund Stripe reports as `failed` or `canceled` is [`PaymentError::Unavailable`]: the
    /// money is still captured and someone has to look.
    pub async fn refund(&self, payment_id: &str) -> Result<RefundOutcome, PaymentError> {
        if !is_plausible_id(payment_id) {
            return Ok(RefundOutcome::NotCaptured);
        }
        let key = idempotency_key(&format!("refund:{payment_id}"))?;
        let call = self
            .request(Method::POST, "/v1/refunds")
            .header("Idempotency-Key", key)
            .form(&[("payment_intent", payment_id)]);
        match self.send(call).await? {
            Ok(body) => {
                let refund = decode::<WireRefund>(&body, "Refund")?;
                match refund.status.as_deref() {
                    // `pending`: accepted, the money is on its way back.
                    Some("succeeded" | "pending") | None => Ok(RefundOutcome::Refunded),
                    Some(other) => Err(PaymentError::Unavailable(format!(
                        "stripe: refund {} of {payment_id} is {other}",
                        refund.id
                    ))),
                }
            }
            Err(failure) => {
                let error = &failure.error;
                if error.code.as_deref() == Some("charge_already_refunded") {
                    Ok(RefundOutcome::Refunded)
                } else if failure.status == StatusCode::NOT_FOUND
                    || error.code.as_deref() == Some("resource_missing")
                    || (failure.status == StatusCode::BAD_REQUEST
                        && error
                            .message
                            .as_deref()
                            .is_some_and(has_no_successful_charge))
                {
                    Ok(RefundOutcome::NotCaptured)
                } else {
                    Err(self.unavailable(&failure))
                }
            }
        }
    }

    /// Succeeded, not refunded PaymentIntents created at or after `since_unix`, oldest first
    /// (by `created`, then id). Stripe lists newest first, a page at a time; reading more than
    /// the page bound (100 pages by default) is refused rather than answered in part, because a
    /// partial answer would silently lose the oldest payments. (Reconciliation reads
    /// [`Self::list_succeeded_page`] instead: any length, a page at a time.)
    pub async fn list_succeeded_since(
        &self,
        since_unix: i64,
    ) -> Result<Vec<Payment>, PaymentError> {
        let mut payments = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..self.max_pages {
            let page = self
                .list_succeeded_page(since_unix, None, after.as_deref())
                .await?;
            payments.extend(page.payments);
            after = page.next;
            if after.is_none() {
                payments.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
                payments.dedup_by(|a, b| a.id == b.id);
                return Ok(payments);
            }
        }
        Err(PaymentError::Unavailable(format!(
            "stripe: more than {} pages of payments since {since_unix}",
            self.max_pages
        )))
    }

    /// One page (newest first, as Stripe lists) of the succeeded, not refunded PaymentIntents
    /// created from `since_unix` to `until_unix` (both included; `None`: no upper bound),
    /// after the PaymentIntent `after` (`starting_after`). Its `next` is the page's last
    /// PaymentIntent, refunded or not, while Stripe says it has more.
    pub async fn list_succeeded_page(
        &self,
        since_unix: i64,
        until_unix: Option<i64>,
        after: Option<&str>,
    ) -> Result<PaymentPage, PaymentError> {
        let mut query = vec![
            ("created[gte]", since_unix.to_string()),
            ("limit", self.page_size.to_string()),
            ("expand[]", "data.latest_charge".to_owned()),
        ];
        if let Some(until) = until_unix {
            query.push(("created[lte]", until.to_string()));
        }
        if let Some(last) = after {
            query.push(("starting_after", last.to_owned()));
        }
        let call = self
            .request(Method::GET, "/v1/payment_intents")
            .query(&query);
        let page = match self.send(call).await? {
            Ok(body) => decode::<WireList>(&body, "list of PaymentIntents")?,
            Err(failure) => return Err(self.unavailable(&failure)),
        };
        let next = match (page.has_more, page.data.last()) {
            (false, _) => None,
            (true, Some(last)) => Some(last.id.clone()),
            (true, None) => {
                return Err(PaymentError::Unavailable(
                    "stripe: an empty list page said it has more".into(),
                ))
            }
        };
        Ok(PaymentPage {
            payments: page
                .data
                .into_iter()
                .map(payment_of)
                .filter(|payment| payment.status == PaymentStatus::Succeeded)
                .collect(),
            next,
        })
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base_url))
            .bearer_auth(self.secret_key.expose_secret())
            .header("Stripe-Version", API_VERSION)
    }

    /// Sends a call: the body of a 2xx answer, or what Stripe said went wrong. Only the
    /// transport (no answer, a timeout) is an error here.
    async fn send(&self, call: RequestBuilder) -> Result<Result<Vec<u8>, Failure>, PaymentError> {
        let response = call.send().await.map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(&e))?;
        if status.is_success() {
            Ok(Ok(body.to_vec()))
        } else {
            let error = serde_json::from_slice::<ErrorBody>(&body)
                .map(|body| body.error)
                .unwrap_or_default();
            Ok(Err(Failure { status, error }))
        }
    }

    fn transport_error(&self, error: &reqwest::Error) -> PaymentError {
        if error.is_timeout() {
            return PaymentError::Timeout;
        }
        // reqwest's own message is generic ("error sending request for url …"); the cause
        // (connection refused, TLS, …) is in the source chain.
        let mut message = format!("stripe: {error}");
        let mut source = error.source();
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        PaymentError::Unavailable(self.redact(&message))
    }

    /// An answer we cannot act on, described without the secret key.
    fn unavailable(&self, failure: &Failure) -> PaymentError {
        let error = &failure.error;
        let mut message = format!("stripe answered {}", failure.status);
        for part in [&error.kind, &error.code, &error.decline_code]
            .into_iter()
            .flatten()
        {
            message.push_str(&format!(" {part}"));
        }
        // Stripe's message for a rejected key quotes part of the key: never pass it on.
        let quotes_key = matches!(
            failure.status,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        );
        if let (Some(text), false) = (&error.message, quotes_key) {
            message.push_str(&format!(": {text}"));
        }
        PaymentError::Unavailable(self.redact(&message))
    }

    fn redact(&self, text: &str) -> String {
        let secret = self.secret_key.expose_secret();
        if secret.is_empty() {
            text.to_owned()
        } else {
            text.replace(secret, "[redacted]")
        }
    }
}

/// A non-2xx answer: its status and Stripe's error object (empty when the body was not one).
struct Failure {
    status: StatusCode,
    error: ApiError,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ApiError,
}

/// Stripe's error object; every field is optional so that any error body parses.
#[derive(Debug, Default, Deserialize)]
struct ApiError {
    /// `card_error`, `invalid_request_error`, `idempotency_error`, `api_error`, …
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    decline_code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    /// The request parameter the error is about.
    #[serde(default)]
    param: Option<String>,
    /// On card errors: the PaymentIntent the failed attempt belongs to.
    #[serde(default)]
    payment_intent: Option<IdOnly>,
}

#[derive(Debug, Deserialize)]
struct IdOnly {
    id: String,
}

/// The part of a PaymentIntent we read.
#[derive(Debug, Deserialize)]
struct WireIntent {
    id: String,
    status: String,
    amount: i64,
    currency: String,
    created: i64,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    /// An id, or the charge itself when expanded (`expand[]=latest_charge`).
    #[serde(default)]
    latest_charge: Option<LatestCharge>,
    /// Why the last attempt failed (set with `requires_payment_method` after a decline).
    #[serde(default)]
    last_payment_error: Option<ApiError>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum LatestCharge {
    Expanded(WireCharge),
    Id(serde::de::IgnoredAny),
}

#[derive(Debug, Deserialize)]
struct WireCharge {
    /// True once the charge is refunded in full.
    #[serde(default)]
    refunded: bool,
}

#[derive(Debug, Deserialize)]
struct WireList {
    data: Vec<WireIntent>,
    #[serde(default)]
    has_more: bool,
}

#[derive(Debug, Deserialize)]
struct WireRefund {
    id: String,
    #[serde(default)]
    status: Option<String>,
}

fn decode<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, PaymentError> {
    serde_json::from_slice(body)
        .map_err(|e| PaymentError::Unavailable(format!("stripe: unexpected {what}: {e}")))
}

/// The answer to a create-and-confirm call that Stripe accepted (2xx).
fn charge_outcome(intent: WireIntent) -> Result<ChargeOutcome, PaymentError> {
    let payment_id = intent.id;
    match intent.status.as_str() {
        "succeeded" => Ok(ChargeOutcome::Succeeded { payment_id }),
        "requires_action" | "requires_confirmation" => {
            Ok(ChargeOutcome::RequiresAction { payment_id })
        }
        // A failed attempt that Stripe answered without a card error, or a cancelled intent.
        "requires_payment_method" | "canceled" => Ok(ChargeOutcome::Declined {
            payment_id,
            reason: intent
                .last_payment_error
                .and_then(|error| error.decline_code.or(error.code))
                .unwrap_or(intent.status),
        }),
        // `processing`, `requires_capture` (we never ask for manual capture) or a status newer
        // than this code: the money may still move, so the caller must treat it as unanswered.
        _ => Err(PaymentError::Timeout),
    }
}

fn payment_of(intent: WireIntent) -> Payment {
    let refunded = matches!(
        intent.latest_charge,
        Some(LatestCharge::Expanded(WireCharge { refunded: true }))
    );
    let status = match intent.status.as_str() {
        "succeeded" if refunded => PaymentStatus::Refunded,
        "succeeded" => PaymentStatus::Succeeded,
        "requires_action" | "requires_confirmation" => PaymentStatus::RequiresAction,
        // We always confirm on creation, so `requires_payment_method` means an attempt failed.
        "requires_payment_method" | "canceled" => PaymentStatus::Declined,
        // `processing`, `requires_capture`, or unknown: not final either way.
        _ => PaymentStatus::Processing,
    };
    Payment {
        id: intent.id,
        status,
        amount_cents: intent.amount,
        // Stripe speaks lowercase; ISO 4217 (and our orders) uppercase.
        currency: intent.currency.to_uppercase(),
        metadata: intent.metadata,
        created: intent.created,
    }
}

/// Stripe's answer to refunding a PaymentIntent that has no captured charge (no code is
/// documented for it, so the message is what identifies it).
fn has_no_successful_charge(message: &str) -> bool {
    message
        .to_ascii_lowercase()
        .contains("does not have a successful charge")
}

/// Stripe ids are `prefix_` plus letters and digits: anything else is not one, and must not
/// reach a URL path.
fn is_plausible_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 255 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn idempotency_key(key: &str) -> Result<HeaderValue, PaymentError> {
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LEN {
        return Err(PaymentError::Unavailable(format!(
            "stripe: an idempotency key must be 1..={MAX_IDEMPOTENCY_KEY_LEN} bytes"
        )));
    }
    HeaderValue::from_str(key).map_err(|_| {
        PaymentError::Unavailable("stripe: the idempotency key is not a valid header value".into())
    })
}

/// The base URL without its trailing `/`, if the secret key may be sent there.
fn checked_base_url(base_url: &str) -> Result<String, PaymentError> {
    let refuse = |why: &str| PaymentError::Unavailable(format!("stripe base URL: {why}"));
    let url = reqwest::Url::parse(base_url).map_err(|e| refuse(&e.to_string()))?;
    let host = url.host_str().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => return Err(refuse("plain http is only for a loopback host")),
        _ => return Err(refuse("not an http(s) URL")),
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(refuse("no query, fragment or credentials allowed"));
    }
    Ok(base_url.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    fn config(base_url: &str) -> StripeConfig {
        StripeConfig {
            base_url: base_url.to_owned(),
            ..StripeConfig::new(SecretString::from("sk_test_do_not_print"))
        }
    }

    #[test]
    fn the_key_never_prints_and_goes_only_to_https_or_loopback() {
        let stripe = Stripe::new(config(DEFAULT_BASE_URL)).expect("the default base URL");
        assert!(!format!("{stripe:?}").contains("do_not_print"));
        assert!(!format!("{:?}", config(DEFAULT_BASE_URL)).contains("do_not_print"));
        for local in [
            "http://127.0.0.1:1234",
            "http://localhost:9/",
            "http://[::1]:80",
        ] {
            assert!(Stripe::new(config(local)).is_ok(), "{local}");
        }
        for refused in [
            "http://api.stripe.com",
            "http://10.0.0.1",
            "ftp://127.0.0.1",
            "not a url",
            "https://user:pw@api.stripe.com",
            "https://api.stripe.com/?x=1",
        ] {
            assert!(Stripe::new(config(refused)).is_err(), "{refused}");
        }
    }

    #[test]
    fn only_plausible_ids_reach_a_url() {
        assert!(is_plausible_id("pi_3NxYz0123abc"));
        for bad in ["", "pi/../x", "pi_1?expand[]=x", "pi 1", "pi_é"] {
            assert!(!is_plausible_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn statuses_map_to_outcomes_and_payments() {
        let intent = |status: &str, charge: &str| -> WireIntent {
            serde_json::from_str(&format!(
                r#"{{"id":"pi_1","status":"{status}","amount":1200,"currency":"eur","created":7,
                    "metadata":{{"order":"o1"}},"latest_charge":{charge},
                    "last_payment_error":{{"type":"card_error","code":"card_declined",
                                           "decline_code":"insufficient_funds"}}}}"#
            ))
            .expect("a PaymentIntent")
        };
        let status = |s: &str, charge: &str| payment_of(intent(s, charge)).status;
        assert_eq!(
            status("succeeded", r#"{"id":"ch_1","refunded":false}"#),
            PaymentStatus::Succeeded
        );
        assert_eq!(
            status("succeeded", r#"{"id":"ch_1","refunded":true}"#),
            PaymentStatus::Refunded
        );
        assert_eq!(status("succeeded", r#""ch_1""#), PaymentStatus::Succeeded);
        assert_eq!(
            status("requires_action", "null"),
            PaymentStatus::RequiresAction
        );
        assert_eq!(
            status("requires_confirmation", "null"),
            PaymentStatus::RequiresAction
        );
        assert_eq!(status("processing", "null"), PaymentStatus::Processing);
        assert_eq!(
            status("requires_capture", "null"),
            PaymentStatus::Processing
        );
        assert_eq!(
            status("requires_payment_method", "null"),
            PaymentStatus::Declined
        );
        assert_eq!(status("canceled", "null"), PaymentStatus::Declined);
        let payment = payment_of(intent("succeeded", "null"));
        assert_eq!(payment.currency, "EUR");
        assert_eq!(
            payment.metadata.get("order").map(String::as_str),
            Some("o1")
        );

        assert_eq!(
            charge_outcome(intent("processing", "null")),
            Err(PaymentError::Timeout)
        );
        assert_eq!(
            charge_outcome(intent("requires_payment_method", "null")),
            Ok(ChargeOutcome::Declined {
                payment_id: "pi_1".into(),
                reason: "insufficient_funds".into()
            })
        );
    }
}

#[cfg(all(test, feature = "stub"))]
mod tests {
    use std::collections::BTreeSet;

    use super::stub::{spawn_stub, StubHandle};
    use super::*;

    const SECRET: &str = "sk_test_stub_5ecret_4242";

    async fn setup() -> (StubHandle, Stripe) {
        let (addr, stub) = spawn_stub(SECRET).await;
        (stub, client(addr, SECRET, Duration::from_secs(5)))
    }

    fn client(addr: std::net::SocketAddr, secret: &str, timeout: Duration) -> Stripe {
        Stripe::new(StripeConfig {
            base_url: format!("http://{addr}"),
            secret_key: SecretString::from(secret),
            timeout,
        })
        .expect("a client for the stub")
    }

    fn request(key: &str, token: &str, amount_cents: i64) -> ChargeRequest {
        ChargeRequest {
            idempotency_key: key.to_owned(),
            amount_cents,
            currency: "EUR".to_owned(),
            token: token.to_owned(),
            metadata: BTreeMap::from([
                ("order_id".to_owned(), format!("order-{key}")),
                ("hold_id".to_owned(), "hold-1".to_owned()),
            ]),
        }
    }

    fn payment_id(outcome: &ChargeOutcome) -> String {
        match outcome {
            ChargeOutcome::Succeeded { payment_id }
            | ChargeOutcome::Declined { payment_id, .. }
            | ChargeOutcome::RequiresAction { payment_id } => payment_id.clone(),
        }
    }

    async fn succeeded(stripe: &Stripe, key: &str) -> String {
        match stripe.charge(&request(key, "tok_visa", 1500)).await {
            Ok(ChargeOutcome::Succeeded { payment_id }) => payment_id,
            other => panic!("{key}: {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_charge_succeeds_and_retrieve_shows_it_with_its_metadata() {
        let (stub, stripe) = setup().await;
        let id = succeeded(&stripe, "k-success").await;
        let payment = stripe
            .retrieve(&id)
            .await
            .expect("retrieve")
            .expect("known");
        assert_eq!(payment.status, PaymentStatus::Succeeded);
        assert_eq!(payment.amount_cents, 1500);
        assert_eq!(payment.currency, "EUR");
        assert_eq!(
            payment.metadata.get("order_id").map(String::as_str),
            Some("order-k-success")
        );
        assert_eq!(stub.charges_for_key("k-success"), 1);
        // `pm_card_*` (what Stripe.js gives) works like `tok_*`.
        let outcome = stripe.charge(&request("k-pm", "pm_card_visa", 100)).await;
        assert!(
            matches!(outcome, Ok(ChargeOutcome::Succeeded { .. })),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn declines_are_outcomes_with_the_issuers_reason() {
        let (_stub, stripe) = setup().await;
        let declined = |token: &'static str, key: &'static str| {
            let stripe = &stripe;
            async move {
                match stripe.charge(&request(key, token, 1500)).await {
                    Ok(ChargeOutcome::Declined { payment_id, reason }) => (payment_id, reason),
                    other => panic!("{token}: {other:?}"),
                }
            }
        };
        // Stripe's generic test decline: code `card_declined`, decline_code `generic_decline`.
        let (id, reason) = declined("tok_chargeDeclined", "k-declined").await;
        assert_eq!(reason, "generic_decline");
        let (_, reason) = declined("pm_card_chargeDeclinedInsufficientFunds", "k-funds").await;
        assert_eq!(reason, "insufficient_funds");
        // No decline_code: the error code is the reason.
        let (_, reason) = declined("tok_garbage", "k-garbage").await;
        assert_eq!(reason, "incorrect_number");

        let payment = stripe
            .retrieve(&id)
            .await
            .expect("retrieve")
            .expect("known");
        assert_eq!(payment.status, PaymentStatus::Declined);
        // Replaying a decline replays the decline (Stripe stores the 402 under the key).
        assert_eq!(
            declined("tok_chargeDeclined", "k-declined").await,
            (id, "generic_decline".to_owned())
        );
    }

    #[tokio::test]
    async fn requires_action_completes_later() {
        let (stub, stripe) = setup().await;
        let outcome = stripe
            .charge(&request("k-3ds", "tok_requires_action", 900))
            .await
            .expect("charge");
        let ChargeOutcome::RequiresAction { payment_id } = outcome else {
            panic!("{outcome:?}");
        };
        let status = || async {
            let payment = stripe.retrieve(&payment_id).await.expect("retrieve");
            payment.map(|p| p.status)
        };
        assert_eq!(status().await, Some(PaymentStatus::RequiresAction));
        // Nothing captured yet: nothing to refund.
        assert_eq!(
            stripe.refund(&payment_id).await,
            Ok(RefundOutcome::NotCaptured)
        );
        assert!(stub.complete_action(&payment_id));
        assert!(!stub.complete_action(&payment_id), "only once");
        assert_eq!(status().await, Some(PaymentStatus::Succeeded));
    }

    #[tokio::test]
    async fn a_replayed_key_reaches_the_same_payment_and_other_parameters_are_refused() {
        let (stub, stripe) = setup().await;
        let first = succeeded(&stripe, "k-replay").await;
        let second = succeeded(&stripe, "k-replay").await;
        assert_eq!(first, second);
        assert_eq!(stub.charges_for_key("k-replay"), 1);

        let other_amount = stripe.charge(&request("k-replay", "tok_visa", 1501)).await;
        assert_eq!(other_amount, Err(PaymentError::IdempotencyMismatch));
        let mut other_metadata = request("k-replay", "tok_visa", 1500);
        other_metadata
            .metadata
            .insert("extra".to_owned(), "1".to_owned());
        assert_eq!(
            stripe.charge(&other_metadata).await,
            Err(PaymentError::IdempotencyMismatch)
        );
        assert_eq!(stub.charges_for_key("k-replay"), 1);
    }

    #[tokio::test]
    async fn refunds_are_idempotent_and_show_in_retrieve() {
        let (stub, stripe) = setup().await;
        let id = succeeded(&stripe, "k-refund").await;
        assert_eq!(stripe.refund(&id).await, Ok(RefundOutcome::Refunded));
        // The same key: Stripe replays the first refund.
        assert_eq!(stripe.refund(&id).await, Ok(RefundOutcome::Refunded));
        // The key expired (24 h): Stripe answers `charge_already_refunded`.
        stub.expire_idempotency_keys();
        assert_eq!(stripe.refund(&id).await, Ok(RefundOutcome::Refunded));
        let payment = stripe
            .retrieve(&id)
            .await
            .expect("retrieve")
            .expect("known");
        assert_eq!(payment.status, PaymentStatus::Refunded);
    }

    #[tokio::test]
    async fn unknown_or_uncaptured_payments_are_not_refunded() {
        let (_stub, stripe) = setup().await;
        assert_eq!(
            stripe.refund("pi_doesnotexist").await,
            Ok(RefundOutcome::NotCaptured)
        );
        assert_eq!(stripe.refund("../x").await, Ok(RefundOutcome::NotCaptured));
        let declined = stripe
            .charge(&request("k-nc", "tok_chargeDeclined", 100))
            .await
            .expect("charge");
        assert_eq!(
            stripe.refund(&payment_id(&declined)).await,
            Ok(RefundOutcome::NotCaptured)
        );
        assert_eq!(stripe.retrieve("pi_doesnotexist").await, Ok(None));
        assert_eq!(stripe.retrieve("pi/../../v1/refunds").await, Ok(None));
    }

    #[tokio::test]
    async fn lists_succeeded_payments_oldest_first_across_pages() {
        let (stub, stripe) = setup().await;
        let stripe = stripe.with_list_paging(2, 100);
        let mut kept = BTreeSet::new();
        for n in 0..5 {
            kept.insert(succeeded(&stripe, &format!("k-list-{n}")).await);
        }
        let refunded = succeeded(&stripe, "k-list-refunded").await;
        assert_eq!(stripe.refund(&refunded).await, Ok(RefundOutcome::Refunded));
        for (key, token) in [
            ("k-list-d", "tok_chargeDeclined"),
            ("k-list-a", "tok_requires_action"),
        ] {
            stripe
                .charge(&request(key, token, 100))
                .await
                .expect("charge");
        }

        let before = stub.requests_served();
        let listed = stripe.list_succeeded_since(0).await.expect("list");
        // 8 intents at 2 a page: 4 pages.
        assert_eq!(stub.requests_served() - before, 4);
        let ids: BTreeSet<String> = listed.iter().map(|p| p.id.clone()).collect();
        assert_eq!(ids, kept);
        assert_eq!(listed.len(), kept.len());
        assert!(listed.windows(2).all(|w| w[0].created <= w[1].created));
        assert!(listed.iter().all(|p| p.status == PaymentStatus::Succeeded));

        let future = listed.iter().map(|p| p.created).max().unwrap_or_default() + 3600;
        assert_eq!(stripe.list_succeeded_since(future).await, Ok(Vec::new()));

        // More pages than allowed: refused, not answered in part.
        let bounded = stripe.with_list_paging(2, 3);
        assert!(matches!(
            bounded.list_succeeded_since(0).await,
            Err(PaymentError::Unavailable(_))
        ));
    }

    #[tokio::test]
    async fn pages_of_a_window_are_read_one_at_a_time_from_their_cursor() {
        let (stub, stripe) = setup().await;
        let stripe = stripe.with_list_paging(2, 1);
        let mut kept = BTreeSet::new();
        for n in 0..5 {
            kept.insert(succeeded(&stripe, &format!("k-page-{n}")).await);
        }
        let refunded = succeeded(&stripe, "k-page-refunded").await;
        assert_eq!(stripe.refund(&refunded).await, Ok(RefundOutcome::Refunded));
        let now = crate::now_unix();
        // Six intents at two a page: three calls, each resumed from the last one's cursor (the
        // whole list would be refused at one page).
        let before = stub.requests_served();
        let (mut listed, mut after, mut pages) = (BTreeSet::new(), None, 0);
        loop {
            let page = stripe
                .list_succeeded_page(0, Some(now), after.as_deref())
                .await
                .expect("a page");
            pages += 1;
            listed.extend(page.payments.into_iter().map(|p| p.id));
            after = page.next;
            if after.is_none() {
                break;
            }
        }
        assert_eq!((pages, stub.requests_served() - before), (3, 3));
        assert_eq!(listed, kept);
        // A window that ends before they were created lists none of them.
        let first = stripe.list_succeeded_page(0, Some(now - 3_600), None).await;
        assert_eq!(first, Ok(PaymentPage::default()));
    }

    #[tokio::test]
    async fn a_wrong_key_is_unavailable_and_never_quoted() {
        let (addr, _stub) = spawn_stub(SECRET).await;
        let wrong = "sk_test_wrong_key_9876543210";
        let stripe = client(addr, wrong, Duration::from_secs(5));
        let results = [
            stripe
                .charge(&request("k-wrong", "tok_visa", 100))
                .await
                .err(),
            stripe.retrieve("pi_123").await.err(),
            stripe.refund("pi_123").await.err(),
            stripe.list_succeeded_since(0).await.err(),
        ];
        for result in results {
            let Some(PaymentError::Unavailable(message)) = result else {
                panic!("{result:?}");
            };
            assert!(message.contains("401"), "{message}");
            assert!(!message.contains(wrong), "{message}");
            assert!(!message.contains("9876543210"), "{message}");
        }
    }

    #[tokio::test]
    async fn a_slow_answer_is_a_timeout_and_the_replay_finds_the_charge() {
        let (addr, stub) = spawn_stub(SECRET).await;
        let stripe = client(addr, SECRET, Duration::from_millis(300));
        stub.delay_next(Duration::from_secs(3));
        assert_eq!(
            stripe.charge(&request("k-slow", "tok_visa", 700)).await,
            Err(PaymentError::Timeout)
        );
        // The charge happened at Stripe; the replay of the key answers for it, once.
        let replay = stripe
            .charge(&request("k-slow", "tok_visa", 700))
            .await
            .expect("replay");
        assert!(
            matches!(replay, ChargeOutcome::Succeeded { .. }),
            "{replay:?}"
        );
        assert_eq!(stub.charges_for_key("k-slow"), 1);
    }

    #[tokio::test]
    async fn a_dead_stripe_is_unavailable() {
        let (addr, stub) = spawn_stub(SECRET).await;
        drop(stub);
        // Give the server a moment to stop listening.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let stripe = client(addr, SECRET, Duration::from_secs(2));
        let result = stripe.retrieve("pi_1").await;
        assert!(
            matches!(result, Err(PaymentError::Unavailable(_))),
            "{result:?}"
        );
    }
    /// What a browser sends to tokenize a card.
    async fn tokenize(
        addr: std::net::SocketAddr,
        key: &str,
        card: &[(&str, &str)],
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let answer = reqwest::Client::new()
            .post(format!("http://{addr}/v1/tokens"))
            .bearer_auth(key)
            .form(card)
            .send()
            .await
            .expect("the stub answers");
        (answer.status(), answer.json().await.expect("JSON"))
    }

    fn card<'a>(
        number: &'a str,
        month: &'a str,
        year: &'a str,
        cvc: &'a str,
    ) -> [(&'a str, &'a str); 4] {
        [
            ("card[number]", number),
            ("card[exp_month]", month),
            ("card[exp_year]", year),
            ("card[cvc]", cvc),
        ]
    }

    #[tokio::test]
    async fn card_tokens_behave_as_stripes_test_cards_and_pay_once() {
        let (addr, _stub) = spawn_stub(SECRET).await;
        let stripe = client(addr, SECRET, Duration::from_secs(5));
        let pk = super::stub::StubConfig::default().publishable_key;
        // Refusals name Stripe's code for what is wrong; nothing becomes a token.
        for (fields, code) in [
            (
                card("4242 4242 4242 4241", "12", "2099", "123"),
                "incorrect_number",
            ),
            (card("42", "12", "2099", "123"), "incorrect_number"),
            (
                card("4242424242424242", "13", "2099", "123"),
                "invalid_expiry_month",
            ),
            (
                card("4242424242424242", "12", "1999", "123"),
                "invalid_expiry_year",
            ),
            (card("4242424242424242", "12", "2099", "12a"), "invalid_cvc"),
        ] {
            let (status, body) = tokenize(addr, &pk, &fields).await;
            assert_eq!(
                (status.as_u16(), body["error"]["code"].as_str()),
                (402, Some(code)),
                "{fields:?}: {body}"
            );
        }
        // The secret key is not a browser's.
        let (status, _) =
            tokenize(addr, SECRET, &card("4242424242424242", "12", "2099", "123")).await;
        assert_eq!(status.as_u16(), 401);
        let mut outcomes = Vec::new();
        for number in [
            "4242 4242 4242 4242",
            "4000000000000002",
            "4000000000009995",
            "4000002500003155",
        ] {
            let (status, token) = tokenize(addr, &pk, &card(number, "1", "99", "4321")).await;
            assert_eq!(status.as_u16(), 200, "{token}");
            let token = token["id"].as_str().expect("an id").to_owned();
            outcomes.push(
                stripe
                    .charge(&request(&format!("k-{number}"), &token, 700))
                    .await,
            );
            // A token pays once: another charge with it is refused, and charges nothing.
            let again = stripe
                .charge(&request(&format!("k2-{number}"), &token, 700))
                .await;
            assert_eq!(
                again,
                Err(PaymentError::TokenRefused("token_already_used".into()))
            );
        }
        assert!(
            matches!(outcomes[0], Ok(ChargeOutcome::Succeeded { .. })),
            "{outcomes:?}"
        );
        assert!(
            matches!(&outcomes[1], Ok(ChargeOutcome::Declined { reason, .. }) if reason == "generic_decline"),
            "{outcomes:?}"
        );
        assert!(
            matches!(&outcomes[2], Ok(ChargeOutcome::Declined { reason, .. }) if reason == "insufficient_funds"),
            "{outcomes:?}"
        );
        let Ok(ChargeOutcome::RequiresAction { payment_id }) = &outcomes[3] else {
            panic!("{outcomes:?}");
        };
        // The buyer's 3-D Secure step, with the publishable key: then it is captured.
        let step = |result: &'static str| {
            let url = format!("http://{addr}/v1/payment_intents/{payment_id}/authenticate");
            let pk = pk.clone();
            async move {
                reqwest::Client::new()
                    .post(url)
                    .bearer_auth(pk)
                    .form(&[("result", result)])
                    .send()
                    .await
                    .expect("the stub answers")
                    .status()
                    .as_u16()
            }
        };
        assert_eq!(step("maybe").await, 400);
        assert_eq!(step("succeed").await, 200);
        assert_eq!(step("succeed").await, 400, "nothing left to authenticate");
        let payment = stripe
            .retrieve(payment_id)
            .await
            .expect("retrieve")
            .expect("known");
        assert_eq!(payment.status, PaymentStatus::Succeeded);
    }

    #[tokio::test]
    async fn the_provider_service_sends_signed_webhooks_of_what_happened() {
        use std::sync::{Arc, Mutex};
        use warp::Filter;
        let secret = "whsec_stub_test";
        let received: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = warp::post()
            .and(warp::header::<String>("stripe-signature"))
            .and(warp::body::bytes())
            .map({
                let received = received.clone();
                move |signature: String, body: warp::hyper::body::Bytes| {
                    let verified = crate::signature::verify(
                        secret.as_bytes(),
                        &signature,
                        &body,
                        crate::now_unix(),
                        300,
                    );
                    let event = crate::webhook::parse(&body).expect("an event");
                    if verified.is_ok() {
                        received.lock().expect("lock").push(event.kind);
                    }
                    warp::reply()
                }
            });
        let (sink_addr, sink_server) = warp::serve(sink).bind_ephemeral(([127, 0, 0, 1], 0));
        let sink_task = tokio::spawn(sink_server);
        let (addr, _stub) = super::stub::spawn(
            super::stub::StubConfig {
                secret_key: SECRET.into(),
                webhook: Some(crate::delivery::WebhookTarget {
                    url: format!("http://{sink_addr}/"),
                    secret: secret.to_owned().into(),
                }),
                ..super::stub::StubConfig::default()
            },
            ([127, 0, 0, 1], 0).into(),
        )
        .await
        .expect("bound");
        let stripe = client(addr, SECRET, Duration::from_secs(5));
        let paid = succeeded(&stripe, "w-1").await;
        // A replay sends nothing more.
        succeeded(&stripe, "w-1").await;
        let _ = stripe
            .charge(&request("w-2", "tok_chargeDeclined", 100))
            .await;
        stripe.refund(&paid).await.expect("refunded");
        let mut kinds = Vec::new();
        for _ in 0..100 {
            kinds = received.lock().expect("lock").clone();
            if kinds.len() >= 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        kinds.sort();
        assert_eq!(
            kinds,
            [
                "charge.refunded",
                "payment_intent.payment_failed",
                "payment_intent.succeeded"
            ]
        );
        sink_task.abort();
    }
}
