// Browser tests of the web app against a real stack (scripts/browser-test starts it): Debian's
// chromium driven by playwright-core. Each flow asserts what a buyer sees and what Postgres
// holds; screenshots of every page go to $SCREENSHOTS. Timings are printed, never asserted.
//
// Environment: WEB_BASE (the gateway), ADMIN_BASE (its admin listener), DATABASE_URL (psql),
// DEMO_EVENT, QUEUE_EVENT, STADIUM_EVENT, WAITLIST_EVENT, ORG_TOKEN, ADMIN_TOKEN, GATE_TOKEN, BUYER_TOKENS (JSON of user ->
// token for the queue's other buyers), SCREENSHOTS, CHROMIUM (the executable).
import { chromium } from "playwright-core";
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import assert from "node:assert/strict";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const BASE = env("WEB_BASE");
const ADMIN_BASE = env("ADMIN_BASE");
const DB = env("DATABASE_URL");
const DEMO = env("DEMO_EVENT");
const QUEUE = env("QUEUE_EVENT");
const STADIUM = env("STADIUM_EVENT");
const SHOTS = env("SCREENSHOTS");
mkdirSync(SHOTS, { recursive: true });
const APP = `${BASE}/app/`;
// Long enough for a slow CI box; a flow that needs longer is broken.
const WAIT = 20_000;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
const consoleErrors = [];
const shots = [];

let currentFlow = "setup";
async function newPage(viewport = { width: 1280, height: 860 }, extra = {}) {
  const context = await browser.newContext({ viewport, ...extra });
  const page = await context.newPage();
  // Each error names the flow whose page made it.
  const during = currentFlow;
  page.on("pageerror", (e) => consoleErrors.push(`${e.message} (${during})`));
  page.on("console", (m) => {
    // A 4xx the page handles is logged by chromium as a failed resource: not an app error.
    if (m.type() === "error" && !/Failed to load resource/.test(m.text())) consoleErrors.push(`${m.text()} (${during})`);
  });
  page.setDefaultTimeout(WAIT);
  return page;
}

async function shot(page, name) {
  const path = `${SHOTS}/${name}.png`;
  await page.screenshot({ path });
  shots.push(path);
}

async function ready(page) {
  await page.waitForFunction(() => window.seatApp && window.seatApp.ready === true);
}

async function signIn(page, name, screenshot) {
  await page.goto(`${APP}#/signin`);
  await ready(page);
  await page.fill("#name", name);
  if (screenshot) await shot(page, screenshot);
  await page.click("#dev button[type=submit]");
  await page.waitForFunction(() => location.hash === "#/" || location.hash === "");
  await page.waitForSelector(`#who >> text=${name}`);
}

async function openEvent(page, id) {
  const started = Date.now();
  await page.goto(`${APP}#/events/${id}`);
  await page.waitForFunction((id) => location.hash === `#/events/${id}` && window.seatApp?.ready === true && window.seatApp.seats > 0, id);
  // The stream's first frame has arrived: the map is current.
  await page.waitForFunction(() => window.seatApp.liveVersion !== undefined);
  return {
    wallMs: Date.now() - started,
    appMs: await page.evaluate(() => window.seatApp.mapReadyMs),
    parts: JSON.stringify(await page.evaluate(() => window.seatApp.timings)),
  };
}

async function clickSeat(page, seat) {
  const before = await state(page, seat);
  for (let attempt = 0; ; attempt++) {
    const p = await page.evaluate((s) => window.seatApp.screenOf(s), seat);
    await page.mouse.click(p.x, p.y);
    // A free seat clicked is selected. If it is still free, the click landed elsewhere (the page
    // moved between reading the seat's place and clicking: a message shown above the map), and
    // it is clicked again where the seat is now; a page that never selects it still fails.
    if (before !== "free" || attempt === 2) return;
    const selected = await page
      .waitForFunction((s) => window.seatApp.state(s) !== "free", seat, { timeout: 2000 })
      .then(() => true, () => false);
    if (selected) return;
    console.log(`[browser] a click on ${seat} did not select it; clicking again`);
  }
}

