// The last answer of each GET, so an officer offline still sees their tasks after a reload.
const PREFIX = "liandong.cache:";

export function remember(path: string, value: unknown): void {
  try {
    localStorage.setItem(PREFIX + path, JSON.stringify(value));
  } catch {
    /* storage full: the cache is a convenience */
  }
}

export function cached<T>(path: string): T | null {
  const raw = localStorage.getItem(PREFIX + path);
  return raw ? (JSON.parse(raw) as T) : null;
}

export function forget(): void {
  for (const k of Object.keys(localStorage)) if (k.startsWith(PREFIX)) localStorage.removeItem(k);
}
