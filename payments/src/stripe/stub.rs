//! The sandbox provider service: a local stand-in for Stripe, over real HTTP with Stripe's
//! form-encoded requests and JSON answers, state in memory. The calls [`super::Stripe`] makes,
//! the browser's card tokenization (as Stripe.js does it), the buyer's 3-D Secure step, and
//! signed webhooks. Tests start it in-process ([`spawn_stub`], [`spawn`]); the
//! `sandbox-provider` binary runs it as its own process, so the gateway always talks to "a
//! remote provider" through one adapter and its CPU is the provider's, not ours.
//!
//! What it reproduces:
//! - `Authorization: Bearer <secret key>`; otherwise `401` with Stripe's error body (which, like
//!   Stripe's, quotes the rejected key partly masked).
//! - `Idempotency-Key` on POSTs: the same key with the same method, path and parameters replays
//!   the first answer (a decline too) with `Idempotent-Replayed: true`; with anything else it is
//!   `400 idempotency_error`. Like Stripe, only answers of calls that ran are stored (2xx, 402),
//!   not validation errors. [`StubHandle::expire_idempotency_keys`] plays Stripe's 24-hour expiry.
//! - Test payment methods, as tokens or PaymentMethods:
//!   - `tok_visa` / `pm_card_visa`: `succeeded`.
//!   - `tok_chargeDeclined` / `pm_card_chargeDeclined`: `402 card_error`, code `card_declined`,
//!     decline_code `generic_decline`, the PaymentIntent (now `requires_payment_method`) inside.
//!   - `tok_chargeDeclinedInsufficientFunds` / `pm_card_chargeDeclinedInsufficientFunds`: the
//!     same with decline_code `insufficient_funds`.
//!   - `tok_requires_action` / `pm_card_authenticationRequired`: `requires_action` (3-D Secure);
//!     [`StubHandle::complete_action`] plays the buyer.
//!   - anything else: `402 card_error` code `incorrect_number` (real Stripe answers an unknown
//!     PaymentMethod id with `400 resource_missing` and no PaymentIntent).
//! - Refunds by `payment_intent`: the latest charge becomes `refunded: true`; again is
//!   `400 charge_already_refunded`; no captured charge is `400` "does not have a successful
//!   charge to refund"; an unknown PaymentIntent is `400 resource_missing`.
//! - Lists newest first, with `created[gte]`, `created[lte]`, `limit` (1..=100, default 10),
//!   `starting_after`, `has_more`, and `expand[]=data.latest_charge`.
//!
//! - `tok_timeout`: succeeds, but the answer comes only after [`StubConfig::slow_answer`] (the
//!   charge and its webhook happen at once, as when a network is slow).
//! - Card tokenization, `POST /v1/tokens` with the **publishable** key (`Bearer pk_…`, or the
//!   `key` field as Stripe.js sends it) and `card[number]`, `card[exp_month]`,
//!   `card[exp_year]`, `card[cvc]`: a one-time token (`tok_…`; a second use is `400
//!   token_already_used`). Stripe's test numbers: 4242424242424242, 5555555555554444 and
//!   4000056655665556 succeed; 4000000000000002 is declined; 4000000000009995 has insufficient
//!   funds; 4000002500003155 and 4000002760003184 need 3-D Secure. A number failing the Luhn
//!   check is `402 incorrect_number`; any other valid number is declined, as Stripe's test mode
//!   declines real cards. A past or malformed expiry, or a CVC not of 3–4 digits, is `402` with
//!   Stripe's code for it.
//! - The buyer's 3-D Secure step, `POST /v1/payment_intents/{id}/authenticate` with the
//!   publishable key and `result=succeed|fail`: a `requires_action` PaymentIntent succeeds (or
//!   goes back to `requires_payment_method`). Stripe runs this step in its own iframe; the
//!   sandbox has no page, so the browser calls it directly.
//! - CORS on every route, so the browser reaches tokenization and 3-D Secure directly: card
//!   details never pass through the gateway (PCI stays with the provider).
//! - Signed webhooks ([`StubConfig::webhook`]): `payment_intent.succeeded` and
//!   `payment_intent.payment_failed` when a PaymentIntent is created or authenticated (not on
//!   replays), `charge.refunded` on a refund.
//! - [`StubConfig::latency`] added to every answer.
//!
//! What it does not: partial refunds, captures, any other endpoint (`404`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::oneshot;
use warp::http::{HeaderValue, StatusCode};
use warp::{Filter, Rejection, Reply};

/// Form or query pairs in order (`expand[]` may repeat).
type Params = Vec<(String, String)>;