const state = (page, seat) => page.evaluate((s) => window.seatApp.state(s), seat);

async function pay(page, card) {
  await page.fill("#cc", card);
  await page.fill("#exp", "12/30");
  await page.fill("#cvc", "123");
  await page.click("#pay");
}

function psql(sql) {
  return execFileSync("psql", [DB, "-Atqc", sql], { encoding: "utf8" }).trim();
}

async function api(method, path, token, body, base = BASE) {
  const r = await fetch(`${base}${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: r.status, body: await r.json().catch(() => null) };
}

const results = [];
async function flow(name, fn) {
  currentFlow = name;
  const started = Date.now();
  try {
    await fn();
    results.push([name, "ok", Date.now() - started]);
    console.log(`[browser] ok    ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    results.push([name, "FAILED", Date.now() - started]);
    console.log(`[browser] FAIL  ${name}: ${e.stack || e}`);
  }
}

// ---------------------------------------------------------------------------------------------

await flow("the whole purchase: event list, seat map, 2 seats, hold, card, confirmation, paid in Postgres", async () => {
  const page = await newPage();
  await page.goto(APP);
  await ready(page);
  await page.waitForSelector(`a[href="#/events/${DEMO}"]`);
  await shot(page, "events");
  await signIn(page, "alice", "signin");
  await page.click(`a[href="#/events/${DEMO}"]`);
  await page.waitForFunction(() => window.seatApp?.ready === true && window.seatApp.seats > 0);
  const t = await openEvent(page, DEMO);
  const seats = await page.evaluate(() => window.seatApp.seats);
  console.log(`[browser] ${seats}-seat theatre: map interactive ${t.appMs} ms after the route began (${t.wallMs} ms from navigation; ${t.parts})`);
  await shot(page, "seatmap");
  await clickSeat(page, "orch-C-10");
  await clickSeat(page, "orch-C-11");
  assert.equal(await state(page, "orch-C-10"), "selected");
  assert.equal(await state(page, "orch-C-11"), "selected");
  // The tooltip names the seat under the pointer.
  const p = await page.evaluate(() => window.seatApp.screenOf("orch-C-12"));
  await page.mouse.move(p.x, p.y);
  await page.waitForSelector("#tooltip:not([hidden]) >> text=Seat 12");
  assert.match(await page.textContent("#hold"), /Hold 2 seats/);
  await shot(page, "seatmap-selected");
  // A double click on Hold makes one hold (one client_reservation_id).
  await page.dblclick("#hold");
  await page.waitForSelector("#holdbox:not([hidden]) >> text=Your hold");
  assert.equal(await state(page, "orch-C-10"), "mine");
  // A second hold of the same seats would have been refused (409) and said so.
  assert.equal((await page.textContent("#msg")).trim(), "", "one hold for a double click");
  await shot(page, "hold");
  await pay(page, "4242 4242 4242 4242");
  await page.waitForFunction(() => location.hash.startsWith("#/orders/"));
  await page.waitForSelector("#order-status >> text=paid");
  // The tickets: one QR code per seat, drawn (loaded with the buyer's token), and the PDF.
  await page.waitForFunction(() => {
    const imgs = [...document.querySelectorAll(".ticket img")];
    return imgs.length === 2 && imgs.every((i) => i.complete && i.naturalWidth > 0);
  });
  await shot(page, "confirmation");
  const order = (await page.textContent("#order-id")).trim();
  assert.equal(psql(`SELECT status FROM orders WHERE id = '${order}'`), "paid");
  const shown = await page.$$eval(".ticket", (ts) => ts.map((t) => t.dataset.ticket).sort().join(","));
  assert.equal(shown, psql(`SELECT string_agg(id::text, ',' ORDER BY id::text) FROM tickets WHERE order_id = '${order}'`));
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#pdf")]);
  const pdf = await download.createReadStream().then(async (stream) => {
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    return Buffer.concat(chunks);
  });
  assert.equal(pdf.subarray(0, 5).toString(), "%PDF-", "the download is a PDF");
  const sold = psql(`SELECT string_agg(seat_id, ',' ORDER BY seat_id) FROM sold_seats WHERE order_id = '${order}'`);
  assert.equal(sold, "orch-C-10,orch-C-11");
  await page.context().close();
});

