//! Ticket signatures against an independent Ed25519 implementation: fixed vectors made by
//! Python's `cryptography` (`tests/vectors/gen.py`, which also re-checks RFC 8032's vectors),
//! and, where Python with `cryptography` is installed, payloads signed here now and verified by
//! it.
#![allow(clippy::unwrap_used)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use orders::tickets::{Claims, TicketKeys, Unverified};
use serde_json::Value;
use uuid::Uuid;

fn vectors() -> Value {
    serde_json::from_str(include_str!("vectors/tickets.json")).unwrap()
}

fn bytes32(hex_text: &str) -> [u8; 32] {
    hex::decode(hex_text).unwrap().try_into().unwrap()
}

#[test]
fn rfc8032_vectors_hold_for_the_signing_library() {
    use ed25519_dalek::{Signer, SigningKey, Verifier};
    for v in vectors()["rfc8032"].as_array().unwrap() {
        let key = SigningKey::from_bytes(&bytes32(v["secret"].as_str().unwrap()));
        assert_eq!(
            hex::encode(key.verifying_key().as_bytes()),
            v["public"].as_str().unwrap()
        );
        let message = hex::decode(v["message"].as_str().unwrap()).unwrap();
        let signature = key.sign(&message);
        assert_eq!(
            hex::encode(signature.to_bytes()),
            v["signature"].as_str().unwrap()
        );
        assert!(key.verifying_key().verify(&message, &signature).is_ok());
    }
}

#[test]
fn payloads_signed_by_python_match_ours_and_verify() {
    for v in vectors()["tickets"].as_array().unwrap() {
        let s = |k: &str| v[k].as_str().unwrap().to_owned();
        let keys = TicketKeys::new(&bytes32(&s("seed")), &s("kid")).unwrap();
        assert_eq!(
            hex::encode(
                URL_SAFE_NO_PAD
                    .decode(&keys.public_keys()[0].public_key)
                    .unwrap()
            ),
            s("public")
        );
        let ticket = Uuid::parse_str(&s("ticket")).unwrap();
        // Ed25519 is deterministic: the same key and message give the same bytes everywhere.
        assert_eq!(
            keys.payload(ticket, &s("event"), &s("seat"), &s("holder")),
            s("payload")
        );
        assert_eq!(
            keys.verify(&s("payload")).unwrap(),
            Claims {
                ticket,
                event: s("event"),
                seat: s("seat"),
                holder: s("holder"),
                kid: s("kid"),
            }
        );
        // One bit flipped anywhere in the signature: refused.
        let (message, signature) = s("payload")
            .split_once('.')
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .unwrap();
        let mut sig = URL_SAFE_NO_PAD.decode(&signature).unwrap();
        sig[17] ^= 0x04;
        let forged = format!("{message}.{}", URL_SAFE_NO_PAD.encode(sig));
        assert_eq!(keys.verify(&forged), Err(Unverified::BadSignature));
    }
}

/// Python verifies what we sign now (random keys and ids), when it has `cryptography`.
#[test]
fn python_verifies_fresh_payloads() {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import cryptography"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!(
            "python3 with cryptography is not installed: only the fixed vectors were checked"
        );
        return;
    }
    let mut cases = Vec::new();
    for i in 0..20u8 {
        let seed: [u8; 32] = rand_seed(i);
        let keys = TicketKeys::new(&seed, &format!("kid-{i}")).unwrap();
        let payload = keys.payload(Uuid::new_v4(), "show-1", &format!("A-{i}"), "alice");
        cases.push(
            serde_json::json!({"public": keys.public_keys()[0].public_key, "payload": payload}),
        );
    }
    let script = r#"
import base64, json, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
def unb64(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
ok = 0
for case in json.load(sys.stdin):
    message, signature = case["payload"].split(".")
    Ed25519PublicKey.from_public_bytes(unb64(case["public"])).verify(unb64(signature), unb64(message))
    assert unb64(message).decode().startswith("st1|")
    ok += 1
print(ok)
"#;
    use std::io::Write;
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&cases).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python refused a payload: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "20");
}

fn rand_seed(i: u8) -> [u8; 32] {
    let mut seed = *Uuid::new_v4().as_bytes();
    seed[0] = i;
    let mut full = [0u8; 32];
    full[..16].copy_from_slice(&seed);
    full[16..].copy_from_slice(Uuid::new_v4().as_bytes());
    full
}
