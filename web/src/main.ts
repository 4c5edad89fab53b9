// The buyer's web app: event list, event page with the seat map, hold and checkout, waiting
// room, confirmation, and the development sign-in. Hash routes, so the gateway serves one
// index.html and any CDN can cache the hashed assets forever.

import { ApiError, auth, call, explain, fetchBlob, money, sleep, subjectOf, uuid } from "./api";
import { LayoutJson, PALETTE, SeatMap, SeatState } from "./seatmap";

/** Most seats one hold may have (the gateway's default limits.max_seats_per_hold). */
const MAX_PER_HOLD = 10;

interface Price {
  category: string;
  amount_cents: number;
  currency: string;
}
interface EventJson {
  id: string;
  title: string;
  venue_id: string;
  venue_name?: string;
  starts_at: string;
  status: string;
  category?: string;
  prices: Price[];
  max_tickets_per_buyer?: number;
}
interface Hold {
  hold_id: string;
  event_id: string;
  state: string;
  seats: string[];
  expires_at: string;
  cap_at: string;
  total_amount: number;
  currency: string;
}
interface PaymentsConfig {
  tokenize_url: string | null;
  authenticate_url: string | null;
  publishable_key: string | null;
}

const $ = <T extends HTMLElement = HTMLElement>(sel: string, root: ParentNode = document): T => {
  const el = root.querySelector(sel);
  if (!el) throw new Error(`missing ${sel}`);
  return el as T;
};
const esc = (s: unknown) =>
  String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

/** What the page exposes to the browser tests (and to curious people with a console). */
const testHooks: any = ((window as any).seatApp = { ready: false });

let cleanup: (() => void)[] = [];
function leave(): void {
  for (const f of cleanup) f();
  cleanup = [];
  testHooks.ready = false;
}

const main = () => $("#main");

function setTitle(t: string): void {
  document.title = `${t} · Tickets`;
}

function renderHeader(): void {
  const who = auth.user;
  $("#who").innerHTML = who
    ? `Signed in as <strong>${esc(who)}</strong> · <a href="#/signin" id="signout">Sign out</a>`
    : `<a href="#/signin">Sign in</a>`;
  const out = document.querySelector("#signout");
  out?.addEventListener("click", () => {
    auth.clear();
  });
}

function showError(where: HTMLElement, e: unknown): void {
  where.innerHTML = `<div class="alert" role="alert">${esc(explain(e))}</div>`;
}

// ---------------------------------------------------------------- routes

// Which route() is current. A page that awaits before it renders checks it after each await:
// when another route() began meanwhile (a sign-in, then the event opened at once), the older
// render stops there, so it never draws over the newer page nor starts timers nobody stops.
let routeGen = 0;
const stale = (gen: number): boolean => gen !== routeGen;

async function route(): Promise<void> {
  routeGen++;
  leave();
  renderHeader();
  const hash = location.hash.replace(/^#/, "") || "/";
  const parts = hash.split("/").filter(Boolean).map(decodeURIComponent);
  try {
    if (parts.length === 0) return await eventList();
    if (parts[0] === "signin") return await signIn();
    if (parts[0] === "events" && parts.length === 2) return await eventPage(parts[1]);
    if (parts[0] === "events" && parts[2] === "queue") return await waitingRoom(parts[1]);
    if (parts[0] === "orders" && parts[1]) return await confirmation(parts[1]);
    main().innerHTML = `<h1>Not found</h1><p><a href="#/">All events</a></p>`;
  } catch (e) {
    showError(main(), e);
  }
}

// ---------------------------------------------------------------- event list

function priceRange(prices: Price[]): string {
  if (!prices.length) return "";
  const cents = prices.map((p) => p.amount_cents);
  const lo = Math.min(...cents) / 100, hi = Math.max(...cents) / 100;
  const c = prices[0].currency;
  return lo === hi ? money(lo, c) : `${money(lo, c)} – ${money(hi, c)}`;
}

async function eventList(): Promise<void> {
  setTitle("Events");
  const gen = routeGen;
  main().innerHTML = `<h1>Events on sale</h1><p class="muted" id="loading">Loading…</p><ul class="events" id="events"></ul>`;
  const page = await call<{ events: EventJson[] }>("/events?limit=50", { auth: false });
  if (stale(gen)) return;
  $("#loading").remove();
  const list = $("#events");
  if (!page.events.length) list.innerHTML = `<li class="muted">No events are on sale.</li>`;
  for (const ev of page.events) {
    const li = document.createElement("li");
    li.innerHTML = `<a class="card" href="#/events/${encodeURIComponent(ev.id)}">
      <span class="title">${esc(ev.title)}</span>
      <span class="muted">${esc(ev.venue_name ?? ev.venue_id)} · ${esc(new Date(ev.starts_at).toLocaleString())}</span>
      <span class="price">${esc(priceRange(ev.prices))}</span>
      <span class="badge ${esc(ev.status)}">${esc(ev.status.replace("_", " "))}</span></a>`;
    list.appendChild(li);
  }
  testHooks.ready = true;
}

// ---------------------------------------------------------------- sign-in

async function signIn(): Promise<void> {
  setTitle("Sign in");
  main().innerHTML = `<h1>Sign in</h1>
    <form id="dev" class="stack narrow">
      <label for="name">Your name (development sign-in)</label>
      <input id="name" name="name" autocomplete="username" required pattern="[A-Za-z0-9_.\\-]{1,64}" placeholder="alice">
      <button type="submit" class="primary">Sign in</button>
    </form>
    <div id="idp" hidden class="stack narrow">
      <p>This deployment signs buyers in through its identity provider: sign in there, then paste
      the access token it gives you.</p>
      <label for="token">Access token</label>
      <textarea id="token" rows="4"></textarea>
      <button id="use" class="primary">Use this token</button>
    </div>
    <div id="msg" role="alert"></div>`;
  const back = sessionStorage.getItem("seatalloc.after_signin") ?? "#/";
  const done = () => {
    sessionStorage.removeItem("seatalloc.after_signin");
    location.hash = back;
  };
  $("#dev").addEventListener("submit", async (e) => {
    e.preventDefault();
    const name = $<HTMLInputElement>("#name").value.trim();
    try {
      const r = await call<{ token: string; user_id: string }>("/dev/signin", {
        method: "POST",
        body: { name },
        auth: false,
      });
      auth.set(r.token, r.user_id);
      done();
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        // Not a development stack: the route does not exist here.
        $("#dev").hidden = true;
        $("#idp").hidden = false;
        $("#msg").innerHTML = `<div class="alert info">Development sign-in is off on this deployment: it expects a token from its identity provider.</div>`;
      } else showError($("#msg"), err);
    }
  });
  $("#use").addEventListener("click", () => {
    const token = $<HTMLTextAreaElement>("#token").value.trim();
    const sub = subjectOf(token);
    if (!sub) {
      $("#msg").innerHTML = `<div class="alert">That is not a token this app can read.</div>`;
      return;
    }
    auth.set(token, sub);
    done();
  });
  testHooks.ready = true;
}

