// Flash sale, the whole buyer journey: buyers arrive at a constant rate, join the event's waiting
// room, poll their ticket (as often as its poll_after_ms says) until admitted, take a
// best-available hold with the admission token (POST /events/{id}/reservations with `quantity`,
// and `category`/`section` when given, header X-Admission-Token), and commit it with the
// sandbox's test card tok_visa. The end-of-test report (handleSummary) counts arrivals,
// admissions, holds, orders and every kind of refusal; teardown() prints the event's
// availability (capacity, free, held, sold).
//
// What this script does NOT check: correctness. "No seat sold twice" and "sold <= seats" are
// properties of Postgres (sold_seats, orders), which k6 does not see; the Rust load generator
// checks them against the database after its own flash sale. A k6 run tells latency,
// throughput, admissions and refusals as a buyer sees them.
//
// The waiting room: with ORG_TOKEN (organizer or admin token, `ticketctl token --sub org --role
// organizer`) and an event whose admission is open, setup() puts the event in queue mode at
// ADMIT_RATE admissions/s (default: RATE, so the room stays short) with burst ADMIT_BURST, and
// teardown() opens it again. Without ORG_TOKEN the organizer must have set it; on an event with
// no waiting room the buyers reserve directly (counted as fs_no_waiting_room).
//
//   k6 run -e TOKENS=/tmp/k6-buyers.txt -e ORG_TOKEN=$ORG k6/flash_sale.js
//   k6 run -e TOKENS=/tmp/k6-buyers.txt -e ORG_TOKEN=$ORG -e RATE=200 -e DURATION=1m \
//          -e ADMIT_RATE=100 -e MAX_VUS=5000 -e MAX_WAIT=300 k6/flash_sale.js
//
// Tokens: TOKENS (a file; k6/lib.js says how to mint them with `ticketctl token`) or TOKEN. Each
// arrival is the next buyer of the file and a buyer gets one ticket per event and run: use at
// least RATE x seconds buyers, fresh ones each run (a buyer whose ticket is already "done"
// cannot shop again: fs_refused_done). A waiting buyer holds a VU: MAX_VUS >= RATE x the
// longest wait (MAX_WAIT, default 120 s, then the buyer gives up).
// Settings: BASE_URL, EVENT (demo-show), RATE (buyers/s, 5), DURATION (30s), PRE_VUS (20),
// MAX_VUS (200), QUANTITY (seats a buyer, 2), CATEGORY, SECTION, PAYMENT_TOKEN (tok_visa),
// MAX_WAIT (s), ORG_TOKEN, ADMIT_RATE, ADMIT_BURST, SUMMARY_JSON (also write k6's summary
// data as JSON to this file).
import http from 'k6/http';
import { check, sleep } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';
import exec from 'k6/execution';
import {
  BASE_URL,
  EVENT,
  TREND_STATS,
  arrival,
  body,
  buyer,
  envNumber,
  envString,
  errorCode,
  eventInfo,
  header,
  params,
  report,
  requireBuyers,
  runId,
  seconds,
} from './lib.js';

const QUANTITY = Math.round(envNumber('QUANTITY', 2));
const CATEGORY = envString('CATEGORY', '');
const SECTION = envString('SECTION', '');
const PAYMENT_TOKEN = envString('PAYMENT_TOKEN', 'tok_visa');
const MAX_WAIT = envNumber('MAX_WAIT', 120);
const ORG_TOKEN = envString('ORG_TOKEN', '');

const JOIN_ANSWERS = http.expectedStatuses(200, 409);
const POLL_ANSWERS = http.expectedStatuses(200);
const HOLD_ANSWERS = http.expectedStatuses(200, 201, 403, 409);
const COMMIT_ANSWERS = http.expectedStatuses(200, 202, 402, 409, 410);

const arrived = new Counter('fs_buyers');
const noRoom = new Counter('fs_no_waiting_room');
const admittedCount = new Counter('fs_admitted');
const gaveUp = new Counter('fs_gave_up');
const holds = new Counter('fs_holds');
const seatsHeld = new Counter('fs_seats_held');
const orders = new Counter('fs_orders');
const seatsSold = new Counter('fs_seats_sold');
const pending = new Counter('fs_orders_pending');
const refusedSoldOut = new Counter('fs_refused_sold_out');
const refusedTaken = new Counter('fs_refused_seats_taken');
const refusedLimit = new Counter('fs_refused_ticket_limit');
const refusedAdmission = new Counter('fs_refused_admission');
const refusedDone = new Counter('fs_refused_done');
const refusedPayment = new Counter('fs_refused_payment');
const refusedExpired = new Counter('fs_refused_hold_expired');
const refusedOther = new Counter('fs_refused_other');
const rateLimited = new Counter('fs_rate_limited');
const errors = new Rate('fs_errors');
const queueWait = new Trend('fs_queue_wait', true);
const checkoutTime = new Trend('fs_checkout', true);

