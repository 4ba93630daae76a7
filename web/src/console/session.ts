// The console's session is the shared sign-in (web/src/shared/session.ts): a duty manager signs
// in with their roster id and password for the DUTY_MANAGER role; access tokens are refreshed
// before they run out, sign-out revokes the refresh token.
import { accessToken, current, onSessionChange, signOut } from "../shared/session";

export const ROLE = "DUTY_MANAGER";
export { accessToken, onSessionChange, signOut };

export function signedIn(): boolean {
  return current() !== null;
}

/** Who is signed in, for display (the server scopes every answer by the token itself). */
export function who(): { person_id?: string; name?: string; jurisdiction?: string[] } {
  return current()?.person ?? {};
}
