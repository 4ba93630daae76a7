// The sign-in form both apps show when nobody is signed in.
import { useState } from "preact/hooks";
import { setLang, t, useLang } from "./i18n";
import { signIn } from "./session";

export function SignIn({ title, role }: { title: string; role?: string }) {
  const l = useLang();
  const [id, setId] = useState("");
  const [pw, setPw] = useState("");
  const [err, setErr] = useState("");
  const [busy, setBusy] = useState(false);
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
  return (
    <main class="signin">
      <h1>{title}</h1>
      <form onSubmit={go}>
        <label>
          {t("personId")}
          <input name="person_id" autocomplete="username" value={id} onInput={(e) => setId(e.currentTarget.value)} required />
        </label>
        <label>
          {t("password")}
          <input name="password" type="password" autocomplete="current-password" value={pw} onInput={(e) => setPw(e.currentTarget.value)} required />
        </label>
        {err && <p class="error" role="alert">{err}</p>}
        <button type="submit" class="primary" disabled={busy}>{t("signIn")}</button>
      </form>
      <button class="link" onClick={() => setLang(l === "zh" ? "en" : "zh")}>{t("language")}</button>
    </main>
  );
}
