// OpenID provider for Roster's integration tests, standing in for Entra ID and Google sign-in.
// oidc-provider (OpenID-certified) does the protocol; this file only adds what a test needs:
// accounts posted at runtime, a plain login form instead of the dev interactions, and
// Entra/Google-shaped claims in the ID token.
//
// One process serves two providers on one port:
//   root   issuer http://127.0.0.1:PORT                (Google-shaped; discovery at
//          /.well-known/openid-configuration)
//   entra  issuer http://127.0.0.1:PORT/{TENANT}/v2.0  (Entra-shaped; Roster's authority is
//          http://127.0.0.1:PORT, so discovery is {authority}/{TENANT}/v2.0/.well-known/openid-configuration)
// Every path under /{TENANT}/v2.0 goes to the entra provider (the prefix is stripped from
// req.url and kept in req.originalUrl, which is how oidc-provider computes its mount path), all
// other paths to the root one. The two share nothing but the login form's code: separate
// signing keys, accounts, storage (entra has its own in-memory adapter; root keeps
// oidc-provider's default one) and cookie names (entra's are _entra_session, path
// /{TENANT}/v2.0, and _entra_interaction / _entra_interaction_resume), so a session at one is
// never a session at the other.
//
// Entra shape: ID tokens carry tid (TENANT unless the account's claims set another), and with
// the profile scope oid, name, preferred_username, with the email scope email; sub is whatever
// the account says (make it differ from oid, as at Entra). The token endpoint takes
// private_key_jwt (RS256 or PS256 assertions; aud may be the token endpoint URL or the issuer;
// extra header members such as x5t#S256 are ignored; a registered JWK with an alg member only
// matches assertions of that alg, and one with a kid only assertions carrying that kid),
// client_secret_basic and client_secret_post. Its JWKS keys carry no alg and an issuer member,
// as Entra's do. Both providers require PKCE with S256.
//
// Env: OIDC_PORT (default 0 = any free port); OIDC_ENTRA_TENANT (default
// 7d3c1f0e-5b2a-4c9d-8e6f-0a1b2c3d4e5f; letters, digits, '.', '_', '-');
// OIDC_CLIENTS / OIDC_ENTRA_CLIENTS (JSON arrays of static client metadata for root / entra);
// OIDC_ACCOUNTS (JSON array of accounts, same shape as POST /__test/accounts, each going to
// the provider its "provider" member names).
// Prints ISSUER=http://127.0.0.1:PORT, ENTRA_TENANT=..., ENTRA_ISSUER=http://127.0.0.1:PORT/{TENANT}/v2.0
// and READY on stdout once listening.
//
// Test endpoints (JSON in, JSON out; 400 {error} on a bad body, 405 on another method):
//   POST /__test/accounts  {sub, login, password, claims?: {...}, provider?: "root"|"entra"}
//        -> 201 {sub, provider}. provider defaults to "root". A login names one account per
//        provider: posting it again under a new sub replaces the old account.
//   POST /__test/entra/accounts  same body, provider implied ("root" there is a 400).
// Clients: dynamic registration (RFC 7591) at /reg (root) and /{TENANT}/v2.0/reg (entra), open to
// anyone. A string client_id in the body is used as the client's id (Roster's profiles hold a
// fixed id the admin typed); without one an id is generated. Registering an id again replaces
// that client. Answers 201 with the client's metadata (and client_secret when the auth method
// needs one).
//
// The sign-in flow (entra shown; root is the same without the /{TENANT}/v2.0 prefix):
//   GET  /{T}/v2.0/auth?client_id&redirect_uri&response_type=code&scope&state&nonce
//        &code_challenge&code_challenge_method=S256[&login_hint]
//        -> 303 Location /{T}/v2.0/interaction/{uid}  (relative); sets _entra_interaction
//           (path /{T}/v2.0/interaction/{uid}) and _entra_interaction_resume (path
//           /{T}/v2.0/auth/{uid}), each with .sig and .legacy twins
//   GET  /{T}/v2.0/interaction/{uid} -> 200 text/html form, method post,
//        action /{T}/v2.0/interaction/{uid}/login, fields "login" (prefilled from login_hint) and
//        "password"
//   POST /{T}/v2.0/interaction/{uid}/login (application/x-www-form-urlencoded login, password)
//        -> 303 Location http://127.0.0.1:PORT/{T}/v2.0/auth/{uid}; a wrong password -> 200 form
//           again with role="alert" "Invalid login or password."
//   GET  /{T}/v2.0/auth/{uid} -> 303 Location {redirect_uri}?code=...&state=...&iss=...; sets
//        _entra_session (path /{T}/v2.0); clears the interaction cookies
//   A later authorize with that session and its grant skips the form: 303 straight to the
//   redirect_uri. When consent is missing (new scopes, or the grant was revoked because a code
//   was redeemed twice) it goes authorize -> 303 interaction -> 303 /auth/{uid} -> 303
//   redirect_uri, the interaction granting consent by itself.
//   POST /{T}/v2.0/token (form: grant_type=authorization_code, code, redirect_uri, code_verifier,
//        client_id, client_assertion_type, client_assertion) -> 200 {access_token, id_token, ...};
//        400 invalid_grant for a reused code (which also revokes its grant), a missing or wrong
//        code_verifier (the code is not consumed by that refusal) or a wrong redirect_uri;
//        401 invalid_client for a bad assertion.
//   Cookies are host-only (127.0.0.1, any port), httpOnly, never Secure; the _session ones are
//   SameSite=None (hence the .legacy twins without SameSite), the interaction ones Lax.
import crypto from 'node:crypto';
import http from 'node:http';
import { Provider, interactionPolicy } from 'oidc-provider';