function requireSignIn(): boolean {
  if (auth.token) return true;
  sessionStorage.setItem("seatalloc.after_signin", location.hash);
  location.hash = "#/signin";
  return false;
}

// ---------------------------------------------------------------- admission (waiting room)

interface Admission {
  token: string;
  expires_at: string | null;
}
const admissionKey = (id: string) => `seatalloc.admission.${id}.${auth.user}`;
function admission(id: string): Admission | null {
  const raw = sessionStorage.getItem(admissionKey(id));
  if (!raw) return null;
  const a: Admission = JSON.parse(raw);
  if (a.expires_at && Date.parse(a.expires_at) < Date.now()) return null;
  return a;
}

/** Whether the buyer may shop now; otherwise sends them to the waiting room. */
async function admitted(id: string): Promise<boolean> {
  if (!auth.token || admission(id)) return true;
  try {
    const t = await call<any>(`/events/${encodeURIComponent(id)}/queue`, { method: "POST" });
    if (t.status === "admitted" && t.admission_token) {
      sessionStorage.setItem(admissionKey(id), JSON.stringify({ token: t.admission_token, expires_at: t.admission_expires_at }));
      return true;
    }
    sessionStorage.setItem(`seatalloc.ticket.${id}`, t.ticket);
    location.hash = `#/events/${encodeURIComponent(id)}/queue`;
    return false;
  } catch (e) {
    // No waiting room: shop directly. Any other answer: let the hold say what is wrong.
    if (e instanceof ApiError && e.code === "no_waiting_room") return true;
    if (e instanceof ApiError && e.status === 401) {
      auth.clear();
      return true;
    }
    return true;
  }
}

async function waitingRoom(id: string): Promise<void> {
  if (!requireSignIn()) return;
  setTitle("Waiting room");
  const gen = routeGen;
  const ev = await call<EventJson>(`/events/${encodeURIComponent(id)}`, { auth: false });
  if (stale(gen)) return;
  main().innerHTML = `<h1>${esc(ev.title)}</h1>
    <section class="room" aria-labelledby="roomh">
      <h2 id="roomh">You are in the waiting room</h2>
      <p class="muted">Keep this page open: you will be taken to the seat map when it is your turn.</p>
      <dl class="stats" aria-live="polite">
        <div><dt>Your position</dt><dd id="position">…</dd></div>
        <div><dt>People ahead of you</dt><dd id="ahead">…</dd></div>
        <div><dt>Expected wait</dt><dd id="wait">…</dd></div>
        <div><dt>Seats left</dt><dd id="left">…</dd></div>
      </dl>
      <p id="outlook"></p>
      <div class="progress" aria-hidden="true"><div id="bar"></div></div>
      <div id="msg" role="alert"></div>
    </section>`;
  let stopped = false;
  cleanup.push(() => (stopped = true));
  let ticket = sessionStorage.getItem(`seatalloc.ticket.${id}`);
  let first: number | null = null;
  testHooks.ready = true;
  while (!stopped) {
    let t: any;
    try {
      t = ticket
        ? await call(`/events/${encodeURIComponent(id)}/queue/${ticket}`)
        : await call(`/events/${encodeURIComponent(id)}/queue`, { method: "POST" });
    } catch (e) {
      if (e instanceof ApiError && e.code === "no_waiting_room") {
        location.hash = `#/events/${encodeURIComponent(id)}`;
        return;
      }
      if (e instanceof ApiError && e.code === "unknown_ticket") {
        ticket = null;
        continue;
      }
      showError($("#msg"), e);
      await sleep(e instanceof ApiError && e.retryAfter ? e.retryAfter * 1000 : 2000);
      continue;
    }
    if (stopped) return;
    ticket = t.ticket;
    sessionStorage.setItem(`seatalloc.ticket.${id}`, t.ticket);
    $("#msg").innerHTML = "";
    $("#position").textContent = String(t.position ?? "—");
    $("#ahead").textContent = String(t.ahead ?? "—");
    $("#wait").textContent = t.expected_wait_seconds != null ? humanWait(t.expected_wait_seconds) : "—";
    $("#left").textContent = t.seats_left != null ? String(t.seats_left) : "—";
    $("#outlook").textContent =
      t.outlook === "unlikely"
        ? "More buyers are ahead of you than there are seats left: you may not get one."
        : t.outlook === "possible"
          ? "There should be seats for you."
          : "";
    if (first === null) first = Math.max(1, t.ahead ?? 1);
    $("#bar").style.width = `${Math.round(100 * (1 - (t.ahead ?? 0) / first))}%`;
    if (t.status === "admitted" && t.admission_token) {
      sessionStorage.setItem(admissionKey(id), JSON.stringify({ token: t.admission_token, expires_at: t.admission_expires_at }));
      $("#roomh").textContent = "It's your turn!";
      location.hash = `#/events/${encodeURIComponent(id)}`;
      return;
    }
    if (t.status === "sold_out") {
      $("#roomh").textContent = "Sold out";
      $("#msg").innerHTML = `<div class="alert">Every seat is taken. Sorry!</div>`;
      return;
    }
    if (t.status === "expired" || t.status === "done") {
      sessionStorage.removeItem(`seatalloc.ticket.${id}`);
      $("#msg").innerHTML = `<div class="alert">Your turn has passed (${esc(t.status)}). <a href="#/events/${encodeURIComponent(id)}">Join again</a></div>`;
      return;
    }
    await sleep(Math.max(250, t.poll_after_ms ?? 1000));
  }
}

function humanWait(s: number): string {
  if (s < 60) return `${s} s`;
  const m = Math.round(s / 60);
  return m < 60 ? `about ${m} min` : `about ${Math.round(m / 60)} h`;
}

// ---------------------------------------------------------------- event page