const sale = Object.assign(
  { executor: 'constant-arrival-rate' },
  arrival('', { rate: 5, duration: '30s', preAllocatedVUs: 20, maxVUs: 200 }),
);
const ADMIT_RATE = envNumber('ADMIT_RATE', sale.rate);
const ADMIT_BURST = Math.round(envNumber('ADMIT_BURST', Math.max(1, sale.rate)));

export const options = {
  summaryTrendStats: TREND_STATS,
  scenarios: { flash_sale: sale },
  thresholds: {
    'http_req_duration{name:commit}': ['p(99)<2000'],
    // Every answer is one the API documents (sold out and seats taken are answers); 5xx and
    // 429 are not.
    fs_errors: ['rate<0.01'],
    'checks{name:poll}': ['rate>0.99'],
    'checks{name:commit}': ['rate>0.99'],
  },
};

function organizer() {
  return params('admission', { token: ORG_TOKEN }, http.expectedStatuses(200));
}

export function setup() {
  requireBuyers(sale.rate * seconds(sale.duration), 'one buyer per arrival');
  const event = eventInfo(EVENT);
  if (QUANTITY < 1 || QUANTITY > event.max_tickets_per_buyer) {
    throw new Error(`QUANTITY must be 1 to ${event.max_tickets_per_buyer} (the event's max_tickets_per_buyer)`);
  }
  let restore = 0;
  if (event.admission_mode === 'open' && ORG_TOKEN) {
    const res = http.put(
      `${BASE_URL}/events/${EVENT}/admission`,
      JSON.stringify({
        mode: 'queue',
        rate_per_second: ADMIT_RATE,
        burst: ADMIT_BURST,
        max_tickets_per_buyer: event.max_tickets_per_buyer,
      }),
      organizer(),
    );
    if (res.status !== 200) throw new Error(`PUT admission: ${res.status} ${res.body}`);
    restore = event.max_tickets_per_buyer;
    console.log(`${EVENT}: waiting room set, ${ADMIT_RATE} admissions/s, burst ${ADMIT_BURST}`);
  } else if (event.admission_mode === 'open') {
    console.warn(`${EVENT} has no waiting room (no ORG_TOKEN to set one): buyers reserve directly`);
  }
  return { run: runId(), restore };
}

export function teardown(data) {
  const res = http.get(`${BASE_URL}/events/${EVENT}/availability`, params('setup_availability', null));
  const a = res.status === 200 ? body(res) : null;
  if (a) {
    console.log(`${EVENT} after the sale: capacity ${a.capacity}, free ${a.free}, held ${a.held}, sold ${a.sold}, blocked ${a.blocked}`);
  }
  if (ORG_TOKEN) {
    const room = http.get(`${BASE_URL}/events/${EVENT}/queue`, organizer());
    if (room.status === 200) console.log(`${EVENT} waiting room: ${room.body}`);
  }
  if (data.restore) {
    const put = http.put(
      `${BASE_URL}/events/${EVENT}/admission`,
      JSON.stringify({ mode: 'open', max_tickets_per_buyer: data.restore }),
      organizer(),
    );
    if (put.status !== 200) console.warn(`${EVENT}: admission not opened again: ${put.status} ${put.body}`);
  }
}

// A refusal by its error code; true when it is one the API documents for this step.
function refused(res) {
  const code = errorCode(res);
  switch (code) {
    case 'not_enough_seats':
      refusedSoldOut.add(1);
      return true;
    case 'seats_unavailable':
      refusedTaken.add(1);
      return true;
    case 'ticket_limit':
      refusedLimit.add(1);
      return true;
    case 'admission_required':
    case 'invalid_admission_token':
    case 'admission_expired':
      refusedAdmission.add(1);
      return true;
    case 'payment_declined':
      refusedPayment.add(1);
      return true;
    case 'hold_expired':
      refusedExpired.add(1);
      return true;
    case 'rate_limited':
      rateLimited.add(1);
      return false;
    default:
      refusedOther.add(1, { code });
      return res.status === 409;
  }
}