const TENANT = process.env.OIDC_ENTRA_TENANT || '7d3c1f0e-5b2a-4c9d-8e6f-0a1b2c3d4e5f';
if (!/^[A-Za-z0-9._-]+$/.test(TENANT)) throw new Error(`OIDC_ENTRA_TENANT is not path-safe: ${TENANT}`);

// One provider's accounts: sub -> { sub, login, password, claims }
class Accounts {
  #bySub = new Map();

  put(a) {
    if (![a?.sub, a?.login, a?.password].every((v) => typeof v === 'string' && v)) {
      throw new Error('an account needs string sub, login and password');
    }
    if (a.claims !== undefined && (typeof a.claims !== 'object' || a.claims === null || Array.isArray(a.claims))) {
      throw new Error('claims must be an object');
    }
    // A login names one account: a re-post under a new sub replaces the old one.
    for (const [sub, old] of this.#bySub) if (old.login === a.login) this.#bySub.delete(sub);
    this.#bySub.set(a.sub, { sub: a.sub, login: a.login, password: a.password, claims: a.claims ?? {} });
  }

  get(sub) { return this.#bySub.get(sub); }

  byLogin(login) { return [...this.#bySub.values()].find((a) => a.login === login); }
}

function rsaSigningKey(alg) {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: crypto.randomUUID(), use: 'sig' };
  return alg ? { ...jwk, alg } : jwk;
}

// oidc-provider's own memory adapter keeps one store per process, which both providers would
// share (a client, code or session of one found by the other). The entra provider gets this one.
function memoryAdapter() {
  const store = new Map(); // key -> { value, exp (ms, 0 = never) }
  const get = (key) => {
    const e = store.get(key);
    if (e && e.exp && e.exp <= Date.now()) { store.delete(key); return undefined; }
    return e?.value;
  };
  const set = (key, value, expiresIn) => store.set(key, { value, exp: expiresIn ? Date.now() + expiresIn * 1000 : 0 });
  setInterval(() => { for (const k of store.keys()) get(k); }, 60_000).unref();
  const grantable = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest']);
  return class Adapter {
    constructor(model) { this.model = model; }

    key(id) { return `${this.model}:${id}`; }

    async upsert(id, payload, expiresIn) {
      if (this.model === 'Session') set(`sessionUid:${payload.uid}`, id, expiresIn);
      if (grantable.has(this.model) && payload.grantId) {
        const gk = `grant:${payload.grantId}`;
        set(gk, [...(get(gk) ?? []), this.key(id)], 0);
      }
      if (payload.userCode) set(`userCode:${payload.userCode}`, id, expiresIn);
      set(this.key(id), payload, expiresIn);
    }

    async find(id) { return get(this.key(id)); }

    async findByUid(uid) { const id = get(`sessionUid:${uid}`); return id && this.find(id); }

    async findByUserCode(code) { const id = get(`userCode:${code}`); return id && this.find(id); }

    async consume(id) { const p = get(this.key(id)); if (p) p.consumed = Math.floor(Date.now() / 1000); }

    async destroy(id) { store.delete(this.key(id)); }

    async revokeByGrantId(grantId) {
      const gk = `grant:${grantId}`;
      for (const k of get(gk) ?? []) store.delete(k);
      store.delete(gk);
    }
  };
}

// Google's sign-in sends prompt=select_account, which oidc-provider rejects unless a prompt of
// that name exists. The login form resolves it (it is Google's / Entra's account chooser here).
function policy() {
  const p = interactionPolicy.base();
  p.unshift(new interactionPolicy.Prompt({ name: 'select_account', requestable: true }));
  return p;
}

const server = http.createServer();
await new Promise((resolve) => server.listen(Number(process.env.OIDC_PORT || 0), '127.0.0.1', resolve));
const origin = `http://127.0.0.1:${server.address().port}`;

// Registration lets the test choose the client id.
const registration = {
  enabled: true,
  idFactory: (ctx) => {
    const id = ctx.oidc.body?.client_id;
    return typeof id === 'string' && id ? id : crypto.randomUUID();
  },
};

// A provider plus what the login form needs of it. prefix: its mount path ('' for root).
function site({ name, prefix, accounts, config, defaultClaims = {} }) {
  const provider = new Provider(origin + prefix, {
    cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
    pkce: { methods: ['S256'], required: () => true },
    // Put the scope's claims in the ID token too (Entra and Google do), not only at /me.
    conformIdTokenClaims: false,
    interactions: { policy: policy(), url: (ctx, interaction) => `${prefix}/interaction/${interaction.uid}` },
    async findAccount(ctx, sub) {
      const account = accounts.get(sub);
      if (!account) return undefined;
      return { accountId: sub, claims: async () => ({ ...defaultClaims, ...account.claims, sub }) };
    },
    ...config,
    features: {
      devInteractions: { enabled: false },
      registration, // RFC 7591: each test registers its own client
      claimsParameter: { enabled: true },
      ...config.features,
    },
  });
  return { name, prefix, accounts, provider, callback: provider.callback() };
}

const rootSite = site({
  name: 'root',
  prefix: '',
  accounts: new Accounts(),
  config: {
    clients: JSON.parse(process.env.OIDC_CLIENTS || '[]'),
    jwks: { keys: [rsaSigningKey('RS256')] },
    // Entra: oid, tid, preferred_username, name, email. Google: hd, email, email_verified, name.
    claims: {
      openid: ['sub', 'oid', 'tid', 'hd'],
      profile: ['name', 'given_name', 'family_name', 'preferred_username', 'picture'],
      email: ['email', 'email_verified'],
    },
  },
});

const entraPrefix = `/${TENANT}/v2.0`;
const entraKey = rsaSigningKey(); // no alg: Entra's JWKS keys have none
const entraSite = site({
  name: 'entra',
  prefix: entraPrefix,
  accounts: new Accounts(),
  defaultClaims: { tid: TENANT },
  config: {
    clients: JSON.parse(process.env.OIDC_ENTRA_CLIENTS || '[]'),
    adapter: memoryAdapter(),
    jwks: { keys: [entraKey] },
    cookies: {
      keys: [crypto.randomBytes(32).toString('hex')],
      names: { session: '_entra_session', interaction: '_entra_interaction', resume: '_entra_interaction_resume' },
      long: { httpOnly: true, sameSite: 'none', path: entraPrefix },
    },
    clientAuthMethods: ['private_key_jwt', 'client_secret_basic', 'client_secret_post'],
    enabledJWA: {
      clientAuthSigningAlgValues: ['RS256', 'PS256'],
      idTokenSigningAlgValues: ['RS256'],
    },
    // Entra v2: tid always; oid, name, preferred_username with profile; email with email.
    claims: {
      openid: ['sub', 'tid'],
      profile: ['oid', 'name', 'given_name', 'family_name', 'preferred_username'],
      email: ['email'],
    },
  },
});
const entraIssuer = entraSite.provider.issuer;

// Entra's key set: kty, use, kid, n, e and issuer; no alg.
const entraJwks = JSON.stringify({
  keys: [{ kty: 'RSA', use: 'sig', kid: entraKey.kid, n: entraKey.n, e: entraKey.e, issuer: entraIssuer }],
});

for (const a of JSON.parse(process.env.OIDC_ACCOUNTS || '[]')) siteNamed(a.provider).accounts.put(a);

function siteNamed(name = 'root') {
  if (name === 'root') return rootSite;
  if (name === 'entra') return entraSite;
  throw new Error('provider must be "root" or "entra"');
}

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
function loginPage(res, action, { login = '', error = '' } = {}) {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!doctype html>
<html><head><meta charset="utf-8"><title>Sign in - test OpenID provider</title></head>
<body><h1>Sign in</h1>
${error ? `<p class="error" role="alert">${esc(error)}</p>` : ''}
<form method="post" action="${esc(action)}">
<label>Login <input name="login" autocomplete="username" value="${esc(login)}" autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<button type="submit">Sign in</button>
</form></body></html>`);
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const c of req) {
    size += c.length;
    if (size > 1 << 20) throw new Error('body too large');
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}

// Grant everything the client asked for: consent is not what these tests exercise.
async function grantAll({ provider }, details, accountId) {
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId, clientId: details.params.client_id });
  if (details.params.scope) grant.addOIDCScope(details.params.scope);
  if (details.params.claims) {
    const claims = JSON.parse(details.params.claims);
    grant.addOIDCClaims([...Object.keys(claims.id_token ?? {}), ...Object.keys(claims.userinfo ?? {})]);
  }
  return grant.save();
}

async function interaction(s, req, res, uid, action) {
  const { provider } = s;
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new Error('interaction mismatch');
  const formAction = `${s.prefix}/interaction/${uid}/login`;
  if (req.method === 'GET' && !action) {
    // Already signed in (a session exists): only consent is missing, so give it.
    if (details.prompt.name === 'consent' && details.session?.accountId) {
      const grantId = await grantAll(s, details, details.session.accountId);
      return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    }
    return loginPage(res, formAction, { login: details.params.login_hint ?? '' });
  }
  if (req.method === 'POST' && action === 'login') {
    const form = new URLSearchParams(await readBody(req));
    const login = form.get('login') ?? '';
    const account = s.accounts.byLogin(login);
    if (!account || account.password !== form.get('password')) {
      return loginPage(res, formAction, { login, error: 'Invalid login or password.' });
    }
    const grantId = await grantAll(s, details, account.sub);
    return provider.interactionFinished(req, res, {
      select_account: {},
      login: { accountId: account.sub },
      consent: { grantId },
    }, { mergeWithLastSubmission: false });
  }
  res.writeHead(405).end();
}

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function postAccount(req, res, forced) {
  if (req.method !== 'POST') return json(res, 405, { error: 'POST only' });
  try {
    const account = JSON.parse(await readBody(req));
    if (forced && account?.provider !== undefined && account.provider !== forced) {
      throw new Error(`this endpoint only takes ${forced} accounts`);
    }
    const s = siteNamed(forced ?? account?.provider);
    s.accounts.put(account);
    return json(res, 201, { sub: account.sub, provider: s.name });
  } catch (e) {
    return json(res, 400, { error: String(e.message) });
  }
}

// path: the request's path below the site's prefix.
async function serve(s, req, res, path) {
  const m = path.match(/^\/interaction\/([^/]+)(?:\/(login))?$/);
  if (m) return interaction(s, req, res, m[1], m[2]);
  if (s === entraSite && path === '/jwks' && (req.method === 'GET' || req.method === 'HEAD')) {
    res.writeHead(200, { 'content-type': 'application/jwk-set+json; charset=utf-8' });
    return res.end(req.method === 'HEAD' ? undefined : entraJwks);
  }
  if (s.prefix) {
    req.originalUrl = req.url;
    req.url = req.url.slice(s.prefix.length);
    if (!req.url.startsWith('/')) req.url = `/${req.url}`;
  }
  return s.callback(req, res);
}

server.on('request', async (req, res) => {
  const url = new URL(req.url, origin);
  try {
    if (url.pathname === '/__test/accounts') return await postAccount(req, res);
    if (url.pathname === '/__test/entra/accounts') return await postAccount(req, res, 'entra');
    if (url.pathname === entraPrefix || url.pathname.startsWith(`${entraPrefix}/`)) {
      return await serve(entraSite, req, res, url.pathname.slice(entraPrefix.length));
    }
    return await serve(rootSite, req, res, url.pathname);
  } catch (e) {
    // e.g. an expired or unknown interaction cookie
    if (!res.headersSent) json(res, 400, { error: e.name, error_description: e.message });
    else res.end();
  }
});

process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
process.stdout.write(`ISSUER=${rootSite.provider.issuer}\nENTRA_TENANT=${TENANT}\nENTRA_ISSUER=${entraIssuer}\nREADY\n`);
