// A real OpenID Connect provider for the OIDC sign-in tests: panva's oidc-provider (OpenID
// certified), with a login page that knows a few test users and a consent page, both plain HTML
// forms so that httpx and a real browser can drive them. Tests only; never deployed.
//
// node provider.mjs PORT CONFIG_JSON
//   CONFIG_JSON: {"clients": [{client_id, client_secret?, redirect_uris}],
//                 "users": {login: {password, sub?, name?}}}
// Prints "ready <issuer>" on stdout when it listens.
import crypto from "node:crypto";
import http from "node:http";
import Provider from "oidc-provider";

const port = Number(process.argv[2]);
const config = JSON.parse(process.argv[3]);
const issuer = `http://127.0.0.1:${port}`;
const users = config.users;

// keys made at start: nothing secret is kept in the repository
const signing = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
const jwk = { ...signing.export({ format: "jwk" }), kid: crypto.randomUUID(), use: "sig" };

function accountFor(login) {
  const user = users[login];
  return user ? { login, sub: user.sub ?? login, name: user.name ?? login } : null;
}

const provider = new Provider(issuer, {
  clients: config.clients.map((c) => ({
    client_id: c.client_id,
    ...(c.client_secret
      ? { client_secret: c.client_secret, token_endpoint_auth_method: "client_secret_basic" }
      : { token_endpoint_auth_method: "none" }),
    redirect_uris: c.redirect_uris,
    grant_types: ["authorization_code"],
    response_types: ["code"],
  })),
  jwks: { keys: [jwk] },
  cookies: { keys: [crypto.randomBytes(32).toString("hex")] },
  // PKCE for every client, confidential ones too (oidc-provider allows only S256)
  pkce: { required: () => true },
  features: { devInteractions: { enabled: false } },
  claims: { openid: ["sub"], profile: ["name", "preferred_username"] },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, sub) {
    const login = Object.keys(users).find((l) => (users[l].sub ?? l) === sub);
    const account = login && accountFor(login);
    if (!account) return undefined;
    return {
      accountId: sub,
      async claims() {
        return { sub, name: account.name, preferred_username: account.login };
      },
    };
  },
});

const page = (title, body) => `<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>${title}</title></head>
<body><h1>${title}</h1>${body}</body></html>`;

const escape = (s) => String(s).replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(uid, error) {
  return page(
    "测试身份认证 / Test identity provider",
    `${error ? `<p role="alert">${escape(error)}</p>` : ""}
<form method="post" action="/interaction/${uid}/login">
<label>用户名 / Username <input name="login" autocomplete="username"></label>
<label>密码 / Password <input name="password" type="password" autocomplete="current-password"></label>
<button type="submit">登录 / Sign in</button></form>`,
  );
}

function consentPage(uid, clientId) {
  return page(
    "授权 / Authorize",
    `<p>${escape(clientId)} 请求读取你的身份 / asks for your identity.</p>
<form method="post" action="/interaction/${uid}/confirm"><button type="submit">同意 / Allow</button></form>`,
  );
}

async function formBody(req) {
  let raw = "";
  for await (const chunk of req) raw += chunk;
  return Object.fromEntries(new URLSearchParams(raw));
}

function send(res, status, html) {
  res.writeHead(status, { "content-type": "text/html; charset=utf-8" });
  res.end(html);
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return send(res, 400, page("error", "interaction mismatch"));
  if (req.method === "GET") {
    if (details.prompt.name === "login") return send(res, 200, loginPage(uid));
    return send(res, 200, consentPage(uid, details.params.client_id));
  }
  if (action === "login") {
    const form = await formBody(req);
    const user = users[form.login];
    if (!user || user.password !== form.password) {
      return send(res, 200, loginPage(uid, "用户名或密码错误 / wrong username or password"));
    }
    const result = { login: { accountId: accountFor(form.login).sub } };
    return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
  }
  if (action === "confirm") {
    const { prompt, params, session } = details;
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const missing = prompt.details.missingOIDCScope;
    if (missing) grant.addOIDCScope(missing.join(" "));
    if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    const grantId = await grant.save();
    return provider.interactionFinished(
      req,
      res,
      { consent: { grantId } },
      { mergeWithLastSubmission: true },
    );
  }
  return send(res, 404, page("error", "unknown interaction step"));
}

const handle = provider.callback();
http
  .createServer((req, res) => {
    const m = /^\/interaction\/([\w-]+)(?:\/(login|confirm))?$/.exec(req.url.split("?")[0]);
    if (!m) return handle(req, res);
    interaction(req, res, m[1], m[2]).catch((e) => {
      send(res, 400, page("error", escape(e.message)));
    });
  })
  .listen(port, "127.0.0.1", () => console.log(`ready ${issuer}`));