async function eventPage(id: string): Promise<void> {
  const started = performance.now();
  const enc = encodeURIComponent(id);
  const gen = routeGen;
  main().innerHTML = `<p class="muted">Loading the seat map…</p>`;
  if (!(await admitted(id)) || stale(gen)) return;
  const [ev, seatmap] = await Promise.all([
    call<EventJson>(`/events/${enc}`, { auth: false }),
    call<any>(`/events/${enc}/seatmap`, { auth: false }),
  ]);
  if (stale(gen)) return;
  const fetched = performance.now();
  setTitle(ev.title);
  const layout: LayoutJson = seatmap.layout;
  const maxSelect = Math.min(MAX_PER_HOLD, ev.max_tickets_per_buyer ?? 8);
  const priceOf = new Map(ev.prices.map((p) => [p.category, p]));
  const catName = new Map(layout.categories.map((c) => [c.id, c.name]));
  main().innerHTML = `
    <div class="eventhead">
      <div><h1>${esc(ev.title)}</h1>
      <p class="muted">${esc(ev.venue_name ?? layout.venue.name)} · ${esc(new Date(ev.starts_at).toLocaleString())}</p></div>
      <a href="#/" class="back">All events</a>
    </div>
    <div class="shop">
      <div class="mapwrap">
        <canvas id="map" tabindex="0" role="application"
          aria-label="Seat map of ${esc(layout.venue.name)}. Arrow keys move between seats, Enter or Space selects a seat, plus and minus zoom."
          aria-describedby="maphelp"></canvas>
        <div class="zoom" role="group" aria-label="Zoom">
          <button id="zin" aria-label="Zoom in">+</button>
          <button id="zout" aria-label="Zoom out">−</button>
          <button id="zfit" aria-label="Show the whole venue">⤢</button>
        </div>
        <div id="tooltip" role="tooltip" hidden></div>
        <p id="maphelp" class="sr-only">Drag to pan, scroll or pinch to zoom. Taken seats are grey.</p>
      </div>
      <aside class="panel">
        <h2 class="sr-only">Prices</h2>
        <ul class="legend" id="legend"></ul>
        <div id="choose">
          <h2>Your seats</h2>
          <ul id="selected" class="selected"></ul>
          <p id="total" class="total"></p>
          <button id="hold" class="primary" disabled>Select seats on the map</button>
          <form id="best" class="best">
            <label for="qty">Best available</label>
            <select id="qty" aria-label="How many seats">${[1, 2, 3, 4, 5, 6, 7, 8].map((n) => `<option ${n === 2 ? "selected" : ""}>${n}</option>`).join("")}</select>
            <select id="bestcat" aria-label="Price category"><option value="">any price</option>${layout.categories
              .map((c) => `<option value="${esc(c.id)}">${esc(c.name)}</option>`)
              .join("")}</select>
            <button type="submit" id="bestgo">Find seats</button>
          </form>
        </div>
        <div id="holdbox" hidden></div>
        <div id="waitbox" class="waitbox" hidden></div>
        <div id="msg" role="alert" aria-live="assertive"></div>
      </aside>
    </div>
    <div id="announce" class="sr-only" aria-live="polite"></div>`;

  const legend = $("#legend");
  layout.categories.forEach((c, i) => {
    const p = priceOf.get(c.id);
    legend.insertAdjacentHTML(
      "beforeend",
      `<li><span class="swatch" style="background:${PALETTE[i % PALETTE.length]}"></span>${esc(c.name)} <strong>${p ? esc(money(p.amount_cents / 100, p.currency)) : "—"}</strong></li>`,
    );
  });
  legend.insertAdjacentHTML(
    "beforeend",
    `<li><span class="swatch taken"></span>Taken</li><li><span class="swatch sel"></span>Selected</li><li><span class="swatch mine"></span>Held by you</li><li><span class="swatch acc"></span>Accessible</li>`,
  );

  const canvas = $<HTMLCanvasElement>("#map");
  const map = new SeatMap(canvas, layout);
  const built = performance.now();
  const selected: number[] = [];
  let hold: Hold | null = null;

  // Seats not free as the server last said, whoever has them (this buyer's hold included): what
  // a seat shows once it is neither selected nor held by this buyer.
  const live = new Uint8Array(map.count);
  // Availability as of the seat map; the stream below keeps it current.
  for (const a of seatmap.availability ?? []) {
    for (const list of [a.held_seats, a.sold_seats, a.blocked_seats]) {
      for (const sid of list ?? []) {
        const k = map.index.get(sid);
        if (k !== undefined) {
          map.state[k] = SeatState.Taken;
          live[k] = 1;
        }
      }
    }
  }
  // The canvas follows its box (window resizes, the phone layout, the panel changing height).
  const observer = new ResizeObserver(() => map.resize());
  observer.observe(canvas);
  cleanup.push(() => observer.disconnect());
  map.resize();
  map.fit();
  map.paint();

  const msg = $("#msg");
  const say = (html: string, kind = "") => (msg.innerHTML = html ? `<div class="alert ${kind}">${html}</div>` : "");
  const announce = (text: string) => ($("#announce").textContent = text);
  const priceText = (k: number) => {
    const p = priceOf.get(map.info(k).category);
    return p ? money(p.amount_cents / 100, p.currency) : "";
  };
  const describe = (k: number) => {
    const s = map.info(k);
    const state =
      s.state === SeatState.Taken ? "taken" : s.state === SeatState.Selected ? "selected" : s.state === SeatState.Mine ? "held by you" : "available";
    return `${s.section}, row ${s.row}, seat ${s.number}, ${catName.get(s.category) ?? s.category} ${priceText(k)}${s.accessible ? ", wheelchair accessible" : ""}, ${state}`;
  };

  const tooltip = $("#tooltip");
  map.onHover = (k, x, y) => {
    if (k < 0) {
      tooltip.hidden = true;
      return;
    }
    const s = map.info(k);
    tooltip.innerHTML = `<strong>${esc(s.section)} · Row ${esc(s.row)} · Seat ${s.number}</strong><br>${esc(catName.get(s.category) ?? s.category)} ${esc(priceText(k))}${s.accessible ? " · ♿ accessible" : ""}${s.state === SeatState.Taken ? "<br><em>Taken</em>" : ""}`;
    tooltip.hidden = false;
    const r = canvas.getBoundingClientRect();
    tooltip.style.left = `${Math.min(x - r.left + 12, r.width - 180)}px`;
    tooltip.style.top = `${y - r.top + 12}px`;
  };
  map.onFocusSeat = (k) => announce(describe(k));

  const renderSelection = () => {
    const ul = $("#selected");
    ul.innerHTML = "";
    let cents = 0;
    let currency = "USD";
    for (const k of selected) {
      const s = map.info(k);
      const p = priceOf.get(s.category);
      if (p) {
        cents += p.amount_cents;
        currency = p.currency;
      }
      const li = document.createElement("li");
      li.innerHTML = `<span>${esc(s.section)} · Row ${esc(s.row)} · Seat ${s.number}${s.accessible ? " ♿" : ""}</span><span>${esc(priceText(k))}</span>
        <button class="link" aria-label="Remove ${esc(s.section)} row ${esc(s.row)} seat ${s.number}">✕</button>`;
      li.querySelector("button")!.addEventListener("click", () => toggle(k));
      ul.appendChild(li);
    }
    $("#total").textContent = selected.length ? `Total ${money(cents / 100, currency)}` : "";
    const button = $<HTMLButtonElement>("#hold");
    button.disabled = selected.length === 0;
    button.textContent = selected.length ? `Hold ${selected.length} seat${selected.length > 1 ? "s" : ""}` : "Select seats on the map";
  };

  const toggle = (k: number) => {
    if (hold) {
      say("You are holding seats: pay for them or cancel the hold to choose others.");
      return;
    }
    const st = map.state[k];
    if (st === SeatState.Taken) {
      say("That seat is taken.");
      return;
    }
    if (st === SeatState.Selected) {
      map.state[k] = SeatState.Free;
      selected.splice(selected.indexOf(k), 1);
    } else {
      if (selected.length >= maxSelect) {
        say(`You can choose up to ${maxSelect} seats.`);
        return;
      }
      map.state[k] = SeatState.Selected;
      selected.push(k);
    }
    say("");
    announce(describe(k));
    renderSelection();
    map.draw();
  };
  map.onClick = toggle;

  $("#zin").addEventListener("click", () => map.zoom(1.5));
  $("#zout").addEventListener("click", () => map.zoom(1 / 1.5));
  $("#zfit").addEventListener("click", () => map.fit());

  // ---- live availability
  const mineSet = new Set<number>();
  const takeFromOthers = (ids: string[]) => {
    const lost: string[] = [];
    for (const sid of ids) {
      const k = map.index.get(sid);
      if (k !== undefined) live[k] = 1;
      if (k === undefined || mineSet.has(k)) continue;
      if (map.state[k] === SeatState.Selected) {
        selected.splice(selected.indexOf(k), 1);
        const s = map.info(k);
        lost.push(`${s.section} row ${s.row} seat ${s.number}`);
      }
      map.state[k] = SeatState.Taken;
    }
    if (lost.length) {
      say(`Someone else just took ${esc(lost.join(", "))}. Choose another seat.`);
      renderSelection();
    }
  };
  const free = (ids: string[]) => {
    for (const sid of ids) {
      const k = map.index.get(sid);
      if (k !== undefined) live[k] = 0;
      if (k !== undefined && !mineSet.has(k) && map.state[k] === SeatState.Taken) map.state[k] = SeatState.Free;
    }
  };
  const stream = new EventSource(`/events/${enc}/availability/stream`);
  cleanup.push(() => stream.close());
  stream.addEventListener("snapshot", (e) => {
    const data = JSON.parse((e as MessageEvent).data);
    live.fill(0);
    for (let k = 0; k < map.count; k++) if (map.state[k] === SeatState.Taken) map.state[k] = SeatState.Free;
    takeFromOthers(data.taken);
    testHooks.liveVersion = data.v;
    map.draw();
    waitlist.render();
  });
  stream.addEventListener("diff", (e) => {
    const data = JSON.parse((e as MessageEvent).data);
    takeFromOthers(data.taken ?? []);
    free(data.freed ?? []);
    testHooks.liveVersion = data.v;
    map.draw();
    waitlist.render();
  });
  stream.addEventListener("open", () => (testHooks.live = true));
  stream.addEventListener("error", () => (testHooks.live = false));

  // ---- holding
  const holdKey = `seatalloc.hold.${id}.${auth.user}`;
  /** The request being made: its client_reservation_id survives retries and double clicks. */
  let pending: { crid: string; seats: string[] } | null = null;
  let inFlight = false;

  const showHold = (h: Hold) => {
    hold = h;
    sessionStorage.setItem(holdKey, h.hold_id);
    for (const k of selected) if (map.state[k] === SeatState.Selected) map.state[k] = SeatState.Free;
    selected.length = 0;
    mineSet.clear();
    for (const sid of h.seats) {
      const k = map.index.get(sid);
      if (k !== undefined) {
        mineSet.add(k);
        map.state[k] = SeatState.Mine;
      }
    }
    map.draw();
    $("#choose").hidden = true;
    checkout(h);
  };
  const dropHold = (message: string) => {
    hold = null;
    sessionStorage.removeItem(holdKey);
    for (const k of mineSet) map.state[k] = live[k] ? SeatState.Taken : SeatState.Free;
    mineSet.clear();
    pending = null;
    $("#holdbox").hidden = true;
    $("#holdbox").innerHTML = "";
    $("#choose").hidden = false;
    renderSelection();
    map.draw();
    say(message, "info");
    waitlist.render();
  };

  const reserve = async (body: Record<string, unknown>) => {
    if (!requireSignIn() || inFlight) return;
    inFlight = true;
    const button = $<HTMLButtonElement>("#hold");
    button.disabled = true;
    $<HTMLButtonElement>("#bestgo").disabled = true;
    say("Holding your seats…", "info");
    const adm = admission(id);
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          const h = await call<Hold>(`/events/${enc}/reservations`, {
            method: "POST",
            body: { client_reservation_id: pending!.crid, user_id: auth.user, ...body },
            headers: adm ? { "X-Admission-Token": adm.token } : {},
          });
          say("");
          showHold(h);
          return;
        } catch (e) {
          // A lost answer or a busy server: the same client_reservation_id again, so a hold
          // made by the first attempt is returned rather than made twice.
          if (e instanceof ApiError && (e.network || e.status === 503 || e.code === "request_in_progress") && attempt < 4) {
            say(`${esc(explain(e))} Retrying…`, "info");
            await sleep((e.retryAfter ?? 0.5 * 2 ** attempt) * 1000);
            continue;
          }
          throw e;
        }
      }
    } catch (e) {
      pending = null;
      if (e instanceof ApiError && e.code === "seats_unavailable") {
        takeFromOthers((e.details?.unavailable ?? []).map((u: any) => u.seat_id));
        map.draw();
      }
      if (e instanceof ApiError && e.status === 403 && String(e.code).startsWith("admission")) {
        sessionStorage.removeItem(admissionKey(id));
        location.hash = `#/events/${enc}/queue`;
        return;
      }
      if (e instanceof ApiError && e.status === 401) {
        auth.clear();
        renderHeader();
      }
      say(esc(explain(e)));
    } finally {
      inFlight = false;
      renderSelection();
      $<HTMLButtonElement>("#bestgo").disabled = false;
    }
  };

  $("#hold").addEventListener("click", () => {
    const seats = selected.map((k) => map.ids[k]);
    if (!seats.length) return;
    if (!pending || pending.seats.join() !== seats.join()) pending = { crid: uuid(), seats };
    void reserve({ seat_ids: seats });
  });
  $("#best").addEventListener("submit", (e) => {
    e.preventDefault();
    const quantity = Number($<HTMLSelectElement>("#qty").value);
    const category = $<HTMLSelectElement>("#bestcat").value;
    const key = `best:${quantity}:${category}`;
    if (!pending || pending.seats.join() !== key) pending = { crid: uuid(), seats: [key] };
    void reserve(category ? { quantity, category } : { quantity });
  });

  // ---- the hold: countdown, extend, cancel, card, commit
  const checkout = (h: Hold) => {
    const box = $("#holdbox");
    box.hidden = false;
    box.innerHTML = `
      <h2>Your hold</h2>
      <ul class="selected">${h.seats
        .map((sid) => {
          const k = map.index.get(sid);
          if (k === undefined) return `<li>${esc(sid)}</li>`;
          const s = map.info(k);
          return `<li><span>${esc(s.section)} · Row ${esc(s.row)} · Seat ${s.number}</span><span>${esc(priceText(k))}</span></li>`;
        })
        .join("")}</ul>
      <p class="total">Total ${esc(money(h.total_amount, h.currency))}</p>
      <p class="countdown" aria-live="off">Held for <strong id="left" role="timer">–:––</strong></p>
      <div class="row">
        <button id="extend">Extend</button>
        <button id="cancel" class="danger">Cancel hold</button>
      </div>
      <form id="card" class="card stack" autocomplete="on">
        <h3>Pay by card</h3>
        <label for="cc">Card number</label>
        <input id="cc" inputmode="numeric" autocomplete="cc-number" placeholder="4242 4242 4242 4242" required>
        <div class="row">
          <div><label for="exp">Expiry (MM/YY)</label><input id="exp" autocomplete="cc-exp" placeholder="12/30" required></div>
          <div><label for="cvc">CVC</label><input id="cvc" inputmode="numeric" autocomplete="cc-csc" placeholder="123" required></div>
        </div>
        <p class="muted small" id="cardnote"></p>
        <button type="submit" id="pay" class="primary">Pay ${esc(money(h.total_amount, h.currency))}</button>
      </form>
      <div id="sca" hidden class="sca" role="dialog" aria-labelledby="scah">
        <h3 id="scah">Confirm with your bank (3-D Secure)</h3>
        <p>Your bank asks you to confirm this payment.</p>
        <div class="row"><button id="scaok" class="primary">Confirm payment</button><button id="scafail" class="danger">Cancel</button></div>
      </div>
      <div id="paystate" role="status" aria-live="polite"></div>`;
    let expiresAt = Date.parse(h.expires_at);
    const capAt = Date.parse(h.cap_at);
    const tick = () => {
      const left = Math.max(0, Math.round((expiresAt - Date.now()) / 1000));
      const el = document.querySelector("#left");
      if (el) el.textContent = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
      if (left === 0 && hold && !paying) expired();
    };
    const timer = setInterval(tick, 250);
    cleanup.push(() => clearInterval(timer));
    tick();
    let paying = false;
    const expired = () => {
      clearInterval(timer);
      dropHold(`Your hold expired and the seats went back on sale. <button class="link" id="again">Start again</button>`);
      document.querySelector("#again")?.addEventListener("click", () => say(""));
    };
    $("#extend").addEventListener("click", async () => {
      try {
        const want = Math.min(900, Math.max(60, Math.floor((capAt - Date.now()) / 1000)));
        const n = await call<Hold>(`/reservations/${h.hold_id}/extend`, { method: "POST", body: { ttl_seconds: want } });
        expiresAt = Date.parse(n.expires_at);
        say(Date.parse(n.expires_at) >= capAt - 1000 ? "Extended as far as a hold can go." : "Extended.", "info");
        tick();
      } catch (e) {
        if (e instanceof ApiError && e.status === 410) return expired();
        say(esc(explain(e)));
      }
    });
    $("#cancel").addEventListener("click", async () => {
      try {
        await call(`/reservations/${h.hold_id}`, { method: "DELETE" });
      } catch (e) {
        if (!(e instanceof ApiError && (e.status === 404 || e.status === 410))) return say(esc(explain(e)));
      }
      clearInterval(timer);
      dropHold("Your hold was cancelled.");
    });
    void paymentsConfig().then((c) => {
      $("#cardnote").textContent = c.tokenize_url
        ? "Your card details go straight to the payment provider, never to this site."
        : "Sandbox: 4242 4242 4242 4242 pays, 4000 0000 0000 0002 is declined, 4000 0025 0000 3155 asks for 3-D Secure.";
    });
    $("#card").addEventListener("submit", async (e) => {
      e.preventDefault();
      if (paying) return;
      paying = true;
      $<HTMLButtonElement>("#pay").disabled = true;
      try {
        await pay(h, (t) => ($("#paystate").innerHTML = t));
      } catch (err) {
        if (err instanceof ApiError && err.status === 410) {
          paying = false;
          return expired();
        }
        $("#paystate").innerHTML = `<div class="alert">${esc(explain(err))}</div>`;
      } finally {
        paying = false;
        const b = document.querySelector<HTMLButtonElement>("#pay");
        if (b) b.disabled = false;
      }
    });
  };

  // ---- the waiting list: offered when nothing is left; an offer is a hold made for this buyer
  const waitlist = waitingList(id, layout, maxSelect, () => !!hold, () => {
    let free = 0;
    for (let k = 0; k < map.count; k++) if (!live[k]) free++;
    return free;
  }, showHold, say);
  cleanup.push(() => waitlist.stop());

  // A hold made before a reload is shown again.
  const kept = sessionStorage.getItem(holdKey);
  if (kept && auth.token) {
    try {
      const h = await call<Hold>(`/reservations/${kept}`);
      if (h.state === "held" || h.state === "pinned") showHold(h);
      else sessionStorage.removeItem(holdKey);
    } catch {
      sessionStorage.removeItem(holdKey);
    }
  }
  if (!auth.token) say(`<a href="#/signin" id="signinlink">Sign in</a> to hold seats.`, "info");
  document.querySelector("#signinlink")?.addEventListener("click", () => sessionStorage.setItem("seatalloc.after_signin", location.hash));

  renderSelection();
  waitlist.render();
  map.paint();
  testHooks.map = map;
  testHooks.mapReadyMs = Math.round(performance.now() - started);
  testHooks.timings = { fetchMs: Math.round(fetched - started), buildMs: Math.round(built - fetched), paintMs: Math.round(performance.now() - built) };
  testHooks.seats = map.count;
  testHooks.state = (sid: string) => ["free", "taken", "selected", "mine"][map.state[map.index.get(sid) ?? -1] ?? 0];
  testHooks.screenOf = (sid: string) => {
    const k = map.index.get(sid)!;
    map.reveal(k);
    map.paint();
    const [x, y] = map.screenOf(k);
    const r = canvas.getBoundingClientRect();
    return { x: r.left + x, y: r.top + y };
  };
  testHooks.zoomTo = (sid: string, f: number) => {
    map.reveal(map.index.get(sid)!);
    const [x, y] = map.screenOf(map.index.get(sid)!);
    map.zoomAt(f, x, y);
    map.paint();
  };
  testHooks.zoom = (f: number) => {
    map.zoom(f);
    map.paint();
  };
  testHooks.ready = true;
}

