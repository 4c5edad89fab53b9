#!/usr/bin/env python3
"""Writes tickets.json: ticket payloads signed by an independent Ed25519 implementation
(Python's `cryptography`, over OpenSSL), which orders/tests/ticket_vectors.rs checks our signer
and verifier against. Also re-checks RFC 8032's first test vectors with the same library, so the
file's vectors and the RFC's agree.

    python3 orders/tests/vectors/gen.py > orders/tests/vectors/tickets.json

The payload format (orders/src/tickets.rs):
    base64url(message) "." base64url(signature), no padding,
    message = "st1|{ticket uuid}|{event}|{seat}|{holder}|{kid}"
"""
import base64, hashlib, json
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization

def b64(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

# RFC 8032 section 7.1, TEST 1-3: (secret, public, message, signature), hex.
RFC8032 = [
    ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
    ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
    ("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"),
]

def raw_public(key):
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

for secret, public, message, signature in RFC8032:
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(secret))
    assert raw_public(key).hex() == public
    assert key.sign(bytes.fromhex(message)).hex() == signature

rfc = [{"secret": s, "public": p, "message": m, "signature": g} for s, p, m, g in RFC8032]
tickets = []
for i, (ticket, event, seat, holder, kid) in enumerate([
    ("00000000-0000-0000-0000-000000000001", "show", "A-1", "alice", "k1"),
    ("6f1c2a4e-93d7-4b0f-8e55-1d2c3b4a5f60", "evt-2026-final", "orch-B-17", "bob_the.buyer", "2026-12"),
    ("ffffffff-ffff-ffff-ffff-ffffffffffff", "x" * 64, "s" * 64, "h" * 128, "k" * 32),
]):
    # A seed derived from the index: fixed, and different for each vector.
    seed = hashlib.sha256(f"ticket-vector-{i}".encode()).digest()
    key = Ed25519PrivateKey.from_private_bytes(seed)
    message = f"st1|{ticket}|{event}|{seat}|{holder}|{kid}".encode()
    signature = key.sign(message)
    tickets.append({"seed": seed.hex(), "public": raw_public(key).hex(), "kid": kid, "ticket": ticket,
                    "event": event, "seat": seat, "holder": holder,
                    "payload": b64(message) + "." + b64(signature)})
print(json.dumps({"generator": "orders/tests/vectors/gen.py (python cryptography)", "rfc8032": rfc, "tickets": tickets}, indent=2))
