// Sign-in for both apps: short-lived access tokens kept in memory and storage, a refresh token
// exchanged (and rotated) before they run out, sign-out revokes the refresh token.
export type Person = {
  person_id: string;
  name: string;
  role: string;
  jurisdiction: string[];
};

export type Session = {
  access_token: string;
  refresh_token: string;
  expires_at: number; // ms since epoch
  person: Person;
};

type TokenAnswer = {
  access_token: string;
  refresh_token: string;
  expires_in: number;
  person: Person;
};

const KEY = "liandong.session";
let session: Session | null = load();
let refreshing: Promise<Session | null> | null = null;
const listeners = new Set<() => void>();

function load(): Session | null {
  try {
    const raw = localStorage.getItem(KEY);
    return raw ? (JSON.parse(raw) as Session) : null;
  } catch {
    return null;
  }
}

function store(s: Session | null): void {
  session = s;
  if (s) localStorage.setItem(KEY, JSON.stringify(s));
  else localStorage.removeItem(KEY);
  listeners.forEach((f) => f());
}

function fromAnswer(a: TokenAnswer): Session {
  return {
    access_token: a.access_token,
    refresh_token: a.refresh_token,
    expires_at: Date.now() + a.expires_in * 1000,
    person: a.person,
  };
}

export function current(): Session | null {
  return session;
}

export function onSessionChange(f: () => void): () => void {
  listeners.add(f);
  return () => void listeners.delete(f);
}

export class SignInError extends Error {}

/** `role`: one of the person's roster roles (the console asks for DUTY_MANAGER); none: the
 * server picks (field roles first). */
export async function signIn(personId: string, password: string, role?: string): Promise<Session> {
  const r = await fetch("/v1/auth/token", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(role ? { person_id: personId, password, role } : { person_id: personId, password }),
  });
  if (!r.ok) {
    const body = await r.json().catch(() => ({}));
    throw new SignInError(typeof body.detail === "string" ? body.detail : `HTTP ${r.status}`);
  }
  const s = fromAnswer((await r.json()) as TokenAnswer);
  store(s);
  return s;
}

export type SignInMethods = {
  password: boolean;
  oidc: { name: string; start: string } | null;
};

/** How this server signs people in (password form, an OpenID Connect provider, or both). */
export async function signInMethods(): Promise<SignInMethods> {
  try {
    const r = await fetch("/v1/auth/methods");
    if (r.ok) return (await r.json()) as SignInMethods;
  } catch {
    // offline: show the password form, which says why it fails when sent
  }
  return { password: true, oidc: null };
}

/** To the OpenID Connect provider; it sends the browser back to `app` with a one-time code. */
export function startOidc(start: string, app: "field" | "console"): void {
  location.assign(`${start}?app=${app}`);
}

const HANDOFF = /^#oidc=([\w-]+)$/;

/** After an OpenID Connect sign-in the page opens with `#oidc=<one-time code>`: the code is
 * exchanged (by POST, so no token is ever in a URL) for the same pair a password gives. */
export async function finishOidc(): Promise<Session | null> {
  const m = HANDOFF.exec(location.hash);
  if (!m) return null;
  // the code works once: off the address bar and history before anything else
  history.replaceState(null, "", location.pathname + location.search);
  const r = await fetch("/v1/auth/oidc/exchange", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ code: m[1] }),
  });
  if (!r.ok) {
    const body = await r.json().catch(() => ({}));
    throw new SignInError(typeof body.detail === "string" ? body.detail : `HTTP ${r.status}`);
  }
  const s = fromAnswer((await r.json()) as TokenAnswer);
  store(s);
  return s;
}

async function refresh(): Promise<Session | null> {
  const s = session;
  if (!s) return null;
  try {
    const r = await fetch("/v1/auth/refresh", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ refresh_token: s.refresh_token }),
    });
    if (r.status === 401 || r.status === 403) {
      store(null); // revoked or expired: sign in again
      return null;
    }
    if (!r.ok) return s; // server trouble: keep the session, try later
    const next = fromAnswer((await r.json()) as TokenAnswer);
    store(next);
    return next;
  } catch {
    return s; // offline: keep what we have
  }
}

/** A usable access token, refreshed when it is within a minute of running out. */
export async function accessToken(force = false): Promise<string | null> {
  if (!session) return null;
  if (force || session.expires_at - Date.now() < 60_000) {
    refreshing ??= refresh().finally(() => (refreshing = null));
    const s = await refreshing;
    return s ? s.access_token : null;
  }
  return session.access_token;
}

export async function signOut(): Promise<void> {
  const s = session;
  store(null);
  if (s) {
    await fetch("/v1/auth/revoke", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ refresh_token: s.refresh_token }),
    }).catch(() => undefined);
  }
}