// Waits in the room; the admission token, '' for an event without a room, or null (gave up,
// refused or failed: already counted).
function waitForAdmission(who) {
  const joined = Date.now();
  const res = http.post(`${BASE_URL}/events/${EVENT}/queue`, null, params('join', who, JOIN_ANSWERS));
  if (res.status === 409 && errorCode(res) === 'no_waiting_room') {
    noRoom.add(1);
    return '';
  }
  let t = res.status === 200 ? body(res) : null;
  if (!check(res, { 'join: 200 with a ticket': () => t !== null && !!t.ticket }, { name: 'join' })) {
    errors.add(!refused(res));
    return null;
  }
  const ticket = t.ticket;
  while (t.status === 'waiting' || t.status === 'pre_queue') {
    const waited = (Date.now() - joined) / 1000;
    if (waited >= MAX_WAIT) {
      gaveUp.add(1);
      return null;
    }
    sleep(Math.min(Math.max(t.poll_after_ms || 1000, 250) / 1000, MAX_WAIT - waited));
    const p = http.get(`${BASE_URL}/events/${EVENT}/queue/${ticket}`, params('poll', who, POLL_ANSWERS));
    const next = p.status === 200 ? body(p) : null;
    if (!check(p, { 'poll: 200 with a status': () => next !== null && !!next.status }, { name: 'poll' })) {
      if (p.status === 429) {
        // Slow down as told, then poll again.
        rateLimited.add(1);
        sleep(Number(header(p, 'Retry-After') || 1));
        continue;
      }
      errors.add(true);
      return null;
    }
    t = next;
  }
  if (t.status === 'sold_out') {
    // The room says nothing is left (every seat sold or blocked, none held): leave.
    gaveUp.add(1);
    return null;
  }
  if (t.status === 'done') {
    // This buyer already finished a checkout in this room (a token reused from an earlier run).
    refusedDone.add(1);
    return null;
  }
  if (t.status !== 'admitted' || !t.admission_token) {
    refusedAdmission.add(1, { status: t.status });
    return null;
  }
  admittedCount.add(1);
  queueWait.add(Date.now() - joined);
  return t.admission_token;
}

export default function (data) {
  const n = exec.scenario.iterationInTest;
  const who = buyer(n);
  arrived.add(1);
  const admission = waitForAdmission(who);
  if (admission === null) return;

  const started = Date.now();
  const request = { client_reservation_id: `${data.run}-f${n}`, user_id: who.user, quantity: QUANTITY };
  if (CATEGORY) request.category = CATEGORY;
  if (SECTION) request.section = SECTION;
  const extra = admission ? { 'X-Admission-Token': admission } : {};
  const hold = http.post(`${BASE_URL}/events/${EVENT}/reservations`, JSON.stringify(request), params('hold', who, HOLD_ANSWERS, extra));
  if (hold.status !== 201 && hold.status !== 200) {
    errors.add(!refused(hold));
    return;
  }
  const h = body(hold);
  holds.add(1);
  seatsHeld.add(h.seats.length);

  const commit = http.post(
    `${BASE_URL}/reservations/${h.hold_id}/commit`,
    JSON.stringify({ idempotency_key: `${data.run}-fpay${n}`, payment_token: PAYMENT_TOKEN }),
    params('commit', who, COMMIT_ANSWERS),
  );
  const order = commit.status === 200 ? body(commit) : null;
  check(commit, { 'commit: 200 paid': () => order !== null && order.status === 'paid' }, { name: 'commit' });
  if (commit.status === 200) {
    orders.add(1);
    seatsSold.add(order.seats.length);
    checkoutTime.add(Date.now() - started);
    errors.add(false);
  } else if (commit.status === 202) {
    pending.add(1);
    errors.add(false);
  } else {
    errors.add(!refused(commit));
  }
}

export function handleSummary(data) {
  const text = report(data, `flash sale of ${EVENT}`, [
    {
      title: 'buyers',
      lines: [
        ['arrived', 'fs_buyers'],
        ['admitted', 'fs_admitted'],
        ['gave up waiting', 'fs_gave_up'],
        ['no waiting room', 'fs_no_waiting_room'],
        ['time in the queue', 'fs_queue_wait'],
      ],
    },
    {
      title: 'holds and orders',
      lines: [
        ['holds', 'fs_holds'],
        ['seats held', 'fs_seats_held'],
        ['orders paid', 'fs_orders'],
        ['seats sold', 'fs_seats_sold'],
        ['orders pending (202)', 'fs_orders_pending'],
        ['hold to paid order', 'fs_checkout'],
        ['commit request', 'http_req_duration{name:commit}'],
      ],
    },
    {
      title: 'refusals',
      lines: [
        ['sold out (not_enough_seats)', 'fs_refused_sold_out'],
        ['seats taken while picking', 'fs_refused_seats_taken'],
        ['over the ticket limit', 'fs_refused_ticket_limit'],
        ['admission refused', 'fs_refused_admission'],
        ['ticket already done', 'fs_refused_done'],
        ['payment declined', 'fs_refused_payment'],
        ['hold expired', 'fs_refused_hold_expired'],
        ['other refusals', 'fs_refused_other'],
        ['rate limited (429)', 'fs_rate_limited'],
        ['unexpected answers', 'fs_errors'],
      ],
    },
  ]);
  const out = { stdout: text };
  const file = envString('SUMMARY_JSON', '');
  if (file) out[file] = JSON.stringify(data, null, 2);
  return out;
}
