// Hold storm: buyers place holds on chosen seats at a constant arrival rate, and each successful
// hold is released again (DELETE) so a long run never sells out. The design document's targets
// are 5,000 holds/s sustained and 20,000/s in bursts; the defaults here are small (5 holds/s), so
// a run against a laptop is harmless.
//
// Contention knob, CONTENTION from 0 to 1: each hold asks for the hot seats (the first HOT_SEATS
// free seats of the map, default 100: everyone wants the front rows) with that probability, and
// otherwise for the next seats of a round robin over all the other free seats, which no other
// hold in flight asks for. 0: every hold asks distinct seats (every hold should succeed);
// 1: everyone wants the same 100 seats (most are refused); in between, a mix.
//
// A 409 seats_unavailable is an answer, not a failure: the seats were someone else's. Custom
// metrics: holds_held and holds_unavailable (counters), hold_success (held / (held +
// unavailable)), and hold_errors (any other answer: 429, ticket_limit, 5xx... should be 0).
//
//   k6 run -e TOKENS=/tmp/k6-buyers.txt k6/holds.js
//   k6 run -e TOKENS=/tmp/k6-buyers.txt -e RATE=5000 -e DURATION=5m -e PRE_VUS=200 -e MAX_VUS=2000 \
//          -e CONTENTION=0.2 -e BURST_RATE=20000 -e BURST_AT=2m -e BURST_DURATION=10s k6/holds.js
//
// Tokens: TOKENS (a file, see k6/lib.js for minting with `ticketctl token`) or TOKEN. A buyer
// may hold at most max_tickets_per_buyer seats of the event at once (8 by default) and make 20
// requests/s: use at least max(MAX_VUS x SEATS / 8, 2 x RATE / 20) buyers.
// Settings: BASE_URL, EVENT (demo-show), RATE (holds/s, 5), DURATION (30s), PRE_VUS, MAX_VUS,
// SEATS (seats a hold, 2), CONTENTION (0), HOT_SEATS (100), HOLD_SECONDS (how long a hold is
// kept before it is released, 0), TTL (hold TTL seconds, server default when unset),
// BURST_RATE (0 = no burst scenario), BURST_AT (start, 10s), BURST_DURATION (10s),
// BURST_PRE_VUS, BURST_MAX_VUS, HOLD_P99_MS (a latency guard, not a design SLO: 1000).
import http from 'k6/http';
import { check, sleep } from 'k6';
import { Counter, Rate } from 'k6/metrics';
import exec from 'k6/execution';
import {
  BASE_URL,
  EVENT,
  TREND_STATS,
  arrival,
  buyer,
  droppedAtMost,
  envNumber,
  envString,
  errorCode,
  body,
  eventInfo,
  freeBlocks,
  header,
  params,
  randomItem,
  requireBuyers,
  runId,
  seatRows,
} from './lib.js';

const CONTENTION = Math.min(1, Math.max(0, envNumber('CONTENTION', 0)));
const SEATS = Math.round(envNumber('SEATS', 2));
const HOT_SEATS = Math.round(envNumber('HOT_SEATS', 100));
const HOLD_SECONDS = envNumber('HOLD_SECONDS', 0);
const TTL = envNumber('TTL', 0);
const BURST_RATE = envNumber('BURST_RATE', 0);
const HOLD_P99_MS = envNumber('HOLD_P99_MS', 1000);

const HOLD_ANSWERS = http.expectedStatuses(200, 201, 409);
const RELEASE_ANSWERS = http.expectedStatuses(204);

const held = new Counter('holds_held');
const unavailable = new Counter('holds_unavailable');
const ticketLimit = new Counter('holds_ticket_limit');
const rateLimited = new Counter('holds_rate_limited');
const released = new Counter('holds_released');
const success = new Rate('hold_success');
const errors = new Rate('hold_errors');