// ---------------------------------------------------------------- waiting list

interface WaitlistEntry {
  id: string;
  event_id: string;
  quantity: number;
  categories: string[];
  status: "waiting" | "offered" | "taken" | "lapsed" | "left";
  ahead: number;
  hold_id: string | null;
  seats: string[];
  offer_expires_at: string | null;
}

function ordinal(n: number): string {
  const s = ["th", "st", "nd", "rd"], v = n % 100;
  return `${n}${s[(v - 20) % 10] ?? s[v] ?? s[0]}`;
}

/**
 * The event page's waiting list. When the map has no free seat left (and the buyer holds none),
 * the buyer can join; the page then follows the entry (kept across reloads) and, when returned
 * seats are offered, shows the offer's hold with the usual countdown and card form.
 */
function waitingList(
  id: string,
  layout: LayoutJson,
  maxSelect: number,
  holding: () => boolean,
  freeSeats: () => number,
  showHold: (h: Hold) => void,
  say: (html: string, kind?: string) => void,
) {
  const enc = encodeURIComponent(id);
  const key = `seatalloc.waitlist.${id}.${auth.user}`;
  let entry: WaitlistEntry | null = null;
  let entryId = auth.user ? localStorage.getItem(key) : null;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let shownOffer: string | null = null;
  let stopped = false;
  const box = $("#waitbox");

  const forget = () => {
    localStorage.removeItem(key);
    entryId = null;
    entry = null;
  };

  const poll = async () => {
    timer = null;
    if (stopped || !entryId) return;
    try {
      entry = await call<WaitlistEntry>(`/events/${enc}/waitlist/${encodeURIComponent(entryId)}`);
    } catch (e) {
      if (e instanceof ApiError && (e.status === 404 || e.status === 401)) forget();
    }
    if (stopped) return;
    if (entry?.status === "offered" && entry.hold_id && shownOffer !== entry.hold_id && !holding()) {
      try {
        const h = await call<Hold>(`/reservations/${entry.hold_id}`);
        if (h.state === "held" || h.state === "pinned") {
          shownOffer = entry.hold_id;
          showHold(h);
          const until = new Date(entry.offer_expires_at ?? h.expires_at).toLocaleTimeString();
          say(`Seats came back and are held for you until ${esc(until)}: pay to keep them, or they go to the next buyer in line.`, "info");
        }
      } catch {
        /* the next poll tries again */
      }
    }
    if (entry && entry.status !== "waiting" && entry.status !== "offered") {
      if (entry.status === "lapsed") say("Your waiting-list offer lapsed and went to the next buyer in line.", "info");
      forget();
    }
    render();
    if (entryId && !stopped) timer = setTimeout(() => void poll(), 2000);
  };

  const join = async (form: HTMLFormElement) => {
    if (!requireSignIn()) return;
    const button = form.querySelector<HTMLButtonElement>("button")!;
    button.disabled = true;
    const quantity = Number(form.querySelector<HTMLSelectElement>("#wlqty")!.value);
    const category = form.querySelector<HTMLSelectElement>("#wlcat")!.value;
    try {
      entry = await call<WaitlistEntry>(`/events/${enc}/waitlist`, {
        method: "POST",
        body: { quantity, categories: category ? [category] : [] },
      });
      entryId = entry.id;
      localStorage.setItem(key, entry.id);
      say("");
      render();
      if (!timer) timer = setTimeout(() => void poll(), 2000);
    } catch (e) {
      if (e instanceof ApiError && e.code === "seats_available") say("Seats you would take are for sale right now: choose them on the map.", "info");
      else say(esc(explain(e)));
      button.disabled = false;
    }
  };

  const leave = async () => {
    if (!entryId) return;
    try {
      await call(`/events/${enc}/waitlist/${encodeURIComponent(entryId)}`, { method: "DELETE" });
    } catch (e) {
      if (!(e instanceof ApiError && (e.status === 404 || e.status === 409))) return say(esc(explain(e)));
    }
    forget();
    say("You left the waiting list.", "info");
    render();
  };

  const render = () => {
    if (stopped) return;
    const offered = entry?.status === "offered" && holding();
    if (entry && entry.status === "waiting") {
      box.hidden = false;
      const seats = `${entry.quantity} seat${entry.quantity > 1 ? "s" : ""}`;
      box.innerHTML = `<h2>You're on the waiting list</h2>
        <p id="wlstate">${entry.ahead === 0 ? "You are <strong>next in line</strong>" : `You are <strong>${ordinal(entry.ahead + 1)}</strong> in line`} for ${seats}${entry.categories.length ? ` (${esc(entry.categories.join(", "))})` : ""}.</p>
        <p class="muted small">When seats come back (a hold ends, an order is cancelled or refunded), they are held for the next buyer in line. Keep this page open, or come back: the offer waits for you for a while.</p>
        <button id="wlleave" class="danger">Leave the waiting list</button>`;
      $("#wlleave").addEventListener("click", () => void leave());
      $("#choose").hidden = true;
      return;
    }
    if (offered || holding()) {
      box.hidden = true;
      return;
    }
    if (freeSeats() > 0) {
      box.hidden = true;
      $("#choose").hidden = false;
      return;
    }
    $("#choose").hidden = true;
    if (box.querySelector("#wljoin")) {
      box.hidden = false;
      return;
    }
    box.hidden = false;
    box.innerHTML = `<h2>Sold out</h2>
      <p>Every seat is taken right now. Join the waiting list: seats that come back are offered in the order buyers joined.</p>
      <form id="wljoin" class="best">
        <label for="wlqty">Join the waiting list</label>
        <select id="wlqty" aria-label="How many seats">${Array.from({ length: maxSelect }, (_, i) => i + 1)
          .map((n) => `<option ${n === 2 ? "selected" : ""}>${n}</option>`)
          .join("")}</select>
        <select id="wlcat" aria-label="Price category"><option value="">any price</option>${layout.categories
          .map((c) => `<option value="${esc(c.id)}">${esc(c.name)}</option>`)
          .join("")}</select>
        <button type="submit" class="primary">Join the waiting list</button>
      </form>`;
    $("#wljoin").addEventListener("submit", (e) => {
      e.preventDefault();
      void join(e.target as HTMLFormElement);
    });
  };

  if (entryId) void poll();
  return {
    render,
    stop: () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}

// ---------------------------------------------------------------- payment

let configCache: Promise<PaymentsConfig> | null = null;
function paymentsConfig(): Promise<PaymentsConfig> {
  configCache ??= call<PaymentsConfig>("/payments/config", { auth: false }).catch(() => ({
    // No config route (or it failed): the embedded sandbox, which takes its test tokens.
    tokenize_url: null,
    authenticate_url: null,
    publishable_key: null,
  }));
  return configCache;
}

/** The embedded sandbox's test tokens for Stripe's test card numbers. */
const SANDBOX_TOKENS: Record<string, string> = {
  "4242424242424242": "tok_visa",
  "4000000000000002": "tok_chargeDeclined",
  "4000002500003155": "tok_requires_action",
};

/** Card details to a payment token: at the provider's tokenization endpoint, never the gateway. */
async function tokenize(c: PaymentsConfig): Promise<string> {
  const number = $<HTMLInputElement>("#cc").value.replace(/\D/g, "");
  const [mm, yy] = $<HTMLInputElement>("#exp").value.split("/").map((s) => s.trim());
  const cvc = $<HTMLInputElement>("#cvc").value.trim();
  if (!/^\d{12,19}$/.test(number)) throw new ApiError(422, "card", "Enter the card number.");
  if (!/^\d{1,2}$/.test(mm ?? "") || !/^\d{2,4}$/.test(yy ?? "")) throw new ApiError(422, "card", "Enter the expiry as MM/YY.");
  if (!/^\d{3,4}$/.test(cvc)) throw new ApiError(422, "card", "Enter the 3 or 4 digit security code.");
  if (!c.tokenize_url) {
    const token = SANDBOX_TOKENS[number];
    if (!token) throw new ApiError(422, "card", "This sandbox takes the test cards listed under the form.");
    return token;
  }
  const form = new URLSearchParams({
    "card[number]": number,
    "card[exp_month]": String(Number(mm)),
    "card[exp_year]": yy.length === 2 ? `20${yy}` : yy,
    "card[cvc]": cvc,
  });
  let r: Response;
  try {
    r = await fetch(c.tokenize_url, {
      method: "POST",
      headers: { Authorization: `Bearer ${c.publishable_key}`, "Content-Type": "application/x-www-form-urlencoded" },
      body: form,
    });
  } catch {
    throw new ApiError(0, "network", "The payment provider could not be reached.");
  }
  const body = await r.json().catch(() => null);
  if (!r.ok || !body?.id) {
    throw new ApiError(r.status === 200 ? 502 : r.status, body?.error?.code ?? "card_error", body?.error?.message ?? "The card was not accepted.");
  }
  return body.id as string;
}

interface Attempt {
  key: string;
  token: string;
  open: boolean;
}

async function pay(h: Hold, status: (html: string) => void): Promise<void> {
  const c = await paymentsConfig();
  const storeKey = `seatalloc.commit.${h.hold_id}`;
  // An attempt whose outcome is unknown (the answer was lost) is replayed as it was: the same
  // token and idempotency key, so the buyer can never be charged twice for one hold.
  let attempt: Attempt | null = JSON.parse(sessionStorage.getItem(storeKey) ?? "null");
  if (!attempt || !attempt.open) {
    status(`<p class="muted">Checking your card…</p>`);
    attempt = { key: uuid(), token: await tokenize(c), open: true };
    sessionStorage.setItem(storeKey, JSON.stringify(attempt));
  }
  status(`<p class="muted">Paying…</p>`);
  let r: any;
  for (let n = 0; ; n++) {
    try {
      r = await call(`/reservations/${h.hold_id}/commit`, {
        method: "POST",
        body: { idempotency_key: attempt.key, payment_token: attempt.token },
      });
      break;
    } catch (e) {
      if (e instanceof ApiError && (e.network || e.status === 503) && n < 5) {
        status(`<p class="muted">${esc(explain(e))} Retrying with the same payment…</p>`);
        await sleep((e.retryAfter ?? 0.5 * 2 ** n) * 1000);
        continue;
      }
      if (e instanceof ApiError && e.status !== 0) {
        // A definite answer: the next try is a new attempt (a new card, a new key).
        attempt.open = false;
        sessionStorage.setItem(storeKey, JSON.stringify(attempt));
      }
      throw e;
    }
  }
  if (r.status === "requires_action") {
    status(`<p class="muted">Waiting for your bank's confirmation…</p>`);
    await secure(c, r.payment_id);
  } else if (r.status !== "paid") {
    status(`<p class="muted">Confirming…</p>`);
  }
  const order = await follow(r.order_id, r.status, status);
  attempt.open = false;
  sessionStorage.setItem(storeKey, JSON.stringify(attempt));
  if (order.status === "paid") {
    sessionStorage.setItem(`seatalloc.order.${order.order_id}`, JSON.stringify({ event: h.event_id }));
    location.hash = `#/orders/${order.order_id}`;
    return;
  }
  throw new ApiError(402, "payment_declined", order.status === "declined" ? "the payment was declined; the hold stays until it expires" : `the order is ${order.status}`);
}

/** The 3-D Secure step: the provider's authentication, played by the buyer. */
function secure(c: PaymentsConfig, paymentId: string | null): Promise<void> {
  const box = $("#sca");
  box.hidden = false;
  const ok = $<HTMLButtonElement>("#scaok");
  const fail = $<HTMLButtonElement>("#scafail");
  if (!c.authenticate_url || !paymentId) {
    box.querySelector("p")!.textContent =
      "Your bank asks you to confirm this payment. This sandbox completes the confirmation on its side; the order follows once it does.";
    ok.hidden = fail.hidden = true;
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const send = async (result: "succeed" | "fail") => {
      ok.disabled = fail.disabled = true;
      try {
        await fetch(c.authenticate_url!.replace("{id}", encodeURIComponent(paymentId)), {
          method: "POST",
          headers: { Authorization: `Bearer ${c.publishable_key}`, "Content-Type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams({ result }),
        });
      } catch {
        /* the order's status says what happened */
      }
      box.hidden = true;
      resolve();
    };
    ok.addEventListener("click", () => send("succeed"), { once: true });
    fail.addEventListener("click", () => send("fail"), { once: true });
  });
}

/** Follows a 202 until the order is paid or declined. */
async function follow(orderId: string, first: string, status: (html: string) => void): Promise<any> {
  if (first === "paid") return { order_id: orderId, status: "paid" };
  for (let n = 0; ; n++) {
    try {
      const o = await call<any>(`/orders/${orderId}`);
      if (o.status !== "pending" && o.status !== "requires_action") return o;
      status(`<p class="muted">Confirming… (${o.status.replace("_", " ")})</p>`);
    } catch (e) {
      if (!(e instanceof ApiError && (e.network || e.status === 503 || e.status === 429))) throw e;
    }
    await sleep(Math.min(3000, 500 + n * 250));
  }
}

// ---------------------------------------------------------------- confirmation

async function confirmation(orderId: string): Promise<void> {
  if (!requireSignIn()) return;
  setTitle("Your order");
  const gen = routeGen;
  const o = await call<any>(`/orders/${encodeURIComponent(orderId)}`);
  const ctx = JSON.parse(sessionStorage.getItem(`seatalloc.order.${orderId}`) ?? "null");
  let title = "";
  if (ctx?.event) {
    try {
      title = (await call<EventJson>(`/events/${encodeURIComponent(ctx.event)}`, { auth: false })).title;
    } catch {
      /* the order stands without it */
    }
  }
  const paid = o.status === "paid";
  if (stale(gen)) return;
  main().innerHTML = `<section class="confirm">
    <div class="tick ${paid ? "" : "pending"}" aria-hidden="true">${paid ? "✓" : "…"}</div>
    <h1>${paid ? "You're going!" : `Order ${esc(o.status)}`}</h1>
    ${title ? `<p class="lead">${esc(title)}</p>` : ""}
    <dl class="order">
      <div><dt>Order</dt><dd><code id="order-id">${esc(o.order_id)}</code></dd></div>
      <div><dt>Status</dt><dd id="order-status">${esc(o.status)}</dd></div>
      <div><dt>Seats</dt><dd><ul>${(o.seats ?? []).map((s: string) => `<li>${esc(s)}</li>`).join("")}</ul></dd></div>
      ${o.total_amount != null ? `<div><dt>Total</dt><dd>${esc(money(o.total_amount, o.currency ?? "USD"))}</dd></div>` : ""}
    </dl>
    <div id="tickets" class="tickets">${paid ? `<p class="muted">Loading your tickets…</p>` : `<p class="muted">Your tickets appear here once the order is paid.</p>`}</div>
    <p><a href="#/">Back to all events</a></p></section>`;
  if (paid) await showTickets(orderId, $("#tickets"));
  testHooks.ready = true;
}

interface TicketJson {
  ticket_id: string;
  seat_id: string;
  holder: string;
  status: string;
  payload: string | null;
  qr_svg: string | null;
}

/** The order's tickets, each with its QR code (what a gate scans), and the order's PDF. */
async function showTickets(orderId: string, box: HTMLElement): Promise<void> {
  const urls: string[] = [];
  cleanup.push(() => urls.forEach((u) => URL.revokeObjectURL(u)));
  try {
    const t = await call<{ tickets: TicketJson[] }>(`/orders/${encodeURIComponent(orderId)}/tickets`);
    const valid = t.tickets.filter((x) => x.status === "valid" && x.qr_svg);
    if (!valid.length) {
      box.innerHTML = `<p class="muted">This order has no valid tickets (refunded or transferred).</p>`;
      return;
    }
    box.innerHTML = `<h2>Your tickets</h2>
      <p class="muted small">Show a code at the gate: each lets one person in, once. Gates check it even without a network.</p>
      <ul class="ticketlist">${valid
        .map(
          (x) => `<li class="ticket" data-ticket="${esc(x.ticket_id)}"><img alt="Ticket code for seat ${esc(x.seat_id)}" width="200" height="200">
            <div><strong>${esc(x.seat_id)}</strong><br><span class="muted small">${esc(x.holder)} · ${esc(x.ticket_id.slice(0, 8))}</span></div></li>`,
        )
        .join("")}</ul>
      <p><button id="pdf" class="primary">Download tickets (PDF)</button></p>`;
    await Promise.all(
      valid.map(async (x) => {
        const url = URL.createObjectURL(await fetchBlob(x.qr_svg!));
        urls.push(url);
        const img = box.querySelector<HTMLImageElement>(`[data-ticket="${x.ticket_id}"] img`)!;
        await new Promise<void>((resolve) => {
          img.onload = img.onerror = () => resolve();
          img.src = url;
        });
      }),
    );
    $("#pdf").addEventListener("click", async () => {
      try {
        const url = URL.createObjectURL(await fetchBlob(`/orders/${encodeURIComponent(orderId)}/tickets.pdf`));
        const a = document.createElement("a");
        a.href = url;
        a.download = `tickets-${orderId}.pdf`;
        a.click();
        setTimeout(() => URL.revokeObjectURL(url), 10_000);
      } catch (e) {
        showError(box, e);
      }
    });
  } catch (e) {
    box.innerHTML = `<div class="alert">Your tickets could not be loaded: ${esc(explain(e))} Reload to try again.</div>`;
  }
}

// ---------------------------------------------------------------- start

window.addEventListener("hashchange", () => void route());
void route();
