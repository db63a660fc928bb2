// Self-test of provider.mjs's Entra-shaped provider: the whole authorization-code flow with a
// hand-kept cookie jar, private_key_jwt (PS256 and RS256) at the token endpoint, PKCE, and the
// root provider still answering. Node built-ins only.
//
//   node tests/support/oidc/selftest-entra.mjs
// starts provider.mjs itself; with ISSUER (and ENTRA_ISSUER, or ENTRA_TENANT) in the env it
// tests an already running provider instead. Prints each request's status, Location and
// Set-Cookie paths, then "selftest-entra: OK"; exits 1 on the first failed check.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

async function startProvider() {
  const child = spawn(process.execPath, [path.join(here, 'provider.mjs')], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, OIDC_PORT: '0' },
  });
  const facts = {};
  const lines = readline.createInterface({ input: child.stdout });
  await new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`provider.mjs exited (${code}) before READY`)));
    lines.on('line', (line) => {
      if (line === 'READY') resolve();
      const i = line.indexOf('=');
      if (i > 0) facts[line.slice(0, i)] = line.slice(i + 1);
    });
  });
  process.on('exit', () => child.kill('SIGTERM'));
  return facts;
}

const facts = process.env.ISSUER
  ? {
    ISSUER: process.env.ISSUER,
    ENTRA_ISSUER: process.env.ENTRA_ISSUER
      || `${process.env.ISSUER}/${process.env.ENTRA_TENANT || '7d3c1f0e-5b2a-4c9d-8e6f-0a1b2c3d4e5f'}/v2.0`,
  }
  : await startProvider();
const { ISSUER } = facts;
const ENTRA_ISSUER = facts.ENTRA_ISSUER;
const TENANT = new URL(ENTRA_ISSUER).pathname.split('/')[1];
assert.equal(ENTRA_ISSUER, `${ISSUER}/${TENANT}/v2.0`);

// --- HTTP with a cookie jar kept by hand (RFC 6265 path matching, no domain handling: one host)
const jar = new Map(); // `${name};${path}` -> { name, value, path }
function pathMatches(reqPath, cookiePath) {
  return reqPath === cookiePath
    || (reqPath.startsWith(cookiePath) && (cookiePath.endsWith('/') || reqPath[cookiePath.length] === '/'));
}
function storeCookies(res, url) {
  const seen = [];
  for (const sc of res.headers.getSetCookie()) {
    const [pair, ...attrs] = sc.split(';').map((s) => s.trim());
    const eq = pair.indexOf('=');
    const name = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    let cpath = url.pathname.replace(/\/[^/]*$/, '') || '/';
    let expired = false;
    for (const a of attrs) {
      const [k, v = ''] = a.split('=');
      if (k.toLowerCase() === 'path') cpath = v;
      if (k.toLowerCase() === 'expires' && new Date(v) <= new Date()) expired = true;
      if (k.toLowerCase() === 'max-age' && Number(v) <= 0) expired = true;
    }
    const key = `${name};${cpath}`;
    if (expired) jar.delete(key); else jar.set(key, { name, value, path: cpath });
    seen.push(`${expired ? '-' : '+'}${name}@${cpath}`);
  }
  return seen;
}
function cookieHeader(url) {
  return [...jar.values()]
    .filter((c) => pathMatches(url.pathname, c.path))
    .sort((a, b) => b.path.length - a.path.length)
    .map((c) => `${c.name}=${c.value}`)
    .join('; ');
}
async function request(method, href, { body, headers = {}, label } = {}) {
  const url = new URL(href);
  const cookie = cookieHeader(url);
  const res = await fetch(url, {
    method,
    redirect: 'manual',
    headers: { ...headers, ...(cookie ? { cookie } : {}) },
    body,
  });
  const set = storeCookies(res, url);
  const location = res.headers.get('location');
  console.log(`${method} ${url.pathname}${label ? ` (${label})` : ''} -> ${res.status}`
    + `${location ? ` Location: ${location.length > 120 ? `${location.slice(0, 120)}…` : location}` : ''}`
    + `${set.length ? `\n    Set-Cookie: ${set.join(' ')}` : ''}`);
  return { res, location: location && new URL(location, url).href, text: await res.text() };
}
const form = (o) => ({
  body: new URLSearchParams(o).toString(),
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
});
const jsonBody = (o) => ({ body: JSON.stringify(o), headers: { 'content-type': 'application/json' } });

