// Browse load on the availability route (hold and checkout scenarios arrive with their issues).
// Constant arrival rate: requests leave on schedule whatever the server does (no coordinated
// omission). Thresholds encode the design document's browse SLO (p50 < 100 ms).
//   k6 run -e BASE=http://127.0.0.1:8080 -e EVENT=demo-show k6/browse.js
import http from 'k6/http';
import { check } from 'k6';

const BASE = __ENV.BASE || 'http://127.0.0.1:8080';
const EVENT = __ENV.EVENT || 'demo-show';

export const options = {
  scenarios: {
    browse: {
      executor: 'constant-arrival-rate',
      rate: Number(__ENV.RATE || 500),
      timeUnit: '1s',
      duration: __ENV.DURATION || '30s',
      preAllocatedVUs: 50,
      maxVUs: 500,
    },
  },
  thresholds: {
    'http_req_duration{scenario:browse}': ['p(50)<100'],
    http_req_failed: ['rate<0.01'],
  },
};

export default function () {
  const res = http.get(`${BASE}/events/${EVENT}/availability`);
  check(res, { 'status 200': (r) => r.status === 200 });
}