await flow("two buyers race for one seat: one gets it, the other is told and sees it taken, a third sees it live", async () => {
  const [a, b, viewer] = [await newPage(), await newPage(), await newPage()];
  await signIn(a, "bob");
  await signIn(b, "carol");
  for (const p of [a, b, viewer]) await openEvent(p, DEMO);
  const seat = "orch-E-7";
  await clickSeat(a, seat);
  await clickSeat(b, seat);
  const before = Date.now();
  await Promise.all([a.click("#hold"), b.click("#hold")]);
  const outcome = async (p) => {
    await p.waitForFunction(() => !document.querySelector("#holdbox").hidden || /took|taken/.test(document.querySelector("#msg").textContent));
    return !(await p.$eval("#holdbox", (e) => e.hidden));
  };
  const [aWon, bWon] = [await outcome(a), await outcome(b)];
  assert.ok(aWon !== bWon, `exactly one hold: bob ${aWon}, carol ${bWon}`);
  const [winner, loser] = aWon ? [a, b] : [b, a];
  assert.equal(await state(winner, seat), "mine");
  assert.match(await loser.textContent("#msg"), /someone else just took/i);
  assert.equal(await state(loser, seat), "taken");
  await shot(loser, "race-lost");
  // The viewer never reloaded: the stream turned the seat grey.
  await viewer.waitForFunction((s) => window.seatApp.state(s) === "taken", seat);
  console.log(`[browser] a seat taken elsewhere turned unavailable on a third map ${Date.now() - before} ms after the holds were clicked`);
  for (const p of [a, b, viewer]) await p.context().close();
});

await flow("a declined card keeps the hold; another card then pays", async () => {
  const page = await newPage();
  await signIn(page, "dave");
  await openEvent(page, DEMO);
  await clickSeat(page, "mezz-B-4");
  await page.click("#hold");
  await page.waitForSelector("#holdbox:not([hidden])");
  await pay(page, "4000 0000 0000 0002");
  await page.waitForSelector("#paystate >> text=declined");
  assert.equal(await page.$eval("#holdbox", (e) => e.hidden), false, "the hold stays");
  assert.equal(await state(page, "mezz-B-4"), "mine");
  await shot(page, "declined");
  await pay(page, "4242424242424242");
  await page.waitForSelector("#order-status >> text=paid");
  await page.context().close();
});

await flow("a commit whose answer is lost is retried with the same idempotency key: one order", async () => {
  const page = await newPage();
  await signIn(page, "oscar");
  await openEvent(page, DEMO);
  await clickSeat(page, "mezz-D-12");
  await page.click("#hold");
  await page.waitForSelector("#holdbox:not([hidden])");
  const keys = [];
  let dropped = false;
  await page.route("**/reservations/*/commit", async (route) => {
    keys.push(JSON.parse(route.request().postData()).idempotency_key);
    if (!dropped) {
      // The gateway gets the commit and answers; the answer never reaches the page.
      dropped = true;
      await route.fetch();
      await route.abort("connectionreset");
    } else {
      await route.continue();
    }
  });
  await pay(page, "4242424242424242");
  await page.waitForSelector("#order-status >> text=paid");
  assert.ok(keys.length >= 2, `retried: ${keys.length} commit requests`);
  assert.equal(new Set(keys).size, 1, `one idempotency key across retries: ${keys}`);
  const orders = psql(`SELECT count(*) FROM orders o JOIN sold_seats s ON s.order_id = o.id WHERE o.event_id = '${DEMO}' AND s.seat_id = 'mezz-D-12'`);
  assert.equal(orders, "1");
  await page.context().close();
});

