// The gate scanner: reads a ticket's QR code with the camera (BarcodeDetector), or a payload
// typed or sent by a keyboard-wedge scanner, and shows the verdict large and in colour.
//
// Online, the API decides (POST /events/{id}/checkins): each ticket is admitted once however
// many gates scan it. Offline (no answer from the server), the page decides alone with the
// check-in kit (GET /events/{id}/checkin-kit: the Ed25519 public keys by key id and the revoked
// tickets, and the tickets let in anywhere when it was made): the signature, the event, the
// revocation list, the kit's admissions and the tickets this gate has let in since. The kit is
// fetched again every 30 s while the server answers. Offline scans are kept and uploaded when the server answers again
// (POST /events/{id}/checkins/batch), whose answer names the tickets let in twice.

export {};

const KEYS = { token: "seatalloc.gate.token", eventId: "seatalloc.gate.event", kit: "seatalloc.gate.kit", pending: "seatalloc.gate.pending", seen: "seatalloc.gate.seen" };

interface Kit {
  event_id: string;
  keys: { kid: string; alg: string; public_key: string }[];
  revoked: string[];
  /** Tickets let in (at any gate) when the kit was made. */
  admitted?: { ticket_id: string; gate: string; at: string }[];
}
interface PendingScan {
  payload: string;
  gate: string;
  scanned_at: string;
}
type Shown = { verdict: string; text: string; detail?: string };

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const store = {
  get<T>(key: string, fallback: T): T {
    try {
      const raw = localStorage.getItem(key);
      return raw === null ? fallback : (JSON.parse(raw) as T);
    } catch {
      return fallback;
    }
  },
  set(key: string, value: unknown): void {
    localStorage.setItem(key, JSON.stringify(value));
  },
};

function gateOf(token: string): string {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return String(JSON.parse(atob(part)).sub ?? "gate");
  } catch {
    return "gate";
  }
}

function unb64url(text: string): Uint8Array<ArrayBuffer> {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4);
  const raw = atob(b64);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

let token = store.get<string>(KEYS.token, "");
let eventId = store.get<string>(KEYS.eventId, "");

