// Shared helpers of the k6 scripts (not a test itself): where the gateway is, the buyers' tokens,
// request headers and tags, the seat map and seat choice, environment knobs, and the end-of-test
// report of flash_sale.js.
//
// Common settings (k6 run -e NAME=value):
//   BASE_URL  the gateway's API, default http://127.0.0.1:8080 (BASE is accepted too)
//   EVENT     the event, default demo-show (scripts/up loads it: a 2,000-seat theatre)
//   TOKENS    a file of buyer tokens, one JWT a line (blank lines and # lines are skipped); give
//             an absolute path. TOKEN passes a single token instead. The buyer (`user_id` in the
//             request bodies) is each token's `sub`.
//   XFF=1     send a distinct X-Forwarded-For address per VU (see "Rate limits" below)
//
// Tokens: HS256 JWTs signed with the gateway's key; `ticketctl token` mints them. After
// `scripts/up`, in the repository:
//   export SEATS_AUTH__JWT_SECRET=$(cat .stack/jwt_secret)
//   TICKETCTL=${CARGO_TARGET_DIR:-$HOME/.cache/seatalloc-target}/release/ticketctl
//   run=$(date +%s)
//   for i in $(seq 1 200); do $TICKETCTL token --sub k6-$run-$i --role buyer --ttl-secs 14400; done >/tmp/k6-buyers.txt
//   k6 run -e TOKENS=/tmp/k6-buyers.txt k6/holds.js
// Fresh subjects for each run (the `$run` above): a buyer keeps what they bought (at most
// `max_tickets_per_buyer` seats per event, 8 unless the organizer set more, held and bought seats
// together) and their waiting-room ticket from one run to the next.
//
// Rate limits (gateway defaults): 200 requests/s per client address (burst 400), 20 requests/s per
// buyer (burst 40); over them the gateway answers 429, which these scripts count as errors. So:
// at least (requests per second / 20) tokens, and beyond 200 requests/s from one k6 machine, a
// test gateway started with higher limits (SEATS_RATE_LIMITS__PER_IP_PER_SEC, _PER_IP_BURST,
// _PER_USER_PER_SEC, _PER_USER_BURST), or with SEATS_RATE_LIMITS__CLIENT_IP_HEADER=x-forwarded-for
// and k6 run -e XFF=1 (each VU then comes from its own 10.x.y.z address). Never on a public
// gateway: whoever can set that header picks their own address.
import http from 'k6/http';
import { SharedArray } from 'k6/data';
import { b64decode } from 'k6/encoding';
import exec from 'k6/execution';

export const BASE_URL = String(__ENV.BASE_URL || __ENV.BASE || 'http://127.0.0.1:8080').replace(/\/+$/, '');
export const EVENT = __ENV.EVENT || 'demo-show';
const XFF = envFlag('XFF', false);

// The percentiles the end-of-test summary shows (p50 and p99 are the SLOs').
export const TREND_STATS = ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max'];

// ---- environment ------------------------------------------------------------------------------

export function envString(name, fallback) {
  const raw = __ENV[name];
  return raw === undefined || raw === '' ? fallback : String(raw);
}

export function envNumber(name, fallback) {
  const raw = __ENV[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!isFinite(value)) throw new Error(`${name} must be a number, got ${JSON.stringify(raw)}`);
  return value;
}

export function envFlag(name, fallback) {
  const raw = __ENV[name];
  if (raw === undefined || raw === '') return fallback;
  return ['1', 'true', 'yes', 'on'].indexOf(String(raw).toLowerCase()) >= 0;
}

// A k6 duration ("500ms", "30s", "1m30s", "2h") in seconds.
export function seconds(duration) {
  const text = String(duration).trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text);
  const units = { ms: 0.001, s: 1, m: 60, h: 3600 };
  let total = 0;
  let rest = text;
  const part = /^(\d+(?:\.\d+)?)(ms|s|m|h)/;
  while (rest.length > 0) {
    const m = part.exec(rest);
    if (!m) throw new Error(`not a duration: ${JSON.stringify(duration)}`);
    total += Number(m[1]) * units[m[2]];
    rest = rest.slice(m[0].length);
  }
  return total;
}