await flow("3-D Secure: the card asks for it, the page shows the step", async () => {
  const page = await newPage();
  await signIn(page, "erin");
  await openEvent(page, DEMO);
  await clickSeat(page, "mezz-C-9");
  await page.click("#hold");
  await page.waitForSelector("#holdbox:not([hidden])");
  await pay(page, "4000 0025 0000 3155");
  await page.waitForSelector("#sca:not([hidden])");
  await shot(page, "3ds");
  if (await page.isVisible("#scaok")) {
    // A provider with an authentication endpoint: the buyer confirms, the order is paid.
    await page.click("#scaok");
    await page.waitForSelector("#order-status >> text=paid");
    await shot(page, "3ds-confirmation");
  } else {
    // The embedded sandbox: the order waits for the bank's answer.
    await page.waitForSelector("#paystate >> text=requires action");
  }
  await page.context().close();
});

await flow("an expired hold: paying says so and offers to start again; the seats come back", async () => {
  const page = await newPage();
  await signIn(page, "frank");
  await openEvent(page, DEMO);
  await clickSeat(page, "balc-A-3");
  await page.click("#hold");
  await page.waitForSelector("#holdbox:not([hidden])");
  const hold = await page.evaluate((e) => sessionStorage.getItem(`seatalloc.hold.${e}.frank`), DEMO);
  // The hold ends on the server (as its TTL would), while the page still shows it.
  const r = await api("DELETE", `/admin/holds/${hold}`, env("ADMIN_TOKEN"), null, ADMIN_BASE);
  assert.equal(r.status, 204, JSON.stringify(r.body));
  await pay(page, "4242424242424242");
  await page.waitForSelector("#msg >> text=expired");
  await page.waitForSelector("#again");
  assert.equal(await page.$eval("#holdbox", (e) => e.hidden), true);
  await page.waitForFunction(() => window.seatApp.state("balc-A-3") === "free");
  await shot(page, "expired");
  await page.context().close();
});

await flow("the waiting room admits the buyer and hands over to the seat map", async () => {
  const org = env("ORG_TOKEN");
  let r = await api("PUT", `/events/${QUEUE}/admission`, org, { mode: "queue", rate_per_second: 1, burst: 1 });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  // Two buyers joined before.
  for (const [user, token] of Object.entries(JSON.parse(env("BUYER_TOKENS")))) {
    r = await api("POST", `/events/${QUEUE}/queue`, token);
    assert.equal(r.status, 200, `${user}: ${JSON.stringify(r.body)}`);
  }
  const page = await newPage();
  await signIn(page, "grace");
  await page.goto(`${APP}#/events/${QUEUE}`);
  await page.waitForFunction((e) => location.hash === `#/events/${e}/queue`, QUEUE);
  await page.waitForSelector("#position >> text=/\\d+/");
  await shot(page, "waiting-room");
  // Not just ready (the waiting room was, until its hash change is handled): the map is up.
  await page.waitForFunction((e) => location.hash === `#/events/${e}` && window.seatApp?.ready === true && window.seatApp.seats > 0, QUEUE, { timeout: 30_000 });
  await clickSeat(page, "orch-A-5");
  await page.click("#hold");
  await page.waitForSelector("#holdbox:not([hidden])");
  await shot(page, "admitted-hold");
  await page.context().close();
});

