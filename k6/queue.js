// Waiting-room load: buyers join an event's queue (POST /events/{id}/queue) and poll their ticket
// (GET /events/{id}/queue/{ticket}, the hottest call of a sale: one Redis script call, no
// Postgres), each at its own constant arrival rate. Two scenarios:
//   join  JOIN_RATE joins/s; buyer n % buyers. One ticket per buyer: once every buyer has joined,
//         a join answers the buyer's existing ticket (still the whole join path).
//   poll  POLL_RATE polls/s over the same buyers; a VU joins (idempotently) for a buyer whose
//         ticket it does not know yet, then polls.
// Nobody reserves here: see flash_sale.js for the whole journey.
//
// The event needs a waiting room. With ORG_TOKEN (an organizer or admin token: `ticketctl token
// --sub org --role organizer`) and an event whose admission is open, setup() puts it in queue
// mode (ADMIT_RATE admissions/s, default 1, burst ADMIT_BURST, default 1) and teardown() opens it
// again; without ORG_TOKEN the organizer must have done so (README: PUT /events/{id}/admission).
//
//   k6 run -e TOKENS=/tmp/k6-buyers.txt -e ORG_TOKEN=$ORG k6/queue.js
//   k6 run -e TOKENS=/tmp/k6-buyers.txt -e JOIN_RATE=500 -e POLL_RATE=5000 -e DURATION=2m \
//          -e POLL_MAX_VUS=1000 k6/queue.js
//
// Tokens: TOKENS (a file; k6/lib.js says how to mint them with `ticketctl token`) or TOKEN; a
// buyer makes at most 20 requests/s: at least (JOIN_RATE + POLL_RATE) / 20 buyers.
// Settings: BASE_URL, EVENT (demo-show), JOIN_RATE (5), POLL_RATE (20), DURATION (30s, both;
// JOIN_DURATION, POLL_DURATION apart), JOIN_PRE_VUS, JOIN_MAX_VUS, POLL_PRE_VUS, POLL_MAX_VUS,
// ORG_TOKEN, ADMIT_RATE, ADMIT_BURST, QUEUE_P99_MS (latency guard, not a design SLO: 500).
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
  buyers,
  envNumber,
  envString,
  errorCode,
  eventInfo,
  params,
  requireBuyers,
} from './lib.js';

const ORG_TOKEN = envString('ORG_TOKEN', '');
const ADMIT_RATE = envNumber('ADMIT_RATE', 1);
const ADMIT_BURST = Math.round(envNumber('ADMIT_BURST', 1));
const QUEUE_P99_MS = envNumber('QUEUE_P99_MS', 500);
const DURATION = envString('DURATION', '30s');

const OK = http.expectedStatuses(200);

const joined = new Counter('queue_joins');
const polled = new Counter('queue_polls');
const admitted = new Rate('queue_poll_admitted');
const errors = new Rate('queue_errors');
const expectedWait = new Trend('queue_expected_wait_seconds');

const join = Object.assign(
  { executor: 'constant-arrival-rate', exec: 'joinQueue' },
  arrival('JOIN_', { rate: 5, duration: DURATION, preAllocatedVUs: 5, maxVUs: 50 }),
);
const poll = Object.assign(
  { executor: 'constant-arrival-rate', exec: 'pollTicket' },
  arrival('POLL_', { rate: 20, duration: DURATION, preAllocatedVUs: 10, maxVUs: 100 }),
);

export const options = {
  summaryTrendStats: TREND_STATS,
  scenarios: { join, poll },
  thresholds: {
    'checks{name:join}': ['rate>0.99'],
    'checks{name:poll}': ['rate>0.99'],
    queue_errors: ['rate<0.01'],
    'http_req_duration{name:join}': [`p(99)<${QUEUE_P99_MS}`],
    'http_req_duration{name:poll}': [`p(99)<${QUEUE_P99_MS}`],
  },
};

function organizer(extra) {
  return params('admission', { token: ORG_TOKEN }, OK, extra);
}

export function setup() {
  requireBuyers((join.rate + poll.rate) / 20, '20 requests/s per buyer');
  const event = eventInfo(EVENT);
  let opened = false;
  if (event.admission_mode === 'open') {
    if (!ORG_TOKEN) {
      throw new Error(`${EVENT} has no waiting room: pass -e ORG_TOKEN=<organizer token> to set one up, or PUT /events/${EVENT}/admission first`);
    }
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
    opened = true;
  }
  return { restore: opened ? event.max_tickets_per_buyer : 0 };
}

export function teardown(data) {
  if (!data.restore) return;
  const res = http.put(
    `${BASE_URL}/events/${EVENT}/admission`,
    JSON.stringify({ mode: 'open', max_tickets_per_buyer: data.restore }),
    organizer(),
  );
  if (res.status !== 200) console.warn(`${EVENT}: admission not opened again: ${res.status} ${res.body}`);
}

// One join; the ticket, or null.
function joinAs(who) {
  const res = http.post(`${BASE_URL}/events/${EVENT}/queue`, null, params('join', who, OK));
  const t = res.status === 200 ? body(res) : null;
  const ok = check(res, { 'join: 200 with a ticket': () => t !== null && !!t.ticket }, { name: 'join' });
  errors.add(!ok, { name: 'join', code: ok ? 'ok' : errorCode(res) });
  if (!ok) return null;
  joined.add(1);
  expectedWait.add(t.expected_wait_seconds);
  return t.ticket;
}

export function joinQueue() {
  joinAs(buyer(exec.scenario.iterationInTest));
}

// This VU's tickets, by buyer index.
const tickets = {};

export function pollTicket() {
  const index = exec.scenario.iterationInTest % buyers.length;
  const who = buyers[index];
  if (!tickets[index]) tickets[index] = joinAs(who);
  if (!tickets[index]) return;
  const res = http.get(`${BASE_URL}/events/${EVENT}/queue/${tickets[index]}`, params('poll', who, OK));
  const t = res.status === 200 ? body(res) : null;
  const ok = check(res, { 'poll: 200 with a status': () => t !== null && !!t.status }, { name: 'poll' });
  errors.add(!ok, { name: 'poll', code: ok ? 'ok' : errorCode(res) });
  if (!ok) return;
  polled.add(1);
  admitted.add(t.status === 'admitted');
}
