// The sign-in screen both apps show when nobody is signed in: the person id + password form,
// and/or the button to the OpenID Connect provider when the server has one (GET /v1/auth/methods).
import { useEffect, useState } from "preact/hooks";
import { setLang, t, useLang } from "./i18n";
import { finishOidc, signIn, signInMethods, startOidc, type SignInMethods } from "./session";

export function SignIn({ title, role }: { title: string; role?: string }) {
  const l = useLang();
  const [id, setId] = useState("");
  const [pw, setPw] = useState("");
  const [err, setErr] = useState("");
  const [busy, setBusy] = useState(false);
  const [methods, setMethods] = useState<SignInMethods | null>(null);
  // the console is the duty managers' app; the server picks the field role otherwise
  const app = role ? "console" : "field";
  useEffect(() => {
    void signInMethods().then(setMethods);
    // back from the provider: a successful exchange signs in and this screen goes away
    finishOidc().catch((x) => setErr(`${t("signInFailed")}: ${(x as Error).message}`));
  }, []);
  async function go(e: Event) {
    e.preventDefault();
    setBusy(true);
    setErr("");
    try {
      await signIn(id.trim(), pw, role);
    } catch (x) {
      setErr(`${t("signInFailed")}: ${(x as Error).message}`);
    } finally {
      setBusy(false);
    }
  }
  const oidc = methods?.oidc;
  const password = methods !== null && methods.password; // nothing flashes before it is known
  const providerName = oidc?.name || t("oidcDefaultName");
  return (
    <main class="signin">
      <h1>{title}</h1>
      {oidc && (
        <button type="button" class="primary oidc" onClick={() => startOidc(oidc.start, app)}>
          {t("oidcSignIn").replace("{name}", providerName)}
        </button>
      )}
      {oidc && password && <p class="hint">{t("orPassword")}</p>}
      {password && (
        <form onSubmit={go}>
          <label>
            {t("personId")}
            <input name="person_id" autocomplete="username" value={id} onInput={(e) => setId(e.currentTarget.value)} required />
          </label>
          <label>
            {t("password")}
            <input name="password" type="password" autocomplete="current-password" value={pw} onInput={(e) => setPw(e.currentTarget.value)} required />
          </label>
          <button type="submit" class={oidc ? "" : "primary"} disabled={busy}>{t("signIn")}</button>
        </form>
      )}
      {err && <p class="error" role="alert">{err}</p>}
      <button class="link" onClick={() => setLang(l === "zh" ? "en" : "zh")}>{t("language")}</button>
    </main>
  );
}