await flow("sold out: the buyer joins the waiting list; a seat that comes back is offered to them, not to the open sale, and they pay", async () => {
  const WL = env("WAITLIST_EVENT");
  const judy = JSON.parse(env("BUYER_TOKENS")).judy;
  const seats = psql(`SELECT string_agg(s.id, ',' ORDER BY s.id) FROM seats s JOIN events e ON e.venue_id = s.venue_id WHERE e.id = '${WL}'`).split(",");
  const last = seats[0];
  // Sold out: every seat but one blocked, that one held by judy.
  const rest = seats.slice(1);
  for (let i = 0; i < rest.length; i += 500) {
    const r = await api("POST", `/events/${WL}/blocks`, env("ADMIN_TOKEN"), { seat_ids: rest.slice(i, i + 500), tag: "production" });
    assert.equal(r.status, 200, JSON.stringify(r.body));
  }
  let r = await api("POST", `/events/${WL}/reservations`, judy, { client_reservation_id: "wl-last", user_id: "judy", seat_ids: [last] });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const judyHold = r.body.hold_id;

  const page = await newPage();
  await signIn(page, "kate");
  await openEvent(page, WL);
  await page.waitForSelector("#waitbox:not([hidden]) >> text=Sold out");
  assert.equal(await page.$eval("#choose", (e) => e.hidden), true, "nothing to choose when sold out");
  await shot(page, "waitlist-sold-out");
  await page.selectOption("#wlqty", "1");
  await page.click("#wljoin button[type=submit]");
  await page.waitForSelector("#wlstate >> text=next in line");
  await shot(page, "waitlist-joined");
  assert.equal(psql(`SELECT status FROM waitlist_entries WHERE event_id = '${WL}' AND user_id = 'kate'`), "waiting");

  // Judy lets her seat go: it is set aside for the list in the same step, so the open sale
  // cannot take it, and the reconciler offers it to kate.
  r = await api("DELETE", `/reservations/${judyHold}`, judy);
  assert.ok(r.status < 300, JSON.stringify(r.body));
  r = await api("POST", `/events/${WL}/reservations`, judy, { client_reservation_id: "wl-grab", user_id: "judy", seat_ids: [last] });
  assert.equal(r.status, 409, `the open sale got the returned seat: ${JSON.stringify(r.body)}`);
  await page.waitForSelector("#holdbox:not([hidden]) >> text=Your hold", { timeout: 30_000 });
  assert.match(await page.textContent("#msg"), /held for you/);
  assert.equal(await state(page, last), "mine");
  await shot(page, "waitlist-offer");
  await pay(page, "4242424242424242");
  await page.waitForSelector("#order-status >> text=paid");
  const order = (await page.textContent("#order-id")).trim();
  assert.equal(psql(`SELECT string_agg(seat_id, ',') FROM sold_seats WHERE order_id = '${order}'`), last);
  // The reconciler's next pass marks the entry taken.
  let status = "";
  for (let i = 0; i < 40 && status !== "taken"; i++) {
    status = psql(`SELECT status FROM waitlist_entries WHERE event_id = '${WL}' AND user_id = 'kate'`);
    if (status !== "taken") await new Promise((res) => setTimeout(res, 250));
  }
  assert.equal(status, "taken");
  await page.context().close();
});

await flow("the 50,000-seat stadium and the 2,000-seat theatre open (times printed)", async () => {
  for (const [event, what] of [[DEMO, "theatre"], [STADIUM, "stadium"]]) {
    // The gateway reads a venue's layout from Postgres once per process: that first build is
    // printed apart, the buyer's open is measured on a running gateway.
    const cold = Date.now();
    const r = await fetch(`${BASE}/events/${event}/seatmap`);
    const bytes = (await r.arrayBuffer()).byteLength;
    console.log(`[browser] ${what}: the gateway's first seat map (${(bytes / 1e6).toFixed(1)} MB) took ${Date.now() - cold} ms`);
    for (let run = 1; run <= 2; run++) {
      const page = await newPage();
      const t = await openEvent(page, event);
      const seats = await page.evaluate(() => window.seatApp.seats);
      console.log(`[browser] ${seats}-seat ${what}, open ${run}: interactive ${t.appMs} ms after the route began, ${t.wallMs} ms from navigation (${t.parts})`);
      if (what === "stadium") assert.equal(seats, 50000);
      await page.context().close();
    }
  }
  const page = await newPage();
  await openEvent(page, STADIUM);
  await shot(page, "stadium");
  await page.evaluate(() => window.seatApp.zoomTo("L01-M-25", 60));
  await shot(page, "stadium-zoomed");
  await page.context().close();
});

