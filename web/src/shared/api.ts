// The API client both apps use: bearer token, one refresh-and-retry on 401, errors with the
// server's reason and status.
import { accessToken } from "./session";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly detail: unknown,
  ) {
    super(ApiError.text(status, detail));
  }

  static text(status: number, detail: unknown): string {
    if (typeof detail === "string") return detail;
    if (detail && typeof detail === "object") {
      const d = detail as Record<string, unknown>;
      if (typeof d.reason === "string") return d.reason;
      if (Array.isArray(detail))
        return detail.map((x) => (x as { msg?: string }).msg ?? JSON.stringify(x)).join("; ");
    }
    return `HTTP ${status}`;
  }
}

/** Thrown when the request never reached the server (offline, DNS, connection refused). */
export class NetworkError extends Error {}

export async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const token = await accessToken(attempt > 0);
    const headers = new Headers(init.headers);
    if (token) headers.set("authorization", `Bearer ${token}`);
    if (init.body && !headers.has("content-type")) headers.set("content-type", "application/json");
    let r: Response;
    try {
      r = await fetch(path, { ...init, headers });
    } catch (e) {
      throw new NetworkError(String(e));
    }
    if (r.status === 401 && attempt === 0 && token) continue;
    if (!r.ok) {
      const body = await r.json().catch(() => ({}));
      throw new ApiError(r.status, (body as { detail?: unknown }).detail ?? body);
    }
    return (r.status === 204 ? undefined : await r.json()) as T;
  }
}

export function post<T>(path: string, body: unknown): Promise<T> {
  return api<T>(path, { method: "POST", body: JSON.stringify(body) });
}

/** A raw request with the bearer token (one refresh-and-retry on 401), for byte uploads. */
export async function authFetch(path: string, init: RequestInit = {}): Promise<Response> {
  for (let attempt = 0; ; attempt++) {
    const token = await accessToken(attempt > 0);
    const headers = new Headers(init.headers);
    if (token) headers.set("authorization", `Bearer ${token}`);
    let r: Response;
    try {
      r = await fetch(path, { ...init, headers });
    } catch (e) {
      throw new NetworkError(String(e));
    }
    if (r.status === 401 && attempt === 0 && token) continue;
    return r;
  }
}

export async function failure(r: Response): Promise<ApiError> {
  const body = await r.json().catch(() => ({}));
  return new ApiError(r.status, (body as { detail?: unknown }).detail ?? body);
}
