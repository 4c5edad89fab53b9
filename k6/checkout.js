// Checkout load: each iteration is a buyer holding free seats and committing the hold with the
// payment sandbox's test card (tok_visa) and an idempotency key. Success is 200: the order is
// paid AND durably written by the reconciler's writer (a 202 means the outcome was not known
// within the deadlines: counted, not a success). Thresholds encode the design document's p99
// checkout < 2 s (on the commit request) and the 2,000 commits/s capacity estimate as "k6 could
// start (nearly) every scheduled checkout" when run at that rate. Defaults are small (2
// checkouts/s for 30 s) so a run against a laptop is harmless.
//
// Seats are really sold: each iteration takes the next group of free seats (read from the seat
// map in setup), so a run buys at most every free seat of the event; once they are gone the
// remaining iterations only count checkout_no_seats. Refund or use a fresh event to run again
// (e.g. `ticketctl demo --event k6-show-2`, then -e EVENT=k6-show-2).
//
//   k6 run -e TOKENS=/tmp/k6-buyers.txt k6/checkout.js
//   k6 run -e TOKENS=/tmp/k6-buyers.txt -e EVENT=big-show -e RATE=2000 -e DURATION=1m \
//          -e PRE_VUS=500 -e MAX_VUS=5000 k6/checkout.js
//
// Tokens: TOKENS (a file; k6/lib.js says how to mint them with `ticketctl token`) or TOKEN. A
// buyer may hold and buy at most max_tickets_per_buyer seats of the event (8 by default) and
// make 20 requests/s: use at least RATE x seconds x SEATS / 8 buyers, and fresh ones each run.
// Settings: BASE_URL, EVENT (demo-show), RATE (checkouts/s, 2), DURATION (30s), PRE_VUS (10),
// MAX_VUS (100), SEATS (seats an order, 1), PAYMENT_TOKEN (tok_visa; the sandbox also knows
// tok_chargeDeclined, tok_timeout, tok_requires_action).
import http from 'k6/http';
import { check } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';
import exec from 'k6/execution';
import {
  BASE_URL,
  EVENT,
  TREND_STATS,
  arrival,
  body,
  buyer,
  droppedAtMost,
  envNumber,
  envString,
  errorCode,
  eventInfo,
  freeBlocks,
  params,
  requireBuyers,
  runId,
  seatRows,
  seconds,
} from './lib.js';

const SEATS = Math.round(envNumber('SEATS', 1));
const PAYMENT_TOKEN = envString('PAYMENT_TOKEN', 'tok_visa');

const HOLD_ANSWERS = http.expectedStatuses(200, 201, 409);
// 402 declined, 409 conflict, 410 expired are answers; with tok_visa only 200 is a success.
const COMMIT_ANSWERS = http.expectedStatuses(200, 202, 402, 409, 410);

const paid = new Counter('checkout_paid');
const pending = new Counter('checkout_pending');
const declined = new Counter('checkout_declined');
const conflicts = new Counter('checkout_conflicts');
const expired = new Counter('checkout_expired');
const holdRefused = new Counter('checkout_hold_refused');
const noSeats = new Counter('checkout_no_seats');
const errors = new Rate('checkout_errors');
const total = new Trend('checkout_duration', true);

const checkout = Object.assign(
  { executor: 'constant-arrival-rate' },
  arrival('', { rate: 2, duration: '30s', preAllocatedVUs: 10, maxVUs: 100 }),
);

export const options = {
  summaryTrendStats: TREND_STATS,
  scenarios: { checkout },
  thresholds: {
    'http_req_duration{name:commit}': ['p(99)<2000'],
    'checks{name:commit}': ['rate>0.99'],
    'checks{name:hold}': ['rate>0.99'],
    checkout_errors: ['rate<0.01'],
    'dropped_iterations{scenario:checkout}': [droppedAtMost(checkout, 0.01)],
  },
};

export function setup() {
  const wanted = checkout.rate * seconds(checkout.duration);
  const event = eventInfo(EVENT);
  if (SEATS < 1 || SEATS > event.max_tickets_per_buyer) {
    throw new Error(`SEATS must be 1 to ${event.max_tickets_per_buyer} (the event's max_tickets_per_buyer)`);
  }
  const perBuyer = Math.floor(event.max_tickets_per_buyer / SEATS);
  requireBuyers(Math.max(wanted / perBuyer, (2 * checkout.rate) / 20), `${perBuyer} order(s) per buyer, 20 requests/s each`);
  const blocks = freeBlocks(seatRows(EVENT), SEATS);
  if (blocks.length < wanted) {
    console.warn(`${EVENT} has ${blocks.length} free group(s) of ${SEATS} seat(s) for about ${wanted} checkouts: it will sell out`);
  }
  return { run: runId(), blocks };
}

export default function (data) {
  const n = exec.scenario.iterationInTest;
  if (n >= data.blocks.length) {
    noSeats.add(1);
    return;
  }
  const who = buyer(n);
  const started = Date.now();
  const hold = http.post(
    `${BASE_URL}/events/${EVENT}/reservations`,
    JSON.stringify({ client_reservation_id: `${data.run}-c${n}`, user_id: who.user, seat_ids: data.blocks[n] }),
    params('hold', who, HOLD_ANSWERS),
  );
  const holdOk = hold.status === 201 || hold.status === 200;
  check(hold, { 'hold: 201': () => holdOk }, { name: 'hold' });
  if (!holdOk) {
    // Someone else took the seats since setup read the map (or the buyer is over the limit).
    holdRefused.add(1, { code: errorCode(hold) });
    errors.add(hold.status !== 409);
    return;
  }
  const holdId = body(hold).hold_id;
  const commit = http.post(
    `${BASE_URL}/reservations/${holdId}/commit`,
    JSON.stringify({ idempotency_key: `${data.run}-pay${n}`, payment_token: PAYMENT_TOKEN }),
    params('commit', who, COMMIT_ANSWERS),
  );
  const order = commit.status === 200 ? body(commit) : null;
  check(commit, { 'commit: 200 paid': () => order !== null && order.status === 'paid' }, { name: 'commit' });
  switch (commit.status) {
    case 200:
      paid.add(1);
      total.add(Date.now() - started);
      break;
    case 202:
      pending.add(1);
      break;
    case 402:
      declined.add(1);
      break;
    case 409:
      conflicts.add(1, { code: errorCode(commit) });
      break;
    case 410:
      expired.add(1);
      break;
    default:
      break;
  }
  errors.add([200, 202, 402, 409, 410].indexOf(commit.status) < 0);
}