await flow("a phone (390 px): best available 2, hold, pay, confirmation; the keyboard selects seats", async () => {
  const page = await newPage({ width: 390, height: 844 }, { isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
  await signIn(page, "heidi");
  await openEvent(page, DEMO);
  // Nothing wider than the screen.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow} px wider than the phone`);
  await shot(page, "phone-seatmap");
  // Keyboard: focus the map, move with the arrows, select with Enter.
  await page.focus("#map");
  await page.keyboard.press("ArrowRight");
  await page.keyboard.press("Enter");
  await page.waitForSelector("#selected li");
  assert.match(await page.textContent("#announce"), /row .* seat .* selected/i);
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => document.querySelectorAll("#selected li").length === 0);
  await page.selectOption("#qty", "2");
  await page.click("#bestgo");
  await page.waitForSelector("#holdbox:not([hidden])");
  await page.locator("#pay").scrollIntoViewIfNeeded();
  await shot(page, "phone-hold");
  await pay(page, "4242424242424242");
  await page.waitForSelector("#order-status >> text=paid");
  await shot(page, "phone-confirmation");
  await page.context().close();
});

await flow("the gate scanner: a paid ticket admitted once online, another admitted offline with the kit and uploaded", async () => {
  // A buyer's paid order, through the API: its tickets' payloads are what the camera would read.
  const ivan = JSON.parse(env("BUYER_TOKENS")).ivan;
  let r = await api("POST", `/events/${DEMO}/reservations`, ivan,
    { client_reservation_id: "gate-scan", user_id: "ivan", seat_ids: ["orch-H-1", "orch-H-2", "orch-H-3"] });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  r = await api("POST", `/reservations/${r.body.hold_id}/commit`, ivan, { idempotency_key: "gate-scan-pay", payment_token: "tok_visa" });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const order = r.body.order_id;
  r = await api("GET", `/orders/${order}/tickets`, ivan);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const [first, second, third] = r.body.tickets.map((t) => t.payload);

  const page = await newPage({ width: 390, height: 844 });
  await page.goto(`${BASE}/app/gate.html`);
  await page.fill("#gate-token", env("GATE_TOKEN"));
  await page.fill("#gate-event", DEMO);
  await page.click("#gate-setup button");
  await page.waitForSelector("#gate-status >> text=kit");
  const scan = async (payload) => {
    await page.fill("#gate-payload", payload);
    await page.press("#gate-payload", "Enter");
  };
  await scan(first);
  await page.waitForSelector("#verdict.verdict-admitted >> text=ADMIT");
  await shot(page, "gate-admitted");
  await scan(first);
  await page.waitForSelector("#verdict.verdict-already_used >> text=ALREADY USED");
  await shot(page, "gate-already-used");
  await scan("not-a-ticket");
  await page.waitForSelector("#verdict.verdict-invalid");
  // Another scan lets the third ticket in (as another gate would); the page's kit learns it.
  r = await api("POST", `/events/${DEMO}/checkins`, env("GATE_TOKEN"), { payload: third });
  assert.equal(r.body?.verdict, "admitted", JSON.stringify(r.body));
  await page.click("#gate-kit");
  await page.waitForSelector("#gate-status >> text=2 in");
  // The network goes: the page decides with the kit it keeps (signature, event, revocations,
  // the tickets already let in).
  await page.context().setOffline(true);
  await scan(second);
  await page.waitForSelector("#verdict.verdict-admitted >> text=offline");
  await scan(second);
  await page.waitForSelector("#verdict.verdict-already_used");
  await scan(third);
  await page.waitForSelector("#verdict.verdict-already_used >> text=(kit)");
  await shot(page, "gate-offline");
  assert.match(await page.textContent("#gate-pending"), /1 offline scan/);
  await page.context().setOffline(false);
  await page.click("#gate-upload");
  await page.waitForFunction(() => document.querySelector("#gate-pending").textContent === "");
  assert.equal(psql(`SELECT string_agg(mode, ',' ORDER BY mode) FROM checkins c JOIN tickets t ON t.id = c.ticket_id WHERE t.order_id = '${order}'`), "offline,online,online");
  await page.context().close();
});

await browser.close();
console.log(`[browser] screenshots: ${shots.join(" ")}`);
if (consoleErrors.length) console.log(`[browser] page errors:\n  ${consoleErrors.join("\n  ")}`);
const failed = results.filter(([, r]) => r !== "ok");
if (failed.length || consoleErrors.length) {
  console.log(`[browser] ${failed.length} flow(s) failed, ${consoleErrors.length} page error(s)`);
  process.exit(1);
}
console.log(`[browser] all ${results.length} flows passed`);
