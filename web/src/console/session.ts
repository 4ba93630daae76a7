// The console's session, kept in one module so it can switch to the shared sign-in
// (web/src/shared, issue 15) once that lands. Until then a duty manager's bearer token (JWT from
// dispatch's token issuer, `liandong tokens`) is pasted once, or handed over in the URL
// fragment (#token=...), and kept in this browser's localStorage.
const KEY = "liandong.console.token";

export function takeTokenFromFragment(): void {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) {
    localStorage.setItem(KEY, decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search + "#/overview");
  }
}

export function token(): string | null {
  return localStorage.getItem(KEY);
}

export function signIn(value: string): void {
  localStorage.setItem(KEY, value.trim());
}

export function signOut(): void {
  localStorage.removeItem(KEY);
}

/** Claims of the token, for display only (the server verifies it). */
export function claims(): { sub?: string; jurisdiction?: string[]; role?: string } {
  const t = token();
  if (!t) return {};
  try {
    const body = t.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(decodeURIComponent(escape(atob(body))));
  } catch {
    return {};
  }
}