const holds = Object.assign(
  { executor: 'constant-arrival-rate' },
  arrival('', { rate: 5, duration: '30s', preAllocatedVUs: 5, maxVUs: 50 }),
);
const scenarios = { holds };
const thresholds = {
  // 201 held or 409 seats_unavailable: both are the system working.
  'checks{name:hold}': ['rate>0.99'],
  'checks{name:release}': ['rate>0.99'],
  hold_errors: ['rate<0.01'],
  'http_req_duration{name:hold}': [`p(99)<${HOLD_P99_MS}`],
  // Sustained: k6 could start (nearly) every scheduled hold, i.e. the system kept the rate.
  'dropped_iterations{scenario:holds}': [droppedAtMost(holds, 0.01)],
};
if (BURST_RATE > 0) {
  scenarios.burst = Object.assign(
    { executor: 'constant-arrival-rate', startTime: envString('BURST_AT', '10s') },
    arrival('BURST_', { rate: BURST_RATE, duration: '10s', preAllocatedVUs: 20, maxVUs: 200 }),
  );
  thresholds['dropped_iterations{scenario:burst}'] = [droppedAtMost(scenarios.burst, 0.01)];
}
// Iterations of both scenarios interleave in one round robin of buyers and seats.
const LANES = BURST_RATE > 0 ? 2 : 1;

export const options = {
  summaryTrendStats: TREND_STATS,
  scenarios,
  thresholds,
};

export function setup() {
  const event = eventInfo(EVENT);
  requireBuyers(
    Math.max((holds.maxVUs * SEATS) / event.max_tickets_per_buyer, (2 * holds.rate) / 20),
    `up to ${holds.maxVUs} holds in flight, ${event.max_tickets_per_buyer} seats and 20 requests/s per buyer`,
  );
  if (SEATS < 1 || SEATS > event.max_tickets_per_buyer) {
    throw new Error(`SEATS must be 1 to ${event.max_tickets_per_buyer} (the event's max_tickets_per_buyer)`);
  }
  const blocks = freeBlocks(seatRows(EVENT), SEATS);
  const hotBlocks = Math.max(1, Math.ceil(HOT_SEATS / SEATS));
  const hot = blocks.slice(0, hotBlocks);
  const cold = blocks.slice(hotBlocks);
  if (CONTENTION < 1 && cold.length === 0) {
    throw new Error(`no free seats outside the ${HOT_SEATS} hot ones: CONTENTION=1, fewer HOT_SEATS, or another event`);
  }
  console.log(
    `holds of ${SEATS} seat(s) on ${EVENT}: ${hot.length} hot group(s), ${cold.length} other group(s), contention ${CONTENTION}`,
  );
  return { run: runId(), hot, cold };
}

export default function (data) {
  const lane = exec.scenario.name === 'burst' ? 1 : 0;
  const n = exec.scenario.iterationInTest * LANES + lane;
  const who = buyer(n);
  const seats = Math.random() < CONTENTION || data.cold.length === 0 ? randomItem(data.hot) : data.cold[n % data.cold.length];
  const request = { client_reservation_id: `${data.run}-h${n}`, user_id: who.user, seat_ids: seats };
  if (TTL > 0) request.ttl_seconds = TTL;
  const res = http.post(`${BASE_URL}/events/${EVENT}/reservations`, JSON.stringify(request), params('hold', who, HOLD_ANSWERS));

  const code = res.status === 201 || res.status === 200 ? 'held' : errorCode(res);
  check(res, { 'hold: 201 held, or 409 seats_unavailable': () => code === 'held' || code === 'seats_unavailable' }, { name: 'hold' });
  if (code === 'held') held.add(1);
  if (code === 'seats_unavailable') unavailable.add(1);
  if (code === 'ticket_limit') ticketLimit.add(1);
  if (code === 'rate_limited') rateLimited.add(1);
  if (code === 'held' || code === 'seats_unavailable') success.add(code === 'held');
  errors.add(code !== 'held' && code !== 'seats_unavailable');
  if (code !== 'held') return;

  const hold = body(res);
  if (HOLD_SECONDS > 0) sleep(HOLD_SECONDS);
  const url = `${BASE_URL}/reservations/${hold.hold_id}`;
  let del = http.del(url, null, params('release', who, RELEASE_ANSWERS));
  if (del.status === 429) {
    // Rate limited: once more after the wait it names, so the seats do not stay held until the
    // TTL (and count against the buyer's limit).
    sleep(Number(header(del, 'Retry-After') || 1));
    del = http.del(url, null, params('release', who, RELEASE_ANSWERS));
  }
  if (check(del, { 'release: 204': (r) => r.status === 204 }, { name: 'release' })) released.add(1);
}
