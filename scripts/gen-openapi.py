#!/usr/bin/env python3
"""Writes the gateway's two OpenAPI 3.1 documents: gateway/openapi.json (the public listener's,
served at /openapi.json) and gateway/openapi-admin.json (the admin listener's, served at
/admin/openapi.json on the admin listener only). Neither names a server: the gateway adds its
configured address when it serves them (gateway/src/openapi.rs). Each document's routes must
match gateway/src/filters.rs ROUTES and ADMIN_ROUTES: the gateway's tests compare them, and
scripts/schemathesis checks the running gateway against both. With --check it writes nothing and
fails when the committed documents differ from what it would write (scripts/test runs that)."""
import json, pathlib, sys

ERR = {"$ref": "#/components/responses/Error"}
# What every route answers besides its own errors: 429 on every rate-limited route (each one
# behind the per-IP limit, and every authenticated one), 503 on every route that reads Redis
# or Postgres.
SHARED = {429: {"$ref": "#/components/responses/RateLimited"}, 503: {"$ref": "#/components/responses/Unavailable"}}
# gateway/src/request_id.rs: every answer names its request (the client's X-Request-Id when well
# formed, else a fresh id); every error carries it as details.request_id.
REQUEST_ID = {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"}
REQUEST_ID_HEADER = {"X-Request-Id": {"required": True, "description": "the request's id: the client's X-Request-Id when it is 1 to 64 of [A-Za-z0-9._-], else a fresh one", "schema": REQUEST_ID}}
def r(desc, schema=None, headers=None):
    out = {"description": desc}
    if schema is not None:
        out["content"] = {"application/json": {"schema": schema}}
    out["headers"] = {**(headers or {}), **REQUEST_ID_HEADER}
    return out
def errors(*codes):
    return {str(c): SHARED.get(c, ERR) for c in codes}
def ref(name):
    return {"$ref": f"#/components/schemas/{name}"}
def body(schema, desc=None):
    b = {"required": True, "content": {"application/json": {"schema": schema}}}
    if desc: b["description"] = desc
    return b
# The ids as their parsers take them (coordinator/src/ids.rs: EventId, SeatId, SectionId, UserId,
# ClientReservationId; HoldId and the order and ticket ids are UUIDs). A path id that does not
# parse names nothing: 404.
def key_safe(max_len, desc=None):
    s = {"type": "string", "pattern": f"^[A-Za-z0-9_.-]{{1,{max_len}}}$"}
    if desc: s["description"] = desc
    return s
UUID = {"type": "string", "format": "uuid", "pattern": "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"}
def path_param(name, schema):
    return {"name": name, "in": "path", "required": True, "schema": schema}
EVENT_ID = path_param("event_id", key_safe(64))
HOLD_ID = path_param("hold_id", UUID)
ORDER_ID = path_param("order_id", UUID)
TICKET = path_param("ticket", UUID)
TICKET_ID = path_param("ticket_id", UUID)
ENTRY_ID = path_param("entry_id", UUID)
INM = {"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"}}
CACHE = {"ETag": {"schema": {"type": "string"}}, "Cache-Control": {"schema": {"type": "string"}}}
BEARER = [{"bearer": []}]
# A query parameter sent empty (`cursor=`, as a form or a URL template sends it) is an absent one.
def or_empty(schema):
    return {"anyOf": [schema, {"const": ""}]}
# Text that must hold something other than spaces (catalog/src/events.rs, seatmap.rs).
def text(max_len):
    return {"type": "string", "minLength": 1, "maxLength": max_len, "pattern": "\\S"}
# Printable ASCII without spaces (gateway/src/handlers/checkout.rs: both travel in headers).
def printable(max_len, desc=None):
    s = {"type": "string", "pattern": f"^[!-~]{{1,{max_len}}}$"}
    if desc: s["description"] = desc
    return s

def op(summary, responses, params=None, request=None, security=None, tags=None, desc=None,
       limited=True, reads=True):
    """limited: behind a rate limit (429); reads: reads Redis or Postgres (503)."""
    responses = dict(responses)
    # Every bearer route answers 403 to a token of the wrong role: a gate's token opens gates
    # only, and the gate routes take nothing else.
    if security == BEARER and "403" not in responses: responses.update(errors(403))
    if limited: responses.update(errors(429))
    if reads: responses.update(errors(503))
    o = {"summary": summary, "responses": responses}
    if desc: o["description"] = desc
    if params: o["parameters"] = params
    if request: o["requestBody"] = request
    if security is not None: o["security"] = security
    if tags: o["tags"] = tags
    return o

