// Browse load: the event list, one event, its seat map and its availability, mixed like page
// views. Constant arrival rate: requests leave on schedule whatever the server does (no
// coordinated omission). Thresholds encode the design document's browse SLO (p50 < 100 ms), for
// browsing as a whole and for each route.
//
// Conditional requests: the list, the event and the seat map carry a strong ETag; each VU keeps
// the last one it saw per URL and sends it as If-None-Match, so repeat views are 304 (as a
// browser or CDN would see them). CONDITIONAL=0 always asks for the full body. Availability has
// no conditional form (counts straight from Redis, max-age 1 s).
//
//   k6 run k6/browse.js                                             (50 requests/s for 30 s)
//   k6 run -e BASE_URL=http://127.0.0.1:8080 -e EVENT=demo-show -e RATE=150 -e DURATION=2m k6/browse.js
//
// No token needed. Settings: RATE (requests/s, default 50), DURATION (30s), PRE_VUS (10),
// MAX_VUS (100), MIX (weights, default events:2,event:3,seatmap:3,availability:2), LIST_QUERY
// (query of GET /events, default limit=20), CONDITIONAL (1). Past 200 requests/s from one
// machine the gateway's per-address limit answers 429: see "Rate limits" in k6/lib.js.
import http from 'k6/http';
import { check } from 'k6';
import { Rate } from 'k6/metrics';
import { BASE_URL, EVENT, TREND_STATS, arrival, envFlag, envString, header, headers } from './lib.js';

const CONDITIONAL = envFlag('CONDITIONAL', true);
const LIST_QUERY = envString('LIST_QUERY', 'limit=20');

// What a page view asks for, and how often (MIX=events:2,event:3,seatmap:3,availability:2).
const ROUTES = {
  events: { url: `${BASE_URL}/events?${LIST_QUERY}`, conditional: true },
  event: { url: `${BASE_URL}/events/${EVENT}`, conditional: true },
  seatmap: { url: `${BASE_URL}/events/${EVENT}/seatmap`, conditional: true },
  availability: { url: `${BASE_URL}/events/${EVENT}/availability`, conditional: false },
};
const MIX = envString('MIX', 'events:2,event:3,seatmap:3,availability:2')
  .split(',')
  .map((item) => item.split(':'))
  .map(([name, weight]) => {
    if (!ROUTES[name]) throw new Error(`MIX: unknown route ${name} (events, event, seatmap, availability)`);
    return { name, weight: Number(weight || 1) };
  });
const TOTAL_WEIGHT = MIX.reduce((sum, m) => sum + m.weight, 0);

const notModified = new Rate('browse_not_modified');

const browse = Object.assign(
  { executor: 'constant-arrival-rate' },
  arrival('', { rate: 50, duration: '30s', preAllocatedVUs: 10, maxVUs: 100 }),
);

export const options = {
  discardResponseBodies: true,
  summaryTrendStats: TREND_STATS,
  scenarios: { browse },
  thresholds: {
    'http_req_duration{scenario:browse}': ['p(50)<100'],
    'http_req_duration{name:events}': ['p(50)<100'],
    'http_req_duration{name:event}': ['p(50)<100'],
    'http_req_duration{name:seatmap}': ['p(50)<100'],
    'http_req_duration{name:availability}': ['p(50)<100'],
    'checks{scenario:browse}': ['rate>0.99'],
    http_req_failed: ['rate<0.01'],
  },
};

// This VU's last ETag per URL.
const etags = {};

function pick() {
  let r = Math.random() * TOTAL_WEIGHT;
  for (const m of MIX) {
    r -= m.weight;
    if (r < 0) return m.name;
  }
  return MIX[MIX.length - 1].name;
}

export default function () {
  const name = pick();
  const route = ROUTES[name];
  const conditional = CONDITIONAL && route.conditional && etags[route.url] !== undefined;
  const extra = conditional ? { 'If-None-Match': etags[route.url] } : {};
  const res = http.get(route.url, { headers: headers(null, extra), tags: { name } });
  const etag = header(res, 'ETag');
  if (route.conditional && etag) etags[route.url] = etag;
  check(
    res,
    {
      'status 200, or 304 to a conditional request': (r) => r.status === 200 || (conditional && r.status === 304),
      'an ETag where the route has one': (r) => !route.conditional || r.status >= 400 || !!header(r, 'ETag'),
    },
    { name },
  );
  if (route.conditional) notModified.add(res.status === 304, { name });
}