async function api(path: string, method = "GET", body?: unknown): Promise<{ status: number; json: any } | null> {
  try {
    const response = await fetch(path, {
      method,
      headers: { Accept: "application/json", Authorization: `Bearer ${token}`, ...(body ? { "Content-Type": "application/json" } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    let json: any = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    return { status: response.status, json };
  } catch {
    return null; // no answer: offline
  }
}

function show(s: Shown): void {
  const box = $("verdict");
  box.className = `verdict verdict-${s.verdict}`;
  box.textContent = s.text;
  if (s.detail) {
    const small = document.createElement("small");
    small.textContent = s.detail;
    box.append(document.createElement("br"), small);
  }
}

function online(v: any): Shown {
  switch (v.verdict) {
    case "admitted":
      return { verdict: "admitted", text: "ADMIT", detail: `seat ${v.seat_id} · ${v.holder}` };
    case "already_used":
      return { verdict: "already_used", text: "ALREADY USED", detail: `at ${v.first?.gate}, ${new Date(v.first?.at).toLocaleTimeString()}` };
    case "revoked":
      return { verdict: "revoked", text: "REVOKED", detail: v.reason };
    case "wrong_event":
      return { verdict: "wrong_event", text: "WRONG EVENT", detail: v.ticket_event };
    default:
      return { verdict: "invalid", text: "INVALID", detail: v.reason };
  }
}

function pendingCount(): void {
  const n = store.get<PendingScan[]>(KEYS.pending, []).length;
  $("gate-pending").textContent = n ? `${n} offline scan(s) to upload` : "";
}

async function refreshKit(): Promise<void> {
  const answer = await api(`/events/${encodeURIComponent(eventId)}/checkin-kit`);
  if (answer?.status === 200) {
    store.set(KEYS.kit, answer.json);
    $("gate-status").textContent = `online · kit ${answer.json.keys.length} key(s), ${answer.json.revoked.length} revoked, ${answer.json.admitted?.length ?? 0} in`;
  } else if (answer) {
    $("gate-status").textContent = `kit refused: ${answer.json?.error?.message ?? answer.status}`;
  } else {
    $("gate-status").textContent = "offline · using the stored kit";
  }
}

/** The offline verdict, from the kit and this gate's own admissions. */
async function decideOffline(payload: string): Promise<Shown> {
  const kit = store.get<Kit | null>(KEYS.kit, null);
  if (!kit) return { verdict: "invalid", text: "NO KIT", detail: "download the kit while online" };
  const [message, signature] = payload.split(".");
  if (!message || !signature) return { verdict: "invalid", text: "INVALID", detail: "malformed" };
  let fields: string[];
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = unb64url(message);
    fields = new TextDecoder("utf-8", { fatal: true }).decode(bytes).split("|");
  } catch {
    return { verdict: "invalid", text: "INVALID", detail: "malformed" };
  }
  if (fields.length !== 6 || fields[0] !== "st1") return { verdict: "invalid", text: "INVALID", detail: "malformed" };
  const [, ticket, ticketEvent, seat, holder, kid] = fields;
  const key = kit.keys.find((k) => k.kid === kid);
  if (!key) return { verdict: "invalid", text: "INVALID", detail: "unknown key" };
  try {
    const publicKey = await crypto.subtle.importKey("raw", unb64url(key.public_key), { name: "Ed25519" }, false, ["verify"]);
    const ok = await crypto.subtle.verify({ name: "Ed25519" }, publicKey, unb64url(signature), bytes);
    if (!ok) return { verdict: "invalid", text: "INVALID", detail: "bad signature" };
  } catch {
    return { verdict: "already_used", text: "CANNOT VERIFY", detail: "this browser has no Ed25519: check the ticket by hand" };
  }
  if (ticketEvent !== eventId) return { verdict: "wrong_event", text: "WRONG EVENT", detail: ticketEvent };
  if (kit.revoked.includes(ticket)) return { verdict: "revoked", text: "REVOKED", detail: "offline kit" };
  const before = kit.admitted?.find((a) => a.ticket_id === ticket);
  if (before) return { verdict: "already_used", text: "ALREADY USED", detail: `at ${before.gate}, ${new Date(before.at).toLocaleTimeString()} (kit)` };
  const seen = store.get<Record<string, string>>(KEYS.seen, {});
  if (seen[ticket]) return { verdict: "already_used", text: "ALREADY USED", detail: `here, ${new Date(seen[ticket]).toLocaleTimeString()}` };
  const now = new Date().toISOString();
  seen[ticket] = now;
  store.set(KEYS.seen, seen);
  const pending = store.get<PendingScan[]>(KEYS.pending, []);
  pending.push({ payload, gate: gateOf(token), scanned_at: now });
  store.set(KEYS.pending, pending);
  pendingCount();
  return { verdict: "admitted", text: "ADMIT", detail: `seat ${seat} · ${holder} (offline)` };
}

async function check(payload: string): Promise<void> {
  payload = payload.trim();
  if (!payload) return;
  const answer = await api(`/events/${encodeURIComponent(eventId)}/checkins`, "POST", { payload });
  if (answer?.status === 200) {
    show(online(answer.json));
    void upload();
  } else if (answer && answer.status !== 503 && answer.status !== 429) {
    show({ verdict: "invalid", text: "ERROR", detail: answer.json?.error?.message ?? String(answer.status) });
  } else {
    $("gate-status").textContent = "offline · deciding with the kit";
    show(await decideOffline(payload));
  }
}

let uploading = false;
async function upload(): Promise<void> {
  const pending = store.get<PendingScan[]>(KEYS.pending, []);
  if (uploading || pending.length === 0) return;
  uploading = true;
  try {
    const answer = await api(`/events/${encodeURIComponent(eventId)}/checkins/batch`, "POST", { scans: pending });
    if (!answer || answer.status >= 500 || answer.status === 429) return;
    // 200, or 422 with the good lines recorded: either way these scans are the server's now.
    const report = answer.status === 200 ? answer.json : answer.json?.error?.details;
    store.set(KEYS.pending, store.get<PendingScan[]>(KEYS.pending, []).slice(pending.length));
    const list = $("gate-doubles");
    for (const d of report?.doubles ?? []) {
      const li = document.createElement("li");
      li.textContent = `Let in twice: seat ${d.seat_id} — ${d.admissions.map((a: any) => `${a.gate} ${new Date(a.at).toLocaleTimeString()}`).join(", ")}`;
      list.append(li);
    }
    pendingCount();
  } finally {
    uploading = false;
  }
}

async function camera(): Promise<void> {
  const Detector = (window as any).BarcodeDetector;
  if (!Detector || !navigator.mediaDevices?.getUserMedia) return; // typed or wedge-scanned payloads only
  let stream: MediaStream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
  } catch {
    return;
  }
  const video = $<HTMLVideoElement>("gate-video");
  video.srcObject = stream;
  await video.play();
  // Shown only once there is a picture: without a camera the page is a typed-payload scanner.
  video.hidden = false;
  const detector = new Detector({ formats: ["qr_code"] });
  let last = "";
  let lastAt = 0;
  const tick = async () => {
    try {
      const codes = await detector.detect(video);
      const value: string | undefined = codes[0]?.rawValue;
      // The same code held in front of the camera is one scan, not one a frame.
      if (value && (value !== last || Date.now() - lastAt > 3000)) {
        last = value;
        lastAt = Date.now();
        await check(value);
      }
    } catch {
      // a frame that could not be read
    }
    setTimeout(tick, 150);
  };
  void tick();
}

function start(): void {
  $("gate-setup").hidden = true;
  $("gate-scan").hidden = false;
  pendingCount();
  void refreshKit();
  void camera();
  window.addEventListener("online", () => void upload());
  setInterval(() => void upload(), 15_000);
  setInterval(() => void refreshKit(), 30_000);
}

$<HTMLFormElement>("gate-setup").addEventListener("submit", (e) => {
  e.preventDefault();
  token = $<HTMLInputElement>("gate-token").value.trim();
  eventId = $<HTMLInputElement>("gate-event").value.trim();
  store.set(KEYS.token, token);
  store.set(KEYS.eventId, eventId);
  start();
});
$<HTMLFormElement>("gate-manual").addEventListener("submit", (e) => {
  e.preventDefault();
  const input = $<HTMLInputElement>("gate-payload");
  void check(input.value);
  input.value = "";
  input.focus();
});
$("gate-kit").addEventListener("click", () => void refreshKit());
$("gate-upload").addEventListener("click", () => void upload());
if (token && eventId) {
  $<HTMLInputElement>("gate-token").value = token;
  $<HTMLInputElement>("gate-event").value = eventId;
  start();
}