// The open-loop settings of a constant-arrival-rate scenario, from PREFIX+RATE (iterations a
// second), PREFIX+DURATION, PREFIX+PRE_VUS and PREFIX+MAX_VUS, with the script's defaults. The
// scripts write `executor: 'constant-arrival-rate'` themselves.
export function arrival(prefix, defaults) {
  const rate = Math.round(envNumber(`${prefix}RATE`, defaults.rate));
  if (rate < 1) throw new Error(`${prefix}RATE must be at least 1 (iterations a second)`);
  const preAllocatedVUs = Math.max(1, Math.round(envNumber(`${prefix}PRE_VUS`, defaults.preAllocatedVUs)));
  return {
    rate,
    timeUnit: '1s',
    duration: envString(`${prefix}DURATION`, defaults.duration),
    preAllocatedVUs,
    maxVUs: Math.max(preAllocatedVUs, Math.round(envNumber(`${prefix}MAX_VUS`, defaults.maxVUs))),
  };
}

// A threshold allowing at most `fraction` of a scenario's scheduled iterations to be dropped:
// k6 drops an iteration when every VU is busy, i.e. the system did not keep up with the rate.
export function droppedAtMost(scenario, fraction) {
  const scheduled = scenario.rate * seconds(scenario.duration);
  return `count<=${Math.floor(scheduled * fraction)}`;
}

// ---- buyers -----------------------------------------------------------------------------------

// The token's subject (the buyer): the middle part of a JWT is base64url JSON.
export function subjectOf(token) {
  const parts = token.split('.');
  if (parts.length !== 3) throw new Error(`not a JWT: ${token.slice(0, 20)}...`);
  const claims = JSON.parse(b64decode(parts[1], 'rawurl', 's'));
  if (!claims.sub) throw new Error('a token without a subject');
  return claims.sub;
}

export const buyers = new SharedArray('buyers', function () {
  let lines = [];
  if (__ENV.TOKENS) lines = open(__ENV.TOKENS).split(/\r?\n/);
  else if (__ENV.TOKEN) lines = [__ENV.TOKEN];
  return lines
    .map((line) => line.trim())
    .filter((line) => line !== '' && line[0] !== '#')
    .map((token) => ({ token, user: subjectOf(token) }));
});

// For setup(): fails the run early when no token was given; warns when fewer than `wanted`.
export function requireBuyers(wanted, why) {
  if (buyers.length === 0) {
    throw new Error('no buyer token: pass -e TOKENS=/absolute/path (one JWT a line, from `ticketctl token`) or -e TOKEN=<jwt>; see k6/lib.js');
  }
  if (wanted && buyers.length < wanted) {
    console.warn(`only ${buyers.length} buyer token(s) for about ${Math.ceil(wanted)} wanted (${why}): expect 429 or ticket_limit answers`);
  }
}

// The n-th buyer, round robin: consecutive iterations are different buyers.
export function buyer(n) {
  return buyers[n % buyers.length];
}

// ---- requests ---------------------------------------------------------------------------------

function clientIp() {
  let vu = 0;
  try {
    vu = exec.vu.idInTest;
  } catch (e) {
    vu = 0;
  }
  return `10.${(vu >> 16) & 255}.${(vu >> 8) & 255}.${vu & 255}`;
}

// Request headers: the buyer's bearer token (when given), JSON, X-Forwarded-For with XFF=1.
export function headers(who, extra) {
  const h = { 'Content-Type': 'application/json' };
  if (who) h.Authorization = `Bearer ${who.token}`;
  if (XFF) h['X-Forwarded-For'] = clientIp();
  return Object.assign(h, extra || {});
}

// Request parameters: headers, the `name` tag (one per request kind, so thresholds and the
// summary see routes, not URLs) and the statuses that are answers rather than failures
// (http_req_failed counts the others).
export function params(name, who, expected, extra) {
  const p = { headers: headers(who, extra), tags: { name } };
  if (expected) p.responseCallback = expected;
  return p;
}

// The body as JSON, or null.
export function body(res) {
  try {
    return res.json();
  } catch (e) {
    return null;
  }
}

// The error code of an error answer ({"error":{"code":...}}), else "http_<status>".
export function errorCode(res) {
  const b = body(res);
  return b && b.error && b.error.code ? b.error.code : `http_${res.status}`;
}

// A response header, whatever its case.
export function header(res, name) {
  const wanted = name.toLowerCase();
  for (const key in res.headers) {
    if (key.toLowerCase() === wanted) return res.headers[key];
  }
  return undefined;
}