/// The largest request body the stub reads.
const MAX_BODY_BYTES: u64 = 64 * 1024;

/// How the provider service behaves.
#[derive(Debug, Clone)]
pub struct StubConfig {
    /// The secret key the server side (our adapter) authenticates with.
    pub secret_key: String,
    /// The publishable key browsers tokenize cards and authenticate with.
    pub publishable_key: String,
    /// Where signed webhooks go; `None` sends none.
    pub webhook: Option<crate::delivery::WebhookTarget>,
    /// Added to every answer (0 for benchmarks).
    pub latency: Duration,
    /// How long a `tok_timeout` charge takes to answer.
    pub slow_answer: Duration,
}

impl Default for StubConfig {
    fn default() -> Self {
        Self {
            secret_key: "sk_test_stub".into(),
            publishable_key: "pk_test_stub".into(),
            webhook: None,
            latency: Duration::ZERO,
            slow_answer: Duration::from_secs(30),
        }
    }
}

/// Starts a stub on `127.0.0.1` on a free port that accepts `secret_key`. It runs until the
/// handle is dropped.
///
/// # Panics
///
/// When no loopback port can be bound, or outside a Tokio runtime.
pub async fn spawn_stub(secret_key: &str) -> (SocketAddr, StubHandle) {
    let config = StubConfig {
        secret_key: secret_key.to_owned(),
        ..StubConfig::default()
    };
    spawn(config, ([127, 0, 0, 1], 0).into())
        .await
        .expect("a loopback port for the Stripe stub")
}

/// Starts the provider service on `addr` (port 0: a free one). It runs until the handle is
/// dropped ([`StubHandle::stopped`] waits for that).
///
/// # Errors
///
/// When `addr` cannot be bound.
pub async fn spawn(
    config: StubConfig,
    addr: SocketAddr,
) -> Result<(SocketAddr, StubHandle), warp::Error> {
    let shared = Arc::new(Shared {
        state: Mutex::new(State::new(&config.secret_key, &config.publishable_key)),
        webhooks: crate::delivery::Deliverer::new(config.webhook.clone()),
        latency: config.latency,
        slow_answer: config.slow_answer,
    });
    let (stop, stopped) = oneshot::channel::<()>();
    let (addr, server) = warp::serve(routes(Arc::clone(&shared))).try_bind_with_graceful_shutdown(
        addr,
        async move {
            // Dropped or sent: either way, stop.
            let _ = stopped.await;
        },
    )?;
    tokio::spawn(server);
    Ok((
        addr,
        StubHandle {
            shared,
            stop: Some(stop),
        },
    ))
}

/// Controls a running stub; dropping it stops the server.
pub struct StubHandle {
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
}

impl std::fmt::Debug for StubHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StubHandle")
    }
}

impl Drop for StubHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            // The server may be gone already.
            let _ = stop.send(());
        }
    }
}

impl StubHandle {
    /// The buyer completes 3-D Secure: a `requires_action` PaymentIntent succeeds. False when
    /// the PaymentIntent is unknown or was not waiting for an action.
    pub fn complete_action(&self, payment_id: &str) -> bool {
        let mut state = self.shared.state();
        let Some(intent) = state.intents.get_mut(payment_id) else {
            return false;
        };
        if intent.status != "requires_action" {
            return false;
        }
        intent.status = "succeeded";
        intent.charge = Some(Charge::new(true));
        let payment = payment_of(intent);
        drop(state);
        self.shared
            .webhooks
            .send("payment_intent.succeeded", &payment);
        true
    }

    /// How many PaymentIntents were created under an idempotency key (replays create none).
    pub fn charges_for_key(&self, idempotency_key: &str) -> usize {
        self.shared
            .state()
            .created_per_key
            .get(idempotency_key)
            .copied()
            .unwrap_or(0)
    }

    /// The next request is answered only after `delay` (calls queue up: one delay per request).
    /// The call takes effect at once; only its answer is late, as when a network is slow.
    pub fn delay_next(&self, delay: Duration) {
        self.shared.state().delays.push_back(delay);
    }

    /// Forgets every stored idempotent answer, as Stripe does after 24 hours.
    pub fn expire_idempotency_keys(&self) {
        self.shared.state().idempotent.clear();
    }

    /// Requests answered so far (every route, errors included).
    pub fn requests_served(&self) -> usize {
        self.shared.state().requests
    }
}

