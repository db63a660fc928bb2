// OpenID provider for Roster's integration tests, standing in for Entra ID and Google sign-in.
// oidc-provider (OpenID-certified) does the protocol; this file only adds what a test needs:
// accounts posted at runtime, a plain login form instead of the dev interactions, and
// Entra/Google-shaped claims in the ID token.
//
// Env: OIDC_PORT (default 0 = any free port), OIDC_CLIENTS (JSON array of client metadata),
// OIDC_ACCOUNTS (JSON array of accounts, same shape as POST /__test/accounts).
// Prints ISSUER=http://127.0.0.1:PORT and READY on stdout once listening.
import crypto from 'node:crypto';
import http from 'node:http';
import { Provider, interactionPolicy } from 'oidc-provider';

// sub -> { sub, login, password, claims }
const accounts = new Map();
function putAccount(a) {
  if (![a?.sub, a?.login, a?.password].every((v) => typeof v === 'string' && v)) {
    throw new Error('an account needs string sub, login and password');
  }
  if (a.claims !== undefined && (typeof a.claims !== 'object' || Array.isArray(a.claims))) {
    throw new Error('claims must be an object');
  }
  // A login names one account: a re-post under a new sub replaces the old one.
  for (const [sub, old] of accounts) if (old.login === a.login) accounts.delete(sub);
  accounts.set(a.sub, { sub: a.sub, login: a.login, password: a.password, claims: a.claims ?? {} });
}
for (const a of JSON.parse(process.env.OIDC_ACCOUNTS || '[]')) putAccount(a);

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: crypto.randomUUID(), alg: 'RS256', use: 'sig' };

// Google's sign-in sends prompt=select_account, which oidc-provider rejects unless a prompt of
// that name exists. The login form resolves it (it is Google's account chooser here).
const policy = interactionPolicy.base();
policy.unshift(new interactionPolicy.Prompt({ name: 'select_account', requestable: true }));

const server = http.createServer();
await new Promise((resolve) => server.listen(Number(process.env.OIDC_PORT || 0), '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: JSON.parse(process.env.OIDC_CLIENTS || '[]'),
  jwks: { keys: [signingKey] },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  pkce: { methods: ['S256'], required: () => true },
  // Put the scope's claims in the ID token too (Entra and Google do), not only at /me.
  conformIdTokenClaims: false,
  features: {
    devInteractions: { enabled: false },
    registration: { enabled: true }, // RFC 7591: each test registers its own client
    claimsParameter: { enabled: true },
  },
  // Entra: oid, tid, preferred_username, name, email. Google: hd, email, email_verified, name.
  claims: {
    openid: ['sub', 'oid', 'tid', 'hd'],
    profile: ['name', 'given_name', 'family_name', 'preferred_username', 'picture'],
    email: ['email', 'email_verified'],
  },
  interactions: { policy, url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, sub) {
    const account = accounts.get(sub);
    if (!account) return undefined;
    return { accountId: sub, claims: async () => ({ ...account.claims, sub }) };
  },
});

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
function loginPage(res, uid, { login = '', error = '' } = {}) {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!doctype html>
<html><head><meta charset="utf-8"><title>Sign in - test OpenID provider</title></head>
<body><h1>Sign in</h1>
${error ? `<p class="error" role="alert">${esc(error)}</p>` : ''}
<form method="post" action="/interaction/${esc(uid)}/login">
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
async function grantAll(details, accountId) {
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

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new Error('interaction mismatch');
  if (req.method === 'GET' && !action) {
    // Already signed in (a session exists): only consent is missing, so give it.
    if (details.prompt.name === 'consent' && details.session?.accountId) {
      const grantId = await grantAll(details, details.session.accountId);
      return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    }
    return loginPage(res, uid, { login: details.params.login_hint ?? '' });
  }
  if (req.method === 'POST' && action === 'login') {
    const form = new URLSearchParams(await readBody(req));
    const login = form.get('login') ?? '';
    const account = [...accounts.values()].find((a) => a.login === login);
    if (!account || account.password !== form.get('password')) {
      return loginPage(res, uid, { login, error: 'Invalid login or password.' });
    }
    const grantId = await grantAll(details, account.sub);
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

const oidc = provider.callback();
server.on('request', async (req, res) => {
  const url = new URL(req.url, issuer);
  try {
    const m = url.pathname.match(/^\/interaction\/([^/]+)(?:\/(login))?$/);
    if (m) return await interaction(req, res, m[1], m[2]);
    if (url.pathname === '/__test/accounts') {
      if (req.method !== 'POST') return json(res, 405, { error: 'POST only' });
      try {
        const account = JSON.parse(await readBody(req));
        putAccount(account);
        return json(res, 201, { sub: account.sub });
      } catch (e) {
        return json(res, 400, { error: String(e.message) });
      }
    }
    return oidc(req, res);
  } catch (e) {
    // e.g. an expired or unknown interaction cookie
    if (!res.headersSent) json(res, 400, { error: e.name, error_description: e.message });
    else res.end();
  }
});

process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
process.stdout.write(`ISSUER=${issuer}\nREADY\n`);