// A unique prefix for this run's idempotency keys and client reservation ids (a rerun with the
// same ids would be answered as a replay): RUN_ID, or made up in setup().
export function runId() {
  const given = envString('RUN_ID', '');
  const id = given || `k6${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
  return id.replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 40);
}

// ---- the event and its seats ------------------------------------------------------------------

// GET /events/{id}: status, admission_mode, max_tickets_per_buyer, prices. For setup().
export function eventInfo(event) {
  const res = http.get(`${BASE_URL}/events/${event}`, {
    headers: headers(null),
    tags: { name: 'setup_event' },
    responseType: 'text',
  });
  if (res.status !== 200) throw new Error(`GET /events/${event}: ${res.status} ${res.body}`);
  const info = JSON.parse(res.body);
  if (info.status !== 'on_sale') console.warn(`event ${event} is ${info.status}: holds will be refused`);
  return info;
}

// The seat map in rows, front to back as the venue lists them: [{section, row, seats: [{id,
// free}]}] with seats in number order; `free` is false for seats held, sold or blocked when the
// map was read. For setup() (a 50,000-seat venue is a few MB of JSON).
export function seatRows(event) {
  const res = http.get(`${BASE_URL}/events/${event}/seatmap`, {
    headers: headers(null),
    tags: { name: 'setup_seatmap' },
    responseType: 'text',
  });
  if (res.status !== 200) throw new Error(`GET /events/${event}/seatmap: ${res.status} ${res.body}`);
  const map = JSON.parse(res.body);
  const taken = {};
  (map.availability || []).forEach((s) => {
    [s.held_seats, s.sold_seats, s.blocked_seats].forEach((list) => {
      (list || []).forEach((id) => {
        taken[id] = true;
      });
    });
  });
  const rows = [];
  map.layout.sections.forEach((section) => {
    section.rows.forEach((row) => {
      const seats = row.seats.slice().sort((a, b) => a.number - b.number);
      rows.push({
        section: section.id,
        row: row.label,
        seats: seats.map((s) => ({ id: s.id, free: !taken[s.id] })),
      });
    });
  });
  return rows;
}

// Groups of `size` neighbouring free seats, each inside one row, no seat in two groups, front
// rows first.
export function freeBlocks(rows, size) {
  const blocks = [];
  rows.forEach((row) => {
    let run = [];
    row.seats.forEach((seat) => {
      if (!seat.free) {
        run = [];
        return;
      }
      run.push(seat.id);
      if (run.length === size) {
        blocks.push(run);
        run = [];
      }
    });
  });
  return blocks;
}

export function randomItem(list) {
  return list[Math.floor(Math.random() * list.length)];
}

// ---- the end-of-test report -------------------------------------------------------------------

function metricLine(data, name, label) {
  const m = data.metrics[name];
  if (!m) return `  ${label}: none`;
  const v = m.values;
  switch (m.type) {
    case 'counter':
      return `  ${label}: ${v.count}`;
    case 'rate':
      return `  ${label}: ${(100 * v.rate).toFixed(2)}% (${v.passes} of ${v.passes + v.fails})`;
    case 'trend': {
      const unit = m.contains === 'time' ? ' ms' : '';
      const f = (x) => (x === undefined ? '-' : `${Number(x).toFixed(1)}${unit}`);
      return `  ${label}: p50 ${f(v.med)}, p95 ${f(v['p(95)'])}, p99 ${f(v['p(99)'])}, max ${f(v.max)}`;
    }
    default:
      return `  ${label}: ${JSON.stringify(v)}`;
  }
}

// A text report for handleSummary(): the given sections of [label, metric] lines, then every
// threshold with its verdict.
export function report(data, title, sections) {
  const out = [`\n${title}`];
  sections.forEach((section) => {
    out.push(`${section.title}:`);
    section.lines.forEach((line) => out.push(metricLine(data, line[1], line[0])));
  });
  out.push('thresholds:');
  let failed = 0;
  Object.keys(data.metrics)
    .sort()
    .forEach((name) => {
      const t = data.metrics[name].thresholds || {};
      Object.keys(t).forEach((expr) => {
        if (!t[expr].ok) failed += 1;
        out.push(`  ${t[expr].ok ? 'ok    ' : 'FAILED'} ${name}: ${expr}`);
      });
    });
  out.push(failed === 0 ? 'all thresholds passed' : `${failed} threshold(s) FAILED`);
  return `${out.join('\n')}\n`;
}
