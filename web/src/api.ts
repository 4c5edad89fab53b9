// The gateway's API as the page uses it: every failure becomes an ApiError carrying the API's
// own error body (code, message, details) and Retry-After, so the page can always say what
// happened instead of going blank.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: any = null,
    readonly retryAfter: number | null = null,
  ) {
    super(message);
  }
  /** The request never got an answer (network down, connection reset). */
  get network(): boolean {
    return this.status === 0;
  }
}

const TOKEN = "seatalloc.token";
const USER = "seatalloc.user";

export const auth = {
  get token(): string | null {
    return localStorage.getItem(TOKEN);
  },
  get user(): string | null {
    return localStorage.getItem(USER);
  },
  set(token: string, user: string): void {
    localStorage.setItem(TOKEN, token);
    localStorage.setItem(USER, user);
  },
  clear(): void {
    localStorage.removeItem(TOKEN);
    localStorage.removeItem(USER);
  },
};

/** The `sub` of a JWT (the user id the API expects in `user_id`), without verifying it. */
export function subjectOf(token: string): string | null {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part)).sub ?? null;
  } catch {
    return null;
  }
}

export interface CallOptions {
  method?: string;
  body?: unknown;
  headers?: Record<string, string>;
  auth?: boolean;
}

export async function call<T = any>(path: string, opts: CallOptions = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json", ...(opts.headers ?? {}) };
  if (opts.body !== undefined) headers["Content-Type"] = "application/json";
  if (opts.auth !== false && auth.token) headers["Authorization"] = `Bearer ${auth.token}`;
  let response: Response;
  try {
    response = await fetch(path, {
      method: opts.method ?? "GET",
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    });
  } catch {
    throw new ApiError(0, "network", "The connection to the server was lost.");
  }
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  let json: any = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!response.ok) {
    const retry = Number(response.headers.get("Retry-After"));
    const e = json?.error;
    throw new ApiError(
      response.status,
      e?.code ?? `http_${response.status}`,
      e?.message ?? `The server answered ${response.status}.`,
      e?.details ?? null,
      Number.isFinite(retry) && retry > 0 ? retry : null,
    );
  }
  // 202 and 200 both carry JSON; the status is kept for callers that need it.
  if (json && typeof json === "object") Object.defineProperty(json, "__status", { value: response.status });
  return json as T;
}

/** A private file of the API (a ticket's QR code, an order's PDF), as a blob the page can show
 * or save: these answers need the buyer's token, so a plain `<img src>` cannot load them. */
export async function fetchBlob(path: string): Promise<Blob> {
  let response: Response;
  try {
    response = await fetch(path, { headers: auth.token ? { Authorization: `Bearer ${auth.token}` } : {} });
  } catch {
    throw new ApiError(0, "network", "The connection to the server was lost.");
  }
  if (!response.ok) throw new ApiError(response.status, `http_${response.status}`, `The server answered ${response.status}.`);
  return response.blob();
}

/** A message a buyer understands for any failure, from the API's own error body. */
export function explain(e: unknown): string {
  if (!(e instanceof ApiError)) return `Something went wrong: ${String(e)}`;
  switch (e.status) {
    case 0:
      return "The connection to the server was lost. Check your connection and try again.";
    case 401:
      return `Please sign in again (${e.message}).`;
    case 409:
      if (e.code === "seats_unavailable") return `Sorry, someone else just took ${seatList(e.details)}. Choose other seats.`;
      return e.message;
    case 402:
      return `Your card was declined: ${e.message}`;
    case 410:
      return `Your hold expired: ${e.message}`;
    case 429:
      return `Too many requests right now; wait ${e.retryAfter ?? 1} s and try again. (${e.message})`;
    case 503:
      return `The service is busy; try again in ${e.retryAfter ?? 1} s. (${e.message})`;
    default:
      return e.message;
  }
}

function seatList(details: any): string {
  const seats: string[] = (details?.unavailable ?? []).map((u: any) => u.seat_id);
  return seats.length ? seats.join(", ") : "a seat you chose";
}

export function uuid(): string {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function money(amount: number, currency: string): string {
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(amount);
  } catch {
    return `${amount.toFixed(2)} ${currency}`;
  }
}