// --- JWT helpers (node:crypto)
const b64u = (b) => Buffer.from(b).toString('base64url');
function signJwt(header, payload, privateKey) {
  const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(payload))}`;
  const opts = header.alg === 'PS256'
    ? { key: privateKey, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }
    : { key: privateKey, padding: crypto.constants.RSA_PKCS1_PADDING };
  return `${input}.${b64u(crypto.sign('sha256', Buffer.from(input), opts))}`;
}
function decodeJwt(jwt) {
  const [h, p] = jwt.split('.');
  return { header: JSON.parse(Buffer.from(h, 'base64url')), payload: JSON.parse(Buffer.from(p, 'base64url')) };
}
function verifyRs256(jwt, jwks) {
  const { header } = decodeJwt(jwt);
  assert.equal(header.alg, 'RS256');
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  assert.ok(jwk, `no JWKS key with kid ${header.kid}`);
  const [h, p, s] = jwt.split('.');
  const ok = crypto.verify('sha256', Buffer.from(`${h}.${p}`), crypto.createPublicKey({ key: jwk, format: 'jwk' }), Buffer.from(s, 'base64url'));
  assert.ok(ok, 'ID token signature verifies against the jwks_uri key');
}

// --- root provider still there
{
  const { res, text } = await request('GET', `${ISSUER}/.well-known/openid-configuration`, { label: 'root discovery' });
  assert.equal(res.status, 200);
  assert.equal(JSON.parse(text).issuer, ISSUER);
}

// --- Entra discovery and keys
const { text: discoText } = await request('GET', `${ENTRA_ISSUER}/.well-known/openid-configuration`, { label: 'entra discovery' });
const disco = JSON.parse(discoText);
assert.equal(disco.issuer, ENTRA_ISSUER);
for (const k of ['authorization_endpoint', 'token_endpoint', 'jwks_uri', 'registration_endpoint']) {
  assert.ok(disco[k].startsWith(`${ENTRA_ISSUER}/`), `${k} lives under the issuer: ${disco[k]}`);
}
assert.ok(disco.token_endpoint_auth_methods_supported.includes('private_key_jwt'));
assert.ok(disco.token_endpoint_auth_signing_alg_values_supported.includes('PS256'));
assert.ok(disco.token_endpoint_auth_signing_alg_values_supported.includes('RS256'));
assert.deepEqual(disco.code_challenge_methods_supported, ['S256']);
const jwks = JSON.parse((await request('GET', disco.jwks_uri, { label: 'entra jwks' })).text);
assert.ok(jwks.keys.length >= 1);
for (const k of jwks.keys) {
  assert.equal(k.alg, undefined, 'Entra-shaped keys have no alg');
  assert.equal(k.issuer, ENTRA_ISSUER);
}

// --- client with a chosen id and an RSA public key
const clientId = crypto.randomUUID();
const redirectUri = 'http://127.0.0.1:9/login/oidc/abc/callback';
const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const publicJwk = publicKey.export({ format: 'jwk' }); // kty, n, e: no alg, no kid
// Stand-in for the certificate's SHA-256 thumbprint (no X.509 here): same shape, base64url(32 bytes).
const x5tS256 = b64u(crypto.createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest());
const x5t = b64u(crypto.createHash('sha1').update(publicKey.export({ type: 'spki', format: 'der' })).digest());
{
  const { res, text } = await request('POST', disco.registration_endpoint, {
    label: 'register client',
    ...jsonBody({
      client_id: clientId,
      redirect_uris: [redirectUri],
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: { keys: [publicJwk] },
      grant_types: ['authorization_code'],
      response_types: ['code'],
      id_token_signed_response_alg: 'RS256',
    }),
  });
  assert.equal(res.status, 201, text);
  const reg = JSON.parse(text);
  assert.equal(reg.client_id, clientId, 'registration keeps the chosen client_id');
  assert.equal(reg.client_secret, undefined);
}
// ...unknown to the root provider (separate storage)
{
  const { res } = await request('GET', `${ISSUER}/auth?${new URLSearchParams({
    client_id: clientId, redirect_uri: redirectUri, response_type: 'code', scope: 'openid',
  })}`, { label: 'root authorize with the entra client' });
  assert.equal(res.status, 400, 'the root provider does not know the entra client');
}

// --- account
const oid = crypto.randomUUID();
const claims = { oid, tid: TENANT, preferred_username: 'alice@contoso.example', name: 'Alice', email: 'alice@contoso.example' };
{
  const { res, text } = await request('POST', `${ISSUER}/__test/accounts`, {
    label: 'create entra account',
    ...jsonBody({ provider: 'entra', sub: 'sub-alice', login: 'alice@contoso.example', password: 'pw', claims }),
  });
  assert.equal(res.status, 201, text);
  assert.deepEqual(JSON.parse(text), { sub: 'sub-alice', provider: 'entra' });
  const bad = await request('POST', `${ISSUER}/__test/entra/accounts`, {
    label: 'root account at the entra endpoint',
    ...jsonBody({ provider: 'root', sub: 'x', login: 'x', password: 'x' }),
  });
  assert.equal(bad.res.status, 400);
}

// --- the authorization-code flow
function authorizeUrl(p) {
  return `${disco.authorization_endpoint}?${new URLSearchParams({
    client_id: clientId, redirect_uri: redirectUri, response_type: 'code', scope: 'openid profile email',
    state: p.state, nonce: p.nonce, code_challenge: p.challenge, code_challenge_method: 'S256',
    login_hint: 'alice@contoso.example',
  })}`;
}
function newParams() {
  const verifier = b64u(crypto.randomBytes(32));
  return {
    state: b64u(crypto.randomBytes(16)),
    nonce: b64u(crypto.randomBytes(16)),
    verifier,
    challenge: b64u(crypto.createHash('sha256').update(verifier).digest()),
  };
}
function callbackParams(location, p) {
  assert.ok(location.startsWith(`${redirectUri}?`), `ends at the redirect_uri: ${location}`);
  const q = new URL(location).searchParams;
  assert.equal(q.get('state'), p.state);
  assert.equal(q.get('iss'), ENTRA_ISSUER);
  assert.ok(q.get('code'));
  return q.get('code');
}

async function firstSignIn(p) {
  console.log('-- first sign-in (login form)');
  const a = await request('GET', authorizeUrl(p), { label: 'authorize' });
  assert.equal(a.res.status, 303);
  assert.match(new URL(a.location).pathname, new RegExp(`^/${TENANT}/v2\\.0/interaction/[^/]+$`));
  const f = await request('GET', a.location, { label: 'login form' });
  assert.equal(f.res.status, 200);
  const action = f.text.match(/<form method="post" action="([^"]+)"/)[1];
  const names = [...f.text.matchAll(/<input name="([^"]+)"/g)].map((m) => m[1]);
  assert.deepEqual(names, ['login', 'password']);
  assert.match(f.text, /value="alice@contoso\.example"/, 'login prefilled from login_hint');
  assert.equal(action, `${new URL(a.location).pathname}/login`);
  const wrong = await request('POST', new URL(action, ENTRA_ISSUER).href, {
    label: 'wrong password', ...form({ login: 'alice@contoso.example', password: 'nope' }),
  });
  assert.equal(wrong.res.status, 200);
  assert.match(wrong.text, /role="alert"/);
  const l = await request('POST', new URL(action, ENTRA_ISSUER).href, {
    label: 'login', ...form({ login: 'alice@contoso.example', password: 'pw' }),
  });
  assert.equal(l.res.status, 303);
  assert.match(new URL(l.location).pathname, new RegExp(`^/${TENANT}/v2\\.0/auth/[^/]+$`));
  const r = await request('GET', l.location, { label: 'resume' });
  assert.equal(r.res.status, 303);
  return callbackParams(r.location, p);
}

async function silentSignIn(p) {
  console.log('-- sign-in with the session cookie (no form)');
  let loc = authorizeUrl(p);
  for (let i = 0; i < 5; i += 1) {
    const r = await request('GET', loc, { label: i ? 'follow' : 'authorize' });
    assert.equal(r.res.status, 303, r.text);
    if (r.location.startsWith(redirectUri)) return callbackParams(r.location, p);
    loc = r.location;
  }
  throw new Error('too many redirects');
}

function assertion(alg, { aud = disco.token_endpoint } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const header = alg === 'PS256' ? { alg, typ: 'JWT', 'x5t#S256': x5tS256 } : { alg, typ: 'JWT', x5t };
  return signJwt(header, {
    aud, iss: clientId, sub: clientId, jti: crypto.randomUUID(), nbf: now, iat: now, exp: now + 600,
  }, privateKey);
}

async function redeem(code, p, { alg = 'PS256', verifier = p.verifier, label, aud } = {}) {
  const params = {
    grant_type: 'authorization_code', code, redirect_uri: redirectUri, client_id: clientId,
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: assertion(alg, { aud }),
  };
  if (verifier !== null) params.code_verifier = verifier; // null: leave it out
  const { res, text } = await request('POST', disco.token_endpoint, { label, ...form(params) });
  return { status: res.status, body: JSON.parse(text) };
}

function checkIdToken(idToken, p) {
  verifyRs256(idToken, jwks);
  const { payload } = decodeJwt(idToken);
  assert.equal(payload.iss, ENTRA_ISSUER);
  assert.equal(payload.aud, clientId);
  assert.equal(payload.nonce, p.nonce);
  assert.equal(payload.sub, 'sub-alice');
  assert.equal(payload.oid, oid);
  assert.notEqual(payload.sub, payload.oid);
  assert.equal(payload.tid, TENANT);
  assert.equal(payload.preferred_username, 'alice@contoso.example');
  assert.equal(payload.name, 'Alice');
  assert.equal(payload.email, 'alice@contoso.example');
  return payload;
}

const p1 = newParams();
const code1 = await firstSignIn(p1);
const t1 = await redeem(code1, p1, { label: 'token, PS256 assertion with x5t#S256' });
assert.equal(t1.status, 200, JSON.stringify(t1.body));
const claims1 = checkIdToken(t1.body.id_token, p1);
console.log('   ID token claims:', JSON.stringify(claims1));

const reused = await redeem(code1, p1, { label: 'token, reused code' });
assert.equal(reused.status, 400);
assert.equal(reused.body.error, 'invalid_grant');

const p2 = newParams();
const code2 = await silentSignIn(p2);
const noPkce = await redeem(code2, p2, { verifier: null, label: 'token, no code_verifier' });
assert.equal(noPkce.status, 400);
assert.equal(noPkce.body.error, 'invalid_grant');

const p3 = newParams();
const code3 = await silentSignIn(p3);
const wrongPkce = await redeem(code3, p3, { verifier: b64u(crypto.randomBytes(32)), label: 'token, wrong code_verifier' });
assert.equal(wrongPkce.status, 400);
assert.equal(wrongPkce.body.error, 'invalid_grant');

// an assertion signed by another key, and one for another audience, are refused (the code stays usable)
{
  const other = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const now = Math.floor(Date.now() / 1000);
  const claimsOf = (aud) => ({ aud, iss: clientId, sub: clientId, jti: crypto.randomUUID(), nbf: now, exp: now + 600 });
  for (const [label, jwt] of [
    ['token, assertion signed by another key', signJwt({ alg: 'PS256', typ: 'JWT' }, claimsOf(disco.token_endpoint), other)],
    ['token, assertion for another audience', signJwt({ alg: 'PS256', typ: 'JWT' }, claimsOf(`${ISSUER}/token`), privateKey)],
  ]) {
    const { res, text } = await request('POST', disco.token_endpoint, {
      label,
      ...form({
        grant_type: 'authorization_code', code: code3, redirect_uri: redirectUri, client_id: clientId, code_verifier: p3.verifier,
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: jwt,
      }),
    });
    assert.equal(res.status, 401, text);
    assert.equal(JSON.parse(text).error, 'invalid_client');
  }
}

const p4 = newParams();
const code4 = await silentSignIn(p4);
const t4 = await redeem(code4, p4, { alg: 'RS256', aud: ENTRA_ISSUER, label: 'token, RS256 assertion with x5t, aud = issuer' });
assert.equal(t4.status, 200, JSON.stringify(t4.body));
checkIdToken(t4.body.id_token, p4);

// the root provider never saw the entra session: its cookies are scoped to the prefix and named apart
for (const c of jar.values()) {
  assert.ok(c.name.startsWith('_entra_'), `entra cookie names are prefixed: ${c.name}`);
  assert.ok(c.path.startsWith(`/${TENANT}/v2.0`), `entra cookie paths are under the prefix: ${c.name}@${c.path}`);
}
{
  const { res, text } = await request('GET', `${ISSUER}/.well-known/openid-configuration`, { label: 'root discovery again' });
  assert.equal(res.status, 200);
  assert.equal(JSON.parse(text).issuer, ISSUER);
}
console.log('selftest-entra: OK');
process.exit(0);