struct Shared {
    state: Mutex<State>,
    webhooks: crate::delivery::Deliverer,
    latency: Duration,
    slow_answer: Duration,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock must not take the stub down with it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct State {
    secret_key: String,
    publishable_key: String,
    intents: HashMap<String, Intent>,
    /// Card tokens by id: what the card does when charged, and whether it was used.
    tokens: HashMap<String, Token>,
    /// Webhooks the call being answered owes, sent once it is answered.
    outbox: Vec<(&'static str, crate::Payment)>,
    /// The call being answered is a `tok_timeout` charge: its answer is late.
    slow: bool,
    /// Ids by creation, oldest first: lists walk it backwards.
    created_order: Vec<String>,
    idempotent: HashMap<String, Stored>,
    created_per_key: HashMap<String, usize>,
    delays: VecDeque<Duration>,
    requests: usize,
}

struct Intent {
    id: String,
    amount: i64,
    currency: String,
    status: &'static str,
    created: i64,
    metadata: BTreeMap<String, String>,
    payment_method: String,
    charge: Option<Charge>,
    last_payment_error: Option<Value>,
}

struct Charge {
    id: String,
    paid: bool,
    refunded: bool,
}

impl Charge {
    fn new(paid: bool) -> Self {
        Self {
            id: new_id("ch"),
            paid,
            refunded: false,
        }
    }
}

/// A card token.
struct Token {
    /// The test payment method the card behaves as (`tok_visa`, `tok_chargeDeclined`, …).
    behaves_as: &'static str,
    used: bool,
}

/// The first call under an idempotency key and its answer.
struct Stored {
    call: (&'static str, String, Params),
    answer: Answer,
}

#[derive(Clone)]
struct Answer {
    status: StatusCode,
    body: Value,
    replayed: bool,
}

impl Answer {
    fn ok(body: Value) -> Self {
        Self {
            status: StatusCode::OK,
            body,
            replayed: false,
        }
    }

    fn error(status: StatusCode, error: Value) -> Self {
        Self {
            status,
            body: json!({ "error": error }),
            replayed: false,
        }
    }

    /// `404 resource_missing`, as Stripe answers a PaymentIntent id it does not know.
    fn no_such_intent(id: &str) -> Self {
        Self::error(
            StatusCode::NOT_FOUND,
            json!({
                "type": "invalid_request_error",
                "code": "resource_missing",
                "param": "intent",
                "message": format!("No such payment_intent: '{id}'"),
            }),
        )
    }

    fn invalid(message: &str, code: Option<&str>, param: Option<&str>) -> Self {
        Self::error(
            StatusCode::BAD_REQUEST,
            json!({
                "type": "invalid_request_error",
                "message": message,
                "code": code,
                "param": param,
            }),
        )
    }
}

/// One of the calls, parsed by its route.
enum Call {
    CreateIntent(Params),
    RetrieveIntent {
        id: String,
        query: Params,
    },
    ListIntents(Params),
    CreateRefund(Params),
    /// The browser's: publishable key.
    CreateToken(Params),
    /// The browser's: publishable key.
    Authenticate {
        id: String,
        params: Params,
    },
}

impl Call {
    fn endpoint(&self) -> (&'static str, String) {
        match self {
            Self::CreateIntent(_) => ("POST", "/v1/payment_intents".into()),
            Self::RetrieveIntent { id, .. } => ("GET", format!("/v1/payment_intents/{id}")),
            Self::ListIntents(_) => ("GET", "/v1/payment_intents".into()),
            Self::CreateRefund(_) => ("POST", "/v1/refunds".into()),
            Self::CreateToken(_) => ("POST", "/v1/tokens".into()),
            Self::Authenticate { id, .. } => {
                ("POST", format!("/v1/payment_intents/{id}/authenticate"))
            }
        }
    }

    /// Made by a browser, with the publishable key (Stripe.js's calls), not the secret one.
    fn is_browsers(&self) -> bool {
        matches!(self, Self::CreateToken(_) | Self::Authenticate { .. })
    }

    fn params(&self) -> &Params {
        match self {
            Self::CreateIntent(params)
            | Self::CreateRefund(params)
            | Self::CreateToken(params)
            | Self::Authenticate { params, .. } => params,
            Self::RetrieveIntent { query, .. } | Self::ListIntents(query) => query,
        }
    }
}

fn routes(
    shared: Arc<Shared>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Infallible> + Clone {
    let form =
        || warp::body::content_length_limit(MAX_BODY_BYTES).and(warp::body::form::<Params>());
    let create = warp::post()
        .and(warp::path!("v1" / "payment_intents"))
        .and(form())
        .map(Call::CreateIntent);
    let retrieve = warp::get()
        .and(warp::path!("v1" / "payment_intents" / String))
        .and(warp::query::<Params>())
        .map(|id, query| Call::RetrieveIntent { id, query });
    let list = warp::get()
        .and(warp::path!("v1" / "payment_intents"))
        .and(warp::query::<Params>())
        .map(Call::ListIntents);
    let refund = warp::post()
        .and(warp::path!("v1" / "refunds"))
        .and(form())
        .map(Call::CreateRefund);
    let token = warp::post()
        .and(warp::path!("v1" / "tokens"))
        .and(form())
        .map(Call::CreateToken);
    let authenticate = warp::post()
        .and(warp::path!(
            "v1" / "payment_intents" / String / "authenticate"
        ))
        .and(form())
        .map(|id, params| Call::Authenticate { id, params });
    let call = create
        .or(retrieve)
        .unify()
        .or(list)
        .unify()
        .or(refund)
        .unify()
        .or(token)
        .unify()
        .or(authenticate)
        .unify();
    // Browsers call tokenization and 3-D Secure from the shop's origin, as with Stripe.js.
    let cors = warp::cors()
        .allow_any_origin()
        .allow_methods(["GET", "POST"])
        .allow_headers(["authorization", "content-type", "idempotency-key"]);
    warp::any()
        .map(move || Arc::clone(&shared))
        .and(call)
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::header::optional::<String>("idempotency-key"))
        .and_then(serve)
        .with(cors)
        .map(Reply::into_response)
        .recover(rejected)
        .unify()
}

async fn serve(
    shared: Arc<Shared>,
    call: Call,
    authorization: Option<String>,
    idempotency_key: Option<String>,
) -> Result<warp::reply::Response, Infallible> {
    let (delay, answer, outbox, slow) = {
        let mut state = shared.state();
        state.requests += 1;
        let delay = state.delays.pop_front();
        let answer = state.answer(call, authorization, idempotency_key);
        let slow = std::mem::take(&mut state.slow);
        (delay, answer, std::mem::take(&mut state.outbox), slow)
    };
    // As the embedded sandbox: the webhook goes out when the provider is done, after the
    // latency, or at once for a `tok_timeout` charge (done; only its answer is late).
    let send = |outbox: Vec<(&'static str, crate::Payment)>| {
        for (kind, payment) in &outbox {
            shared.webhooks.send(kind, payment);
        }
    };
    if slow {
        send(outbox);
        tokio::time::sleep(shared.slow_answer).await;
    } else {
        tokio::time::sleep(shared.latency).await;
        send(outbox);
    }
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    Ok(reply(answer))
}

/// Stripe's error shape for what no route took (unknown URL, bad body).
async fn rejected(rejection: Rejection) -> Result<warp::reply::Response, Infallible> {
    let answer = if rejection.is_not_found()
        || rejection.find::<warp::reject::MethodNotAllowed>().is_some()
    {
        Answer::error(
            StatusCode::NOT_FOUND,
            json!({"type": "invalid_request_error", "message": "Unrecognized request URL."}),
        )
    } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        Answer::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            json!({"type": "invalid_request_error", "message": "Request body too large."}),
        )
    } else {
        Answer::invalid(&format!("Invalid request: {rejection:?}"), None, None)
    };
    Ok(reply(answer))
}

fn reply(answer: Answer) -> warp::reply::Response {
    let mut response =
        warp::reply::with_status(warp::reply::json(&answer.body), answer.status).into_response();
    if answer.replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

impl State {
    fn new(secret_key: &str, publishable_key: &str) -> Self {
        Self {
            secret_key: secret_key.to_owned(),
            publishable_key: publishable_key.to_owned(),
            intents: HashMap::new(),
            tokens: HashMap::new(),
            outbox: Vec::new(),
            slow: false,
            created_order: Vec::new(),
            idempotent: HashMap::new(),
            created_per_key: HashMap::new(),
            delays: VecDeque::new(),
            requests: 0,
        }
    }

    fn answer(
        &mut self,
        call: Call,
        authorization: Option<String>,
        idempotency_key: Option<String>,
    ) -> Answer {
        let key = if call.is_browsers() {
            &self.publishable_key
        } else {
            &self.secret_key
        };
        // Stripe.js may send the publishable key as the `key` field instead of a header.
        let field = call
            .is_browsers()
            .then(|| param(call.params(), "key").map(|key| format!("Bearer {key}")))
            .flatten();
        if let Some(refusal) = authenticate(key, authorization.or(field).as_deref()) {
            return refusal;
        }
        let (method, path) = call.endpoint();
        // Stripe ignores the key on GETs.
        let key = idempotency_key.filter(|_| method == "POST");
        let fingerprint = key.as_ref().map(|key| {
            let mut params = call.params().clone();
            params.sort();
            (key.clone(), (method, path, params))
        });
        if let Some((key, call)) = &fingerprint {
            if let Some(stored) = self.idempotent.get(key) {
                if &stored.call != call {
                    return Answer::error(
                        StatusCode::BAD_REQUEST,
                        json!({
                            "type": "idempotency_error",
                            "message": format!(
                                "Keys for idempotent requests can only be used with the same \
                                 parameters they were first used with. Try using a key other \
                                 than '{key}' if you meant to execute a different request."
                            ),
                        }),
                    );
                }
                return Answer {
                    replayed: true,
                    ..stored.answer.clone()
                };
            }
        }
        let answer = match call {
            Call::CreateIntent(params) => self.create_intent(&params, key.as_deref()),
            Call::RetrieveIntent { id, query } => self.retrieve_intent(&id, &query),
            Call::ListIntents(query) => self.list_intents(&query),
            Call::CreateRefund(params) => self.create_refund(&params),
            Call::CreateToken(params) => self.create_token(&params),
            Call::Authenticate { id, params } => self.authenticate_intent(&id, &params),
        };
        if let Some((key, call)) = fingerprint {
            let ran = answer.status.is_success() || answer.status == StatusCode::PAYMENT_REQUIRED;
            if ran {
                self.idempotent.insert(
                    key,
                    Stored {
                        call,
                        answer: answer.clone(),
                    },
                );
            }
        }
        answer
    }

    fn create_intent(&mut self, params: &Params, idempotency_key: Option<&str>) -> Answer {
        let Some(amount) = param(params, "amount") else {
            return Answer::invalid(
                "Missing required param: amount.",
                Some("parameter_missing"),
                Some("amount"),
            );
        };
        let Some(amount) = amount.parse::<i64>().ok().filter(|amount| *amount > 0) else {
            return Answer::invalid(
                "This value must be greater than or equal to 1.",
                Some("parameter_invalid_integer"),
                Some("amount"),
            );
        };
        let Some(currency) = param(params, "currency")
            .filter(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_lowercase()))
        else {
            return Answer::invalid(
                "Invalid currency.",
                Some("parameter_invalid_string"),
                Some("currency"),
            );
        };
        let Some(payment_method) = param(params, "payment_method") else {
            return Answer::invalid(
                "You must provide a payment_method to confirm this PaymentIntent.",
                Some("parameter_missing"),
                Some("payment_method"),
            );
        };
        let metadata: BTreeMap<String, String> = params
            .iter()
            .filter_map(|(name, value)| {
                let name = name.strip_prefix("metadata[")?.strip_suffix(']')?;
                Some((name.to_owned(), value.clone()))
            })
            .collect();
        let mut intent = Intent {
            id: new_id("pi"),
            amount,
            currency: currency.to_owned(),
            status: "requires_confirmation",
            created: crate::now_unix(),
            metadata,
            payment_method: payment_method.to_owned(),
            charge: None,
            last_payment_error: None,
        };
        // A card token is used once; the test payment methods (`tok_visa`, …) any number of times.
        let behaves_as = match self.tokens.get_mut(payment_method) {
            Some(token) if token.used => {
                return Answer::invalid(
                    &format!("You cannot use a Stripe token more than once: {payment_method}."),
                    Some("token_already_used"),
                    Some("payment_method"),
                )
            }
            Some(token) => {
                token.used = true;
                token.behaves_as
            }
            None => payment_method,
        };
        let mut decline = None;
        if param(params, "confirm") == Some("true") {
            self.slow = behaves_as == "tok_timeout";
            match behaves_as {
                "tok_visa" | "pm_card_visa" | "tok_timeout" => {
                    intent.status = "succeeded";
                    intent.charge = Some(Charge::new(true));
                }
                "tok_requires_action" | "pm_card_authenticationRequired" => {
                    intent.status = "requires_action";
                }
                declined => {
                    let (code, decline_code, message) = match declined {
                        "tok_chargeDeclined" | "pm_card_chargeDeclined" => (
                            "card_declined",
                            Some("generic_decline"),
                            "Your card was declined.",
                        ),
                        "tok_chargeDeclinedInsufficientFunds"
                        | "pm_card_chargeDeclinedInsufficientFunds" => (
                            "card_declined",
                            Some("insufficient_funds"),
                            "Your card has insufficient funds.",
                        ),
                        _ => ("incorrect_number", None, "Your card number is incorrect."),
                    };
                    let charge = Charge::new(false);
                    let error = json!({
                        "type": "card_error",
                        "code": code,
                        "decline_code": decline_code,
                        "message": message,
                        "charge": charge.id,
                        "doc_url": format!(
                            "https://stripe.com/docs/error-codes/{}",
                            code.replace('_', "-")
                        ),
                    });
                    intent.status = "requires_payment_method";
                    intent.charge = Some(charge);
                    intent.last_payment_error = Some(error.clone());
                    decline = Some(error);
                }
            }
        }
        if let Some(key) = idempotency_key {
            *self.created_per_key.entry(key.to_owned()).or_default() += 1;
        }
        let body = intent_json(&intent, false);
        match intent.status {
            "succeeded" => self
                .outbox
                .push(("payment_intent.succeeded", payment_of(&intent))),
            "requires_payment_method" => self
                .outbox
                .push(("payment_intent.payment_failed", payment_of(&intent))),
            _ => {}
        }
        self.created_order.push(intent.id.clone());
        self.intents.insert(intent.id.clone(), intent);
        match decline {
            Some(mut error) => {
                error["payment_intent"] = body;
                Answer::error(StatusCode::PAYMENT_REQUIRED, error)
            }
            None => Answer::ok(body),
        }
    }

    fn retrieve_intent(&self, id: &str, query: &Params) -> Answer {
        match self.intents.get(id) {
            Some(intent) => Answer::ok(intent_json(intent, expands(query, "latest_charge"))),
            None => Answer::no_such_intent(id),
        }
    }

    fn list_intents(&self, query: &Params) -> Answer {
        let limit = match param(query, "limit").map(str::parse::<usize>) {
            None => 10,
            Some(Ok(limit)) if (1..=100).contains(&limit) => limit,
            Some(_) => {
                return Answer::invalid(
                    "Invalid limit: must be between 1 and 100.",
                    Some("parameter_invalid_integer"),
                    Some("limit"),
                )
            }
        };
        let mut bounds = [i64::MIN, i64::MAX];
        for (bound, name) in bounds.iter_mut().zip(["created[gte]", "created[lte]"]) {
            match param(query, name).map(str::parse::<i64>) {
                None => {}
                Some(Ok(value)) => *bound = value,
                Some(Err(_)) => {
                    return Answer::invalid(
                        "Invalid integer.",
                        Some("parameter_invalid_integer"),
                        Some(name),
                    )
                }
            }
        }
        let [since, until] = bounds;
        // Newest first: by `created`, then by creation within a second.
        let mut newest_first: Vec<&Intent> = self
            .created_order
            .iter()
            .rev()
            .filter_map(|id| self.intents.get(id))
            .collect();
        newest_first.sort_by_key(|intent| std::cmp::Reverse(intent.created));
        let after_cursor = match param(query, "starting_after") {
            None => 0,
            Some(cursor) => match newest_first.iter().position(|intent| intent.id == cursor) {
                Some(position) => position + 1,
                None => {
                    return Answer::invalid(
                        &format!("No such payment_intent: '{cursor}'"),
                        Some("resource_missing"),
                        Some("starting_after"),
                    )
                }
            },
        };
        let matching: Vec<&Intent> = newest_first
            .into_iter()
            .skip(after_cursor)
            .filter(|intent| (since..=until).contains(&intent.created))
            .collect();
        let expand = expands(query, "data.latest_charge");
        let data: Vec<Value> = matching
            .iter()
            .take(limit)
            .map(|intent| intent_json(intent, expand))
            .collect();
        Answer::ok(json!({
            "object": "list",
            "url": "/v1/payment_intents",
            "has_more": matching.len() > limit,
            "data": data,
        }))
    }

    fn create_token(&mut self, params: &Params) -> Answer {
        let number: String = param(params, "card[number]")
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        if !(12..=19).contains(&number.len())
            || !number.bytes().all(|b| b.is_ascii_digit())
            || !luhn(&number)
        {
            return card_error(
                "incorrect_number",
                None,
                "Your card number is incorrect.",
                Some("number"),
            );
        }
        let month = param(params, "card[exp_month]").and_then(|m| m.trim().parse::<u32>().ok());
        let Some(month) = month.filter(|m| (1..=12).contains(m)) else {
            return card_error(
                "invalid_expiry_month",
                None,
                "Your card's expiration month is invalid.",
                Some("exp_month"),
            );
        };
        let year = param(params, "card[exp_year]")
            .and_then(|y| y.trim().parse::<i32>().ok())
            // Two digits, as a card prints it.
            .map(|y| if (0..100).contains(&y) { 2000 + y } else { y });
        let today = chrono::Utc::now().date_naive();
        let (this_year, this_month) = (
            chrono::Datelike::year(&today),
            chrono::Datelike::month(&today),
        );
        let Some(year) = year.filter(|y| (this_year..=this_year + 100).contains(y)) else {
            return card_error(
                "invalid_expiry_year",
                None,
                "Your card's expiration year is invalid.",
                Some("exp_year"),
            );
        };
        if year == this_year && month < this_month {
            return card_error(
                "expired_card",
                None,
                "Your card has expired.",
                Some("exp_month"),
            );
        }
        let cvc = param(params, "card[cvc]").unwrap_or_default();
        if !(3..=4).contains(&cvc.len()) || !cvc.bytes().all(|b| b.is_ascii_digit()) {
            return card_error(
                "invalid_cvc",
                None,
                "Your card's security code is invalid.",
                Some("cvc"),
            );
        }
        let id = new_id("tok");
        self.tokens.insert(
            id.clone(),
            Token {
                behaves_as: behaviour_of(&number),
                used: false,
            },
        );
        Answer::ok(json!({
            "id": id,
            "object": "token",
            "type": "card",
            "livemode": false,
            "used": false,
            "created": crate::now_unix(),
            "card": {
                "object": "card",
                "brand": brand_of(&number),
                "last4": &number[number.len() - 4..],
                "exp_month": month,
                "exp_year": year,
                "funding": "credit",
            },
        }))
    }

    fn authenticate_intent(&mut self, id: &str, params: &Params) -> Answer {
        let succeed = match param(params, "result").unwrap_or("succeed") {
            "succeed" => true,
            "fail" => false,
            _ => {
                return Answer::invalid(
                    "Invalid result: must be one of succeed or fail.",
                    Some("parameter_invalid_string"),
                    Some("result"),
                )
            }
        };
        let Some(intent) = self.intents.get_mut(id) else {
            return Answer::no_such_intent(id);
        };
        if intent.status != "requires_action" {
            return Answer::error(
                StatusCode::BAD_REQUEST,
                json!({
                    "type": "invalid_request_error",
                    "code": "payment_intent_unexpected_state",
                    "message": format!(
                        "This PaymentIntent's status is {}; it does not need an action.",
                        intent.status
                    ),
                }),
            );
        }
        if succeed {
            intent.status = "succeeded";
            intent.charge = Some(Charge::new(true));
            self.outbox
                .push(("payment_intent.succeeded", payment_of(intent)));
        } else {
            intent.status = "requires_payment_method";
            intent.last_payment_error = Some(json!({
                "type": "card_error",
                "code": "payment_intent_authentication_failure",
                "message": "The provided PaymentMethod has failed authentication.",
            }));
            self.outbox
                .push(("payment_intent.payment_failed", payment_of(intent)));
        }
        Answer::ok(intent_json(intent, false))
    }

    fn create_refund(&mut self, params: &Params) -> Answer {
        let Some(id) = param(params, "payment_intent") else {
            return Answer::invalid(
                "One of the following params should be provided for this request: \
                 payment_intent or charge.",
                Some("parameter_missing"),
                Some("payment_intent"),
            );
        };
        let Some(intent) = self.intents.get_mut(id) else {
            return Answer::invalid(
                &format!("No such payment_intent: '{id}'"),
                Some("resource_missing"),
                Some("payment_intent"),
            );
        };
        let charge = match &mut intent.charge {
            Some(charge) if intent.status == "succeeded" && charge.paid => charge,
            _ => {
                return Answer::invalid(
                    &format!(
                        "This PaymentIntent ({id}) does not have a successful charge to refund."
                    ),
                    None,
                    Some("payment_intent"),
                )
            }
        };
        if charge.refunded {
            return Answer::invalid(
                &format!("Charge {} has already been refunded.", charge.id),
                Some("charge_already_refunded"),
                None,
            );
        }
        charge.refunded = true;
        let refunded = payment_of(intent);
        self.outbox.push(("charge.refunded", refunded));
        let Some(intent) = self.intents.get(id) else {
            return Answer::invalid("the PaymentIntent vanished", None, None);
        };
        let charge_id = intent.charge.as_ref().map(|charge| charge.id.clone());
        Answer::ok(json!({
            "id": new_id("re"),
            "object": "refund",
            "amount": intent.amount,
            "charge": charge_id,
            "created": crate::now_unix(),
            "currency": intent.currency,
            "metadata": {},
            "payment_intent": intent.id,
            "reason": null,
            "status": "succeeded",
        }))
    }
}

/// `None` when `authorization` carries `key`; otherwise Stripe's 401.
fn authenticate(key: &str, authorization: Option<&str>) -> Option<Answer> {
    let message = match authorization.and_then(|value| value.strip_prefix("Bearer ")) {
        Some(given) if given == key => return None,
        Some(given) => format!("Invalid API Key provided: {}", masked(given)),
        None => "You did not provide an API key. You need to provide your API key in the \
                 Authorization header, using Bearer auth."
            .to_owned(),
    };
    Some(Answer::error(
        StatusCode::UNAUTHORIZED,
        json!({"type": "invalid_request_error", "message": message}),
    ))
}

/// The payment as the provider interface reports it (what webhooks carry).
fn payment_of(intent: &Intent) -> crate::Payment {
    use crate::PaymentStatus;
    let refunded = intent.charge.as_ref().is_some_and(|charge| charge.refunded);
    crate::Payment {
        id: intent.id.clone(),
        status: match intent.status {
            "succeeded" if refunded => PaymentStatus::Refunded,
            "succeeded" => PaymentStatus::Succeeded,
            "requires_action" | "requires_confirmation" => PaymentStatus::RequiresAction,
            "processing" => PaymentStatus::Processing,
            _ => PaymentStatus::Declined,
        },
        amount_cents: intent.amount,
        currency: intent.currency.to_uppercase(),
        metadata: intent.metadata.clone(),
        created: intent.created,
    }
}

/// A card error (`402`), as Stripe answers a tokenization or charge it refuses.
fn card_error(
    code: &str,
    decline_code: Option<&str>,
    message: &str,
    param: Option<&str>,
) -> Answer {
    Answer::error(
        StatusCode::PAYMENT_REQUIRED,
        json!({
            "type": "card_error",
            "code": code,
            "decline_code": decline_code,
            "message": message,
            "param": param,
            "doc_url": format!("https://stripe.com/docs/error-codes/{}", code.replace('_', "-")),
        }),
    )
}

/// The Luhn check every card number passes.
fn luhn(digits: &str) -> bool {
    let mut sum = 0;
    for (i, c) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(c - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum % 10 == 0
}

/// What a test card number does when charged: the test payment method it behaves as.
fn behaviour_of(number: &str) -> &'static str {
    match number {
        "4242424242424242" | "5555555555554444" | "4000056655665556" => "tok_visa",
        "4000000000009995" => "tok_chargeDeclinedInsufficientFunds",
        "4000002500003155" | "4000002760003184" => "tok_requires_action",
        // 4000000000000002, and any real card: test mode declines it.
        _ => "tok_chargeDeclined",
    }
}

fn brand_of(number: &str) -> &'static str {
    match number.as_bytes().first() {
        Some(b'4') => "Visa",
        Some(b'5') | Some(b'2') => "MasterCard",
        Some(b'3') => "American Express",
        _ => "Unknown",
    }
}