# catalog::events::MAX_PRICE_CENTS
PRICES = {"type": "object", "propertyNames": key_safe(64), "additionalProperties": {"type": "integer", "minimum": 0, "maximum": 10_000_000}}
# Probes are never limited (they must always get through) and read nothing.
HEALTHZ = {"get": op("The process is up", {"200": r("ok")}, security=[], tags=["ops"], limited=False, reads=False)}
paths = {
  "/healthz": HEALTHZ,
  "/readyz": {"get": op("Redis and Postgres answer", {"200": r("ready")}, security=[], tags=["ops"], limited=False)},
  "/openapi.json": {"get": op("This document", {"200": r("OpenAPI 3.1", {"type": "object"})}, security=[], tags=["ops"], limited=False, reads=False)},
  "/events": {
    "get": op("List events (drafts hidden), keyset-paginated, cacheable 30 s", {
        "200": r("A page", ref("EventPage"), CACHE), "304": r("Not modified", headers=CACHE), **errors(400)},
        params=[{"name": n, "in": "query", "required": False, "schema": s, "description": d} for n, s, d in [
          ("from", or_empty({"type": "string", "format": "date-time"}), "starts at or after"),
          ("to", or_empty({"type": "string", "format": "date-time"}), "starts before"),
          ("q", {"type": "string"}, "case-insensitive title substring"),
          ("venue", {"type": "string"}, "venue id"),
          ("category", {"type": "string"}, "event category"),
          ("cursor", {"type": "string", "pattern": "^[A-Za-z0-9_-]*$"}, "next_cursor of the previous page, as issued (400 otherwise)"),
          ("limit", or_empty({"type": "integer", "minimum": 1, "maximum": 100, "default": 20}), "page size")]] + [INM],
        security=[], tags=["browse"]),
    "post": op("Create an event (draft) with a price per category", {
        "201": r("Created", ref("Event")), **errors(400, 401, 403, 404, 409, 413, 415, 422)},
        request=body(ref("EventDraft")), security=BEARER, tags=["organizer"]),
  },
  "/events/{event_id}": {"get": op("One event", {"200": r("The event", ref("Event"), CACHE), "304": r("Not modified"), **errors(404)},
        params=[EVENT_ID, INM], security=[], tags=["browse"])},
  "/events/{event_id}/seatmap": {"get": op("Layout and availability (cached per process, 5 s bound, invalidated by pub/sub)",
        {"200": r("The seat map", ref("SeatmapResponse"), CACHE), "304": r("Not modified"), **errors(404)},
        params=[EVENT_ID, INM], security=[], tags=["browse"])},
  "/events/{event_id}/availability": {"get": op("Counts per section, straight from the coordinator",
        {"200": r("Counts", {"type": "object"}), **errors(404)}, params=[EVENT_ID], security=[], tags=["browse"])},
  "/events/{event_id}/availability/stream": {"get": op("Live availability: server-sent events of the seats that change",
        {"200": {"description": "An endless text/event-stream. First a `snapshot` event (data: {\"v\": id, \"taken\": [seat ids not free]}), or after a `Last-Event-ID` this process still knows, the `diff` events missed since; then one `diff` per change (data: {\"v\": id, \"taken\": [...], \"freed\": [...]}), and a comment line every 15 s. An id from another process or too old gets a snapshot.",
                 "headers": REQUEST_ID_HEADER, "content": {"text/event-stream": {"schema": {"type": "string"}}}}, **errors(404)},
        params=[EVENT_ID, {"name": "Last-Event-ID", "in": "header", "required": False, "schema": {"type": "string"},
                 "description": "the id of the last event received (browsers send it when they reconnect)"}],
        security=[], tags=["browse"])},
  "/payments/config": {"get": op("Where a browser tokenizes a card (never sending it to us) and plays 3-D Secure, cacheable 300 s",
        {"200": r("The public payment settings", {"type": "object", "additionalProperties": False,
            "required": ["provider", "tokenize_url", "authenticate_url", "publishable_key", "test_tokens"],
            "properties": {"provider": {"type": "string", "enum": ["stripe", "sandbox"]},
                           "tokenize_url": {"type": ["string", "null"], "description": "POST card[number], card[exp_month], card[exp_year], card[cvc] with Bearer publishable_key: a one-time token"},
                           "authenticate_url": {"type": ["string", "null"], "description": "the sandbox's 3-D Secure step: POST result=succeed|fail, {id} = the commit's payment_id"},
                           "publishable_key": {"type": ["string", "null"]},
                           "test_tokens": {"type": "array", "items": {"type": "string"}}}}, CACHE),
         "304": r("Not modified")},
        params=[INM], security=[], tags=["browse"], reads=False)},
  "/events/{event_id}/reservations": {"post": op("Hold seats: chosen seat_ids, quantity for best available, or area and quantity for general admission",
        {"201": r("Held", ref("Hold")), "200": r("A replay of the same client_reservation_id", ref("Hold")),
         **errors(400, 401, 403, 404, 409, 413, 415, 422)},
        params=[EVENT_ID, {"name": "X-Admission-Token", "in": "header", "required": False, "schema": {"type": "string"},
                 "description": "required when the event has a waiting room: the token its queue gave you once admitted"}],
        request=body(ref("ReserveRequest")), security=BEARER, tags=["holds"],
        desc="403 codes: admission_required, invalid_admission_token, admission_expired (details.queue names the waiting room), user_mismatch. 409 codes: seats_unavailable (details.unavailable names each seat and its state), ticket_limit (details: limit, counted), idempotency_conflict, request_in_progress, not_enough_seats, event_frozen, event_not_on_sale, sale_not_open.")},
  "/events/{event_id}/prices": {"put": op("Change prices", {"200": r("The event", ref("Event")), **errors(400, 401, 403, 404, 413, 415, 422)},
        params=[EVENT_ID], request=body({"type": "object", "additionalProperties": False, "required": ["prices"],
            "properties": {"prices": PRICES | {"minProperties": 1, "description": "cents per seat category; the categories to change (each one the venue's)"}}}),
        security=BEARER, tags=["organizer"])},
  "/events/{event_id}/blocks": {"post": op("Block free seats (press, production)", {"200": r("Newly blocked seats", {"type": "object"}), **errors(400, 401, 403, 404, 409, 413, 415, 422)},
        params=[EVENT_ID], request=body(ref("BlockRequest")), security=BEARER, tags=["organizer"])},
  "/events/{event_id}/blocks/release": {"post": op("Return blocked seats to sale", {"200": r("Released seats", {"type": "object"}), **errors(400, 401, 403, 404, 413, 415, 422)},
        params=[EVENT_ID], request=body(ref("BlockRequest")), security=BEARER, tags=["organizer"])},
  "/reservations/{hold_id}": {
    "get": op("Read your hold", {"200": r("The hold", ref("Hold")), **errors(401, 404)}, params=[HOLD_ID], security=BEARER, tags=["holds"]),
    "delete": op("Cancel your hold", {"204": r("Cancelled"), **errors(401, 404, 409)}, params=[HOLD_ID], security=BEARER, tags=["holds"]),
  },
  "/reservations/{hold_id}/extend": {"post": op("Extend your hold (never past its cap)", {"200": r("The hold", ref("Hold")), **errors(400, 401, 404, 409, 410, 413, 415, 422)},
        params=[HOLD_ID], request=body({"type": "object", "additionalProperties": False, "required": ["ttl_seconds"],
            "properties": {"ttl_seconds": {"type": "integer", "minimum": 60, "maximum": 900}}}), security=BEARER, tags=["holds"])},
  "/reservations/{hold_id}/commit": {"post": op("Pay for your hold: 200 only once the order is committed in Postgres",
        {"200": r("Paid", ref("Order")), "202": r("Outcome not known yet (status pending or requires_action): GET /orders/{order_id} or replay the same request", ref("PendingOrder")),
         **errors(400, 401, 402, 403, 404, 409, 410, 413, 415, 422)},
        desc="402 declined (the hold stays until it expires); 403 another buyer's hold; 409 idempotency_key used with another hold or token, or a seat already sold (refunded); 410 the hold expired (a payment already taken is refunded).",
        params=[HOLD_ID], request=body({"type": "object", "additionalProperties": False, "required": ["idempotency_key", "payment_token"],
            "properties": {"idempotency_key": printable(200),
              "payment_token": printable(255, "sandbox: tok_visa, tok_chargeDeclined, tok_timeout, tok_requires_action")}}),
        security=BEARER, tags=["checkout"])},
  "/orders/{order_id}": {"get": op("Your order, or what is known of a commit in flight", {"200": r("The order (paid, refunded) or the attempt (pending, requires_action, declined)", ref("Order")), **errors(401, 404)},
        params=[ORDER_ID], security=BEARER, tags=["checkout"])},
  "/orders/{order_id}/tickets": {"get": op("Your order's tickets: one per seat, each valid one with its signed payload (what the QR code carries)",
        {"200": r("The tickets (transferred and refunded ones too, without a payload)", {"type": "object", "additionalProperties": False,
            "required": ["order_id", "tickets"], "properties": {"order_id": {"type": "string", "format": "uuid"},
              "tickets": {"type": "array", "items": ref("SeatTicket")}}}), **errors(401, 404)},
        params=[ORDER_ID], security=BEARER, tags=["tickets"],
        desc="Another buyer's order is a 404 like an unknown one.")},
  "/orders/{order_id}/tickets.pdf": {"get": op("Your order's valid tickets on one printable A4 page: each ticket's QR code and seat",
        {"200": {"description": "The page (private, no-store)", "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}},
         **errors(401, 404, 409)},
        params=[ORDER_ID], security=BEARER, tags=["tickets"],
        desc="404: no such order of yours. 409 no_valid_tickets: every ticket of the order was refunded or transferred.")},
  "/tickets": {"get": op("Every valid ticket you hold, bought or transferred to you (newest first, at most 500)",
        {"200": r("Your tickets", {"type": "object", "additionalProperties": False, "required": ["holder", "tickets"],
            "properties": {"holder": {"type": "string"}, "tickets": {"type": "array", "items": ref("SeatTicket")}}}), **errors(401)},
        security=BEARER, tags=["tickets"])},
  "/tickets/{ticket_id}.svg": {"get": op("A valid ticket you hold, as a QR code of its payload",
        {"200": {"description": "The QR code (private, no-store)", "content": {"image/svg+xml": {"schema": {"type": "string"}}}},
         **errors(401, 404, 409)},
        params=[TICKET_ID], security=BEARER, tags=["tickets"],
        desc="404 unknown_ticket: no such ticket of yours. 409 ticket_revoked: refunded or transferred (details.status).")},
  "/tickets/{ticket_id}/transfer": {"post": op("Transfer a ticket to another user: a new ticket (new id, new payload) for them, this one revoked; both audited",
        {"201": r("Transferred", {"type": "object", "additionalProperties": False, "required": ["transferred", "ticket"],
            "properties": {"transferred": {"type": "string", "format": "uuid", "description": "the ticket revoked"},
                           "ticket": ref("SeatTicket")}}),
         **errors(400, 401, 404, 409, 413, 415, 422)},
        params=[TICKET_ID], request=body({"type": "object", "additionalProperties": False, "required": ["to"],
            "properties": {"to": key_safe(128, "the new holder's user id")}}), security=BEARER, tags=["tickets"],
        desc="409 codes: transfer_to_self, ticket_revoked (refunded or transferred already), ticket_used (admitted at a gate).")},
  "/events/{event_id}/checkins": {
    "post": op("Check a scanned ticket in (gate role; the token's subject is the gate): each ticket is admitted once, whatever the number of gates",
        {"200": r("The verdict: every scan gets one, a payload that is not ours or names another event included", ref("Verdict")),
         **errors(400, 401, 403, 404, 413, 415, 422)},
        params=[EVENT_ID], request=body({"type": "object", "additionalProperties": False, "required": ["payload"],
            "properties": {"payload": {"type": "string", "description": "what the camera read"}}}), security=BEARER, tags=["gates"],
        desc="403: any token but a gate's."),
    "get": op("Admitted of sold, revoked, doubles, admissions by gate (the event's organizer, or admin)",
        {"200": r("The event's gate figures", {"type": "object", "required": ["event_id", "checkins"], "properties": {
            "event_id": {"type": "string"}, "checkins": {"type": "object", "required": ["sold", "admitted", "revoked", "doubles", "by_gate"],
              "properties": {"sold": {"type": "integer"}, "admitted": {"type": "integer"}, "revoked": {"type": "integer"},
                "doubles": {"type": "integer"}, "by_gate": {"type": "array", "items": {"type": "object",
                  "properties": {"gate": {"type": "string"}, "admitted": {"type": "integer"}}}}}}}}), **errors(401, 403, 404)},
        params=[EVENT_ID], security=BEARER, tags=["gates"])},
  "/events/{event_id}/checkins/batch": {"post": op("Upload an offline gate's scans (gate role): each recorded as if scanned then, earliest first; the answer names every ticket admitted twice",
        {"200": r("Each line's verdict and the doubles", ref("BatchReport")),
         **errors(400, 401, 403, 404, 413, 415, 422)},
        params=[EVENT_ID], request=body({"type": "object", "additionalProperties": False, "required": ["scans"],
            "properties": {"scans": {"type": "array", "maxItems": 5000, "items": {"type": "object", "additionalProperties": False,
                "required": ["payload", "gate", "scanned_at"], "properties": {"payload": {"type": "string", "minLength": 1, "maxLength": 1024},
                  "gate": key_safe(64, "the gate that scanned it"), "scanned_at": {"type": "string", "format": "date-time", "description": "the gate's clock"}}}}}},
            "each line is read on its own: a malformed one is named in the 422's details.bad_lines ({line, reason}, 0-based) while the good ones are recorded (details carries their results and doubles as a 200 would)"),
        security=BEARER, tags=["gates"],
        desc="Up to 4 MiB. 422 malformed_scans: some lines are not scans (details.bad_lines), the others recorded; 422 too_many_scans.")},
  "/events/{event_id}/checkin-kit": {"get": op("What a gate needs to decide offline (gate role): the public keys with their ids, the revocation list, and the tickets already let in",
        {"200": r("The kit (private, no-store)", {"type": "object", "required": ["event_id", "keys", "revoked", "admitted"], "properties": {
            "event_id": {"type": "string"}, "generated_at": {"type": "string", "format": "date-time"}, "payload_format": {"type": "string"},
            "keys": {"type": "array", "items": {"type": "object", "required": ["kid", "alg", "public_key"], "properties": {
                "kid": {"type": "string"}, "alg": {"const": "Ed25519"}, "public_key": {"type": "string", "description": "base64url of the 32-byte key"}}}},
            "revoked": {"type": "array", "items": {"type": "string", "format": "uuid"}},
            "admitted": {"type": "array", "description": "every ticket let in when the kit was made: an offline gate answers already_used for these",
                "items": {"type": "object", "required": ["ticket_id", "gate", "at"], "properties": {
                "ticket_id": {"type": "string", "format": "uuid"}, "gate": {"type": "string"}, "at": {"type": "string", "format": "date-time"}}}}}}), **errors(401, 403, 404)},
        params=[EVENT_ID], security=BEARER, tags=["gates"])},
  "/webhooks/payments": {"post": op("Payment provider events, verified by Stripe-Signature over the raw body; deduplicated by event id",
        {"200": r("Handled (or a duplicate)", {"type": "object"}), **errors(400, 409, 413)},
        params=[{"name": "Stripe-Signature", "in": "header", "required": True,
                 "schema": {"type": "string", "maxLength": 1024, "pattern": "^t=[0-9]+(,v1=[0-9a-fA-F]+)+$"},
                 "description": "t=<unix seconds>,v1=<hex HMAC-SHA256 of \"{t}.{raw body}\" with the endpoint's signing secret> (at most 4 v1 values, 1 KiB in all); missing, malformed, stale or not matching: 400 invalid_signature. 409 commit_in_flight: the commit that made the payment is still running; the event was not recorded, deliver it again"}],
        request=body({"type": "object", "required": ["id", "type", "data"]}), security=[], tags=["checkout"])},
  "/events/{event_id}/waitlist": {"post": op("Join a sold-out event's waiting list: seats that come back (an ended hold, a cancel, a refund, a lifted block) are offered in list order as a hold made for you",
        {"201": r("On the list", ref("WaitlistEntry")), "200": r("You were on the list already: your entry", ref("WaitlistEntry")),
         **errors(400, 401, 404, 409, 413, 415, 422)},
        params=[EVENT_ID], request=body({"type": "object", "additionalProperties": False, "required": ["quantity"],
            "properties": {"quantity": {"type": "integer", "minimum": 1, "maximum": 10, "description": "seats together in one section (at most the event's tickets per buyer)"},
                           "categories": {"type": "array", "maxItems": 16, "items": key_safe(64), "description": "seat categories you take; absent or empty: any"}}}),
        security=BEARER, tags=["waitlist"],
        desc="409 seats_available: seats you would take are for sale now (details.free). 409 event_not_on_sale, sale_not_open, event_frozen. 422 invalid_field naming quantity or categories.")},
  "/events/{event_id}/waitlist/{entry_id}": {
    "get": op("Your waiting-list entry: how many wait ahead of you, or the offer (a hold to commit like any other) and when it lapses",
        {"200": r("The entry", ref("WaitlistEntry")), **errors(401, 404)}, params=[EVENT_ID, ENTRY_ID], security=BEARER, tags=["waitlist"]),
    "delete": op("Leave the waiting list; an offer you had goes to the next buyer",
        {"200": r("The entry, left", ref("WaitlistEntry")), **errors(401, 404, 409)}, params=[EVENT_ID, ENTRY_ID], security=BEARER, tags=["waitlist"],
        desc="409 waitlist_entry_closed: the entry was taken, lapsed or left already."),
  },
  "/events/{event_id}/queue": {
    "post": op("Join the event's waiting room (one ticket per buyer; joining again returns it)",
        {"200": r("The ticket", ref("Ticket")), **errors(401, 404, 409)}, params=[EVENT_ID], security=BEARER, tags=["queue"]),
    "get": op("The waiting room's state (the event's organizer, or admin)",
        {"200": r("Joined, admitted, waiting, shopping, seats left, rate", {"type": "object"}), **errors(401, 403, 404, 409)}, params=[EVENT_ID], security=BEARER, tags=["queue"])},
  "/events/{event_id}/queue/{ticket}": {"get": op("Where your ticket stands; once admitted, the admission token to send as X-Admission-Token",
        {"200": r("The ticket", ref("Ticket")), **errors(401, 403, 404, 409)},
        params=[EVENT_ID, TICKET], security=BEARER, tags=["queue"])},
  "/events/{event_id}/queue/lottery": {"get": op("The lottery: the seed's SHA-256 before the draw; the seed and the pre-queue's tickets after (the order is the tickets sorted by hex SHA1(seed:ticket))",
        {"200": r("The lottery", {"type": "object"}), **errors(404, 409)}, params=[EVENT_ID], security=[], tags=["queue"])},
  "/events/{event_id}/admission": {"put": op("Set the event's admission: open, queue or lottery, rate, burst, window, per-buyer ticket limit, tie to the inventory",
        {"200": r("The admission (with the lottery seed's SHA-256)", {"type": "object"}), **errors(400, 401, 403, 404, 413, 415, 422)},
        params=[EVENT_ID], request=body({"type": "object", "additionalProperties": False, "required": ["mode"],
            "properties": {"mode": {"enum": ["open", "queue", "lottery"]}, "rate_per_second": {"type": "number", "minimum": 0.1, "maximum": 100000},
              "burst": {"type": "integer", "minimum": 1, "maximum": 1000000}, "window_seconds": {"type": "integer", "minimum": 60, "maximum": 3600},
              "max_tickets_per_buyer": {"type": "integer", "minimum": 1, "maximum": 100},
              "shoppers_per_free_seat": {"type": "number", "minimum": 0, "maximum": 1000,
                "description": "admission tied to the inventory: at most this many buyers shopping per seat free (0: not tied)"}}}), security=BEARER, tags=["organizer"])},
  "/venues": {"post": op("Import a venue from its seat map (docs/seatmap.md)", {"201": r("Created", {"type": "object"}), **errors(400, 401, 403, 409, 413, 415, 422)},
        request=body(ref("SeatMap")), security=BEARER, tags=["organizer"])},
}
for verb, summary in [("open", "Open sales: load the inventory into the coordinator, then on_sale"),
                      ("freeze", "Pause sales"), ("unfreeze", "Resume sales")]:
    paths[f"/events/{{event_id}}/{verb}"] = {"post": op(summary, {"200": r("The event", ref("Event")), **errors(401, 403, 404, 409)},
        params=[EVENT_ID], security=BEARER, tags=["organizer"])}
# The admin listener's document.
admin_paths = {
  "/healthz": HEALTHZ,
  "/admin/openapi.json": {"get": op("This document (the admin listener's)", {"200": r("OpenAPI 3.1", {"type": "object"})},
        security=[], tags=["ops"], limited=False, reads=False)},
  "/metrics": {"get": op("Prometheus metrics", {"200": r("Text exposition format")}, security=[], tags=["admin"], limited=False, reads=False)},
  "/admin/holds/{hold_id}": {
    "get": op("Any hold (admin role)", {"200": r("The hold", {"type": "object"}), **errors(401, 403, 404)}, params=[HOLD_ID], security=BEARER, tags=["admin"]),
    "delete": op("Release any hold (admin role)", {"204": r("Released"), **errors(401, 403, 404, 409)}, params=[HOLD_ID], security=BEARER, tags=["admin"])},
  "/admin/orders/{order_id}/refund": {"post": op("Refund an order through the provider (idempotent) and return its seats to sale (admin role)",
        {"200": r("Refunded", {"type": "object"}), **errors(401, 403, 404, 409)}, params=[ORDER_ID], security=BEARER, tags=["admin"])},
  "/admin/events/{event_id}/audit": {"get": op("Every seat state change of an event, newest first (admin role)",
        {"200": r("Audit entries", {"type": "object"}), **errors(400, 401, 403, 404, 422)},
        params=[EVENT_ID, {"name": "seat", "in": "query", "required": False, "schema": or_empty(key_safe(64))},
                {"name": "limit", "in": "query", "required": False, "schema": or_empty({"type": "integer", "minimum": 1, "maximum": 1000, "default": 100})}],
        security=BEARER, tags=["admin"])},
}

seat_id = key_safe(64)
seat_ids = {"type": "array", "items": seat_id, "minItems": 1}
# docs/seatmap.md, as catalog/src/seatmap.rs reads and validates it.
def strict(required, properties):
    return {"type": "object", "additionalProperties": False, "required": required, "properties": properties}
SEAT = strict(["id", "number", "x", "y", "category"], {
    "id": key_safe(64, "unique in the venue"), "number": {"type": "integer", "minimum": 1, "maximum": 2147483647},
    "x": {"type": "number"}, "y": {"type": "number"}, "category": key_safe(64, "one of the venue's categories"),
    "accessible": {"type": "boolean", "default": False}})
ROW = strict(["label", "seats"], {"label": {"type": "string", "minLength": 1, "maxLength": 16}, "seats": {"type": "array", "items": SEAT}})
SECTION = strict(["id", "name", "rows"], {"id": key_safe(64), "name": {"type": "string"}, "rows": {"type": "array", "minItems": 1, "items": ROW}})
AREA = strict(["id", "name", "capacity", "category"], {
    "id": key_safe(48), "name": text(200), "capacity": {"type": "integer", "minimum": 1, "maximum": 100000},
    "category": key_safe(64, "one of the venue's categories"),
    "shards": {"type": "integer", "minimum": 1, "maximum": 64, "description": "default: one per 2,500 places, 1 to 16"}})
SEAT_MAP = strict(["venue", "categories", "sections"], {
    "venue": strict(["id", "name"], {"id": key_safe(64), "name": text(200)}),
    "categories": {"type": "array", "items": strict(["id", "name"], {"id": key_safe(64), "name": {"type": "string"}})},
    "sections": {"type": "array", "minItems": 1, "maxItems": 200, "items": SECTION},
    "areas": {"type": "array", "items": AREA, "description": "general-admission areas, sold by quantity"}}) | {"description": "docs/seatmap.md"}
schemas = {
  "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message", "details"],
      "properties": {"code": {"type": "string"}, "message": {"type": "string"},
        "details": {"description": "the error's specifics; an object, always with the request's id", "properties": {"request_id": REQUEST_ID}}}}}},
  "Price": {"type": "object", "properties": {"category": {"type": "string"}, "amount_cents": {"type": "integer"}, "currency": {"type": "string"}}},
  "Event": {"type": "object", "properties": {"id": {"type": "string"}, "title": {"type": "string"}, "category": {"type": "string"},
      "venue_id": {"type": "string"}, "venue_name": {"type": "string"}, "starts_at": {"type": "string", "format": "date-time"},
      "sale_opens_at": {"type": "string", "format": "date-time"}, "status": {"enum": ["draft", "on_sale", "frozen", "ended"]},
      "prices": {"type": "array", "items": ref("Price")}}},
  "EventPage": {"type": "object", "properties": {"events": {"type": "array", "items": ref("Event")}, "next_cursor": {"type": ["string", "null"]}}},
  "EventDraft": {"type": "object", "additionalProperties": False, "required": ["id", "venue_id", "title", "category", "starts_at", "sale_opens_at", "prices"],
      "properties": {"id": key_safe(64), "venue_id": key_safe(64), "title": text(200), "category": text(64),
        "starts_at": {"type": "string", "format": "date-time"}, "sale_opens_at": {"type": "string", "format": "date-time", "description": "not after starts_at"},
        "prices": PRICES | {"description": "cents per seat category; every category of the venue"},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$", "default": "USD"}}},
  "ReserveRequest": {"type": "object", "additionalProperties": False, "required": ["client_reservation_id", "user_id"],
      "properties": {"client_reservation_id": key_safe(128, "idempotency key: a replay returns the same hold"),
        "user_id": key_safe(128, "must be the token's subject"),
        "seat_ids": seat_ids | {"maxItems": 10},
        "quantity": {"type": "integer", "minimum": 1, "maximum": 10, "description": "best available instead of seat_ids; with area, places of that area"},
        "area": key_safe(64, "a general-admission area: hold quantity places of it (422 naming the field for an unknown area, seat_ids, section, category or adjacent with it, or a quantity over what one hold may take; 409 not_enough_seats with what is free)"),
        "section": key_safe(64, "best available only"), "category": key_safe(64, "best available only"),
        "adjacent": {"type": "boolean", "const": True, "default": True, "description": "best available only: the group sits together where it can"},
        "ttl_seconds": {"type": "integer", "minimum": 60, "maximum": 900, "default": 300}},
      # Chosen seats, or best available with its options (422 seats_or_quantity otherwise).
      "oneOf": [{"required": ["seat_ids"], "not": {"anyOf": [{"required": [k]} for k in ["quantity", "section", "category", "adjacent", "area"]]}},
                {"required": ["quantity"], "not": {"required": ["seat_ids"]}}]},
  "Hold": {"type": "object", "properties": {"hold_id": {"type": "string", "format": "uuid"}, "event_id": {"type": "string"}, "user_id": {"type": "string"},
      "state": {"enum": ["pending", "held", "pinned", "sold", "released", "expired"]}, "seats": {"type": "array", "items": seat_id},
      "expires_at": {"type": "string", "format": "date-time"}, "cap_at": {"type": "string", "format": "date-time"},
      "total_amount": {"type": "number"}, "currency": {"type": "string"},
      "adjacent": {"type": "boolean", "description": "best available only: false when the group had to be split"}}},
  "WaitlistEntry": {"type": "object", "additionalProperties": False,
      "required": ["id", "event_id", "quantity", "categories", "status", "ahead", "hold_id", "seats", "offer_expires_at", "created_at"],
      "properties": {"id": UUID, "event_id": {"type": "string"}, "quantity": {"type": "integer"},
        "categories": {"type": "array", "items": {"type": "string"}},
        "status": {"enum": ["waiting", "offered", "taken", "lapsed", "left"], "description": "offered: hold_id holds seats for you until offer_expires_at; commit it as any hold"},
        "ahead": {"type": "integer", "description": "entries waiting ahead of this one (0 unless waiting)"},
        "hold_id": {"type": ["string", "null"], "format": "uuid"}, "seats": {"type": "array", "items": seat_id},
        "offer_expires_at": {"type": ["string", "null"], "format": "date-time"}, "created_at": {"type": "string", "format": "date-time"}}},
  "Ticket": {"type": "object", "properties": {"ticket": {"type": "string", "format": "uuid"},
      "status": {"enum": ["waiting", "pre_queue", "admitted", "expired", "done", "sold_out"]}, "position": {"type": "integer"},
      "ahead": {"type": "integer"}, "admitted_so_far": {"type": "integer"}, "expected_wait_seconds": {"type": "integer"},
      "poll_after_ms": {"type": "integer"}, "seats_left": {"type": ["integer", "null"], "description": "seats free now (the gateway's seat-map cache)"},
      "outlook": {"enum": ["possible", "unlikely", "unknown"], "description": "unlikely: more buyers ahead than seats free"},
      "admission_token": {"type": ["string", "null"]},
      "admission_expires_at": {"type": ["string", "null"], "format": "date-time"}}},
  "PendingOrder": {"type": "object", "properties": {"order_id": {"type": "string", "format": "uuid"},
      "status": {"enum": ["pending", "requires_action"]}, "payment_id": {"type": ["string", "null"]}, "message": {"type": "string"}}},
  "Order": {"type": "object", "properties": {"order_id": {"type": "string", "format": "uuid"}, "status": {"enum": ["paid", "refunded", "pending", "requires_action", "declined"]},
      "seats": {"type": "array", "items": seat_id}, "total_amount": {"type": "number"}, "currency": {"type": "string"}}},
  "SeatTicket": {"type": "object", "required": ["ticket_id", "order_id", "event_id", "seat_id", "holder", "issued_at", "status"],
      "properties": {"ticket_id": {"type": "string", "format": "uuid"}, "order_id": {"type": "string", "format": "uuid"},
        "event_id": {"type": "string"}, "seat_id": {"type": "string"}, "holder": {"type": "string"},
        "issued_at": {"type": "string", "format": "date-time"}, "status": {"enum": ["valid", "refunded", "transferred"]},
        "checked_in_at": {"type": ["string", "null"], "format": "date-time"}, "replaced_by": {"type": ["string", "null"], "format": "uuid"},
        "payload": {"type": "string", "description": "base64url(\"st1|ticket|event|seat|holder|kid\") \".\" base64url(Ed25519 signature); only on a valid ticket shown to its holder"},
        "qr_svg": {"type": "string", "description": "where its QR code is"}}},
  "Admission": {"type": "object", "required": ["gate", "at", "mode"], "properties": {"gate": {"type": "string"},
      "at": {"type": "string", "format": "date-time"}, "mode": {"enum": ["online", "offline"]}}},
  "Verdict": {"type": "object", "required": ["verdict"], "properties": {
      "verdict": {"enum": ["admitted", "already_used", "revoked", "wrong_event", "invalid"]},
      "gate": {"type": "string"}, "ticket_id": {"type": "string", "format": "uuid"}, "seat_id": {"type": "string"}, "holder": {"type": "string"},
      "first": ref("Admission") | {"description": "already_used: the admission that counted"},
      "reason": {"type": "string", "description": "revoked: refunded or transferred; invalid: malformed, unknown_key, bad_signature, unknown_ticket"},
      "ticket_event": {"type": "string", "description": "wrong_event: the event the ticket is for"}}},
  "BatchReport": {"type": "object", "required": ["recorded", "results", "doubles"], "properties": {
      "recorded": {"type": "integer"},
      "results": {"type": "array", "items": {"allOf": [ref("Verdict")], "properties": {"line": {"type": "integer"}}}},
      "doubles": {"type": "array", "items": {"type": "object", "required": ["ticket_id", "seat_id", "admissions"], "properties": {
          "ticket_id": {"type": "string", "format": "uuid"}, "seat_id": {"type": "string"},
          "admissions": {"type": "array", "items": ref("Admission"), "description": "the admission that counted, then each later one"}}}}}},
  "BlockRequest": {"type": "object", "additionalProperties": False, "required": ["seat_ids"],
      "properties": {"seat_ids": seat_ids | {"maxItems": 2000, "description": "at most coordinator::block::MAX_SEATS_PER_BLOCK"}, "tag": {"type": "string", "pattern": "^\\S{1,64}$", "default": "organizer"}}},
  "SeatMap": SEAT_MAP,
  "SeatmapResponse": {"type": "object", "properties": {"event_id": {"type": "string"}, "status": {"type": "string"}, "version": {"type": "string"},
      "layout": ref("SeatMap"), "availability": {"type": "array", "items": {"type": "object"}}}},
}
components = {"schemas": schemas,
  "responses": {
    "Error": {"description": "An error", "headers": REQUEST_ID_HEADER, "content": {"application/json": {"schema": ref("Error")}}},
    "RateLimited": {"description": "Over the per-IP or per-user request rate (code rate_limited)",
      "headers": {"Retry-After": {"required": True, "description": "seconds to wait", "schema": {"type": "integer", "minimum": 1}}, **REQUEST_ID_HEADER},
      "content": {"application/json": {"schema": ref("Error")}}},
    "Unavailable": {"description": "Redis or Postgres did not answer (code dependency_unavailable): retry shortly",
      "headers": {"Retry-After": {"required": True, "description": "seconds to wait", "schema": {"type": "integer", "minimum": 1}}, **REQUEST_ID_HEADER},
      "content": {"application/json": {"schema": ref("Error")}}}},
  "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}}
def referenced(value, found):
    """The names of the components `value` refers to, and theirs in turn."""
    if isinstance(value, dict):
        target = value.get("$ref", "")
        if target.startswith("#/components/"):
            kind, name = target.split("/")[2:4]
            if (kind, name) not in found:
                found.add((kind, name))
                referenced(components[kind][name], found)
        for v in value.values():
            referenced(v, found)
    elif isinstance(value, list):
        for v in value:
            referenced(v, found)
    return found
def document(title, description, paths):
    # Each document carries only the components its own operations use.
    used = referenced(paths, set())
    own = {kind: {name: spec for name, spec in specs.items() if (kind, name) in used}
           for kind, specs in components.items() if kind != "securitySchemes"}
    own["securitySchemes"] = components["securitySchemes"]
    return {
      "openapi": "3.1.0",
      "info": {"title": title, "version": "0.1.0",
               "description": description + " Every error has the shape {\"error\": {\"code\", \"message\", \"details\"}}, details carrying request_id; every answer has X-Request-Id, the client's when it sent a well-formed one (1 to 64 of [A-Za-z0-9._-]); a method a path does not serve is 405 with Allow."},
      "security": [],
      "paths": paths,
      "components": own,
    }
gateway = pathlib.Path(__file__).resolve().parent.parent / "gateway"
# --check: only say whether the committed documents are what this script writes (scripts/test).
check = sys.argv[1:] == ["--check"]
stale = []
for name, doc in [
    ("openapi.json", document("Seat allocation API", "The public listener.", paths)),
    ("openapi-admin.json", document("Seat allocation admin API", "The admin listener: keep it off the public network.", admin_paths)),
]:
    out = gateway / name
    text = json.dumps(doc, indent=2) + "\n"
    if check:
        if not out.exists() or out.read_text() != text:
            stale.append(str(out))
    else:
        out.write_text(text)
        print(f"wrote {out}")
if stale:
    sys.exit(f"not what scripts/gen-openapi.py writes (run it): {', '.join(stale)}")