fn intent_json(intent: &Intent, expand_charge: bool) -> Value {
    let latest_charge = match &intent.charge {
        None => Value::Null,
        Some(charge) if !expand_charge => json!(charge.id),
        Some(charge) => json!({
            "id": charge.id,
            "object": "charge",
            "amount": intent.amount,
            "amount_refunded": if charge.refunded { intent.amount } else { 0 },
            "captured": charge.paid,
            "currency": intent.currency,
            "paid": charge.paid,
            "payment_intent": intent.id,
            "refunded": charge.refunded,
            "status": if charge.paid { "succeeded" } else { "failed" },
        }),
    };
    let next_action = if intent.status == "requires_action" {
        json!({"type": "use_stripe_sdk", "use_stripe_sdk": {}})
    } else {
        Value::Null
    };
    json!({
        "id": intent.id,
        "object": "payment_intent",
        "amount": intent.amount,
        "amount_received": if intent.status == "succeeded" { intent.amount } else { 0 },
        "capture_method": "automatic",
        "client_secret": format!("{}_secret_stub", intent.id),
        "confirmation_method": "automatic",
        "created": intent.created,
        "currency": intent.currency,
        "last_payment_error": intent.last_payment_error,
        "latest_charge": latest_charge,
        "livemode": false,
        "metadata": intent.metadata,
        "next_action": next_action,
        "payment_method": intent.payment_method,
        "payment_method_types": ["card"],
        "status": intent.status,
    })
}

/// The first value of a parameter.
fn param<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

fn expands(query: &Params, field: &str) -> bool {
    query
        .iter()
        .any(|(key, value)| key == "expand[]" && value == field)
}

/// `sk_test_****…1234`, as Stripe shows a rejected key.
fn masked(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 12 {
        return "*".repeat(chars.len());
    }
    let (head, rest) = chars.split_at(8);
    let (middle, tail) = rest.split_at(rest.len() - 4);
    format!(
        "{}{}{}",
        head.iter().collect::<String>(),
        "*".repeat(middle.len()),
        tail.iter().collect::<String>()
    )
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}
