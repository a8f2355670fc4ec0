// A real OpenID Connect provider (the `oidc-provider` package) on 127.0.0.1 for
// Mailferry's tests. Started by the Rust kit (e2e/src/oidc.rs) as
// `node e2e/oidc/provider.mjs CONFIG.json`; prints `ready` once listening and exits
// when its standard input closes or on SIGTERM.
//
// Config (JSON): port, issuer, access_token_ttl_seconds (3600), refresh_token_ttl_seconds
// (14 days), clients (oidc-provider client metadata), users ([{login, password, email}]),
// scopes, pkce_required (true).
//
// Beyond oidc-provider's own endpoints it serves its own login and consent pages under
// /interaction/, the RFC 7523 JWT-bearer grant, and test controls under /kit/.

import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as querystring from 'node:querystring';

import * as jose from 'jose';
import Provider, { errors } from 'oidc-provider';

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const port = config.port;
const issuer = config.issuer || `http://127.0.0.1:${port}`;
const accessTtl = config.access_token_ttl_seconds ?? 3600;
const refreshTtl = config.refresh_token_ttl_seconds ?? 14 * 24 * 3600;
const scopes = config.scopes ?? ['openid', 'email', 'profile', 'offline_access'];
const users = new Map((config.users ?? []).map((u) => [u.login, u]));

// What never goes to the log or to /kit/introspections: token values. Opaque tokens
// are their own jti, so tokens are named by a hash of their value instead.
const tokenId = (value) => createHash('sha256').update(String(value)).digest('hex').slice(0, 16);

function log(line) {
  process.stdout.write(`${line}\n`);
}

// ---------------------------------------------------------------------------
// Storage: a plain in-memory adapter, so that /kit/revoke can find every artefact of
// an account (the package's own memory adapter cannot be enumerated).

const store = new Map(); // model name -> Map(id -> { payload, expiresAt })

function modelStore(name) {
  if (!store.has(name)) store.set(name, new Map());
  return store.get(name);
}

class MemoryAdapter {
  constructor(name) {
    this.name = name;
    this.items = modelStore(name);
  }

  live(id) {
    const item = this.items.get(id);
    if (!item) return undefined;
    if (item.expiresAt && item.expiresAt <= Date.now()) {
      this.items.delete(id);
      return undefined;
    }
    return item;
  }

  async upsert(id, payload, expiresIn) {
    this.items.set(id, {
      payload: structuredClone(payload),
      expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : undefined,
    });
  }

  async find(id) {
    const item = this.live(id);
    return item ? structuredClone(item.payload) : undefined;
  }

  async findByUid(uid) {
    for (const [id, item] of this.items) {
      if (item.payload.uid === uid) return this.find(id);
    }
    return undefined;
  }

  async findByUserCode(userCode) {
    for (const [id, item] of this.items) {
      if (item.payload.userCode === userCode) return this.find(id);
    }
    return undefined;
  }

  async consume(id) {
    const item = this.live(id);
    if (item) item.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    this.items.delete(id);
  }

  async revokeByGrantId(grantId) {
    for (const [id, item] of this.items) {
      if (item.payload.grantId === grantId) this.items.delete(id);
    }
  }
}

// Withdraws everything `account` was granted: grants, codes, access and refresh tokens.
function revokeAccount(account) {
  let removed = 0;
  const grantIds = new Set();
  for (const [name, items] of store) {
    if (name === 'Session' || name === 'Interaction') continue;
    for (const [id, item] of items) {
      if (item.payload.accountId === account) {
        if (item.payload.grantId) grantIds.add(item.payload.grantId);
        if (name === 'Grant') grantIds.add(id);
        items.delete(id);
        removed += 1;
      }
    }
  }
  // Anything else hanging off those grants (whatever its kind) goes too.
  for (const items of store.values()) {
    for (const [id, item] of items) {
      if (item.payload.grantId && grantIds.has(item.payload.grantId)) {
        items.delete(id);
        removed += 1;
      }
    }
  }
  return removed;
}

// ---------------------------------------------------------------------------
// Accounts

function account(login) {
  const user = users.get(login);
  if (!user) return undefined;
  return {
    accountId: login,
    async claims() {
      return {
        sub: login,
        email: user.email,
        email_verified: true,
        preferred_username: login,
      };
    },
  };
}

// ---------------------------------------------------------------------------
// Provider

const signingKey = await jose.generateKeyPair('RS256', { extractable: true });
const jwk = {
  ...(await jose.exportJWK(signingKey.privateKey)),
  kid: `kit-${randomBytes(4).toString('hex')}`,
  alg: 'RS256',
  use: 'sig',
};

const provider = new Provider(issuer, {
  adapter: MemoryAdapter,
  clients: config.clients ?? [],
  jwks: { keys: [jwk] },
  scopes,
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['preferred_username'],
  },
  findAccount: async (_ctx, id) => account(id),
  // ID tokens carry the granted scopes' claims (email...), as Google's do; without this
  // oidc-provider keeps them for the userinfo endpoint in the code flow.
  conformIdTokenClaims: false,
  cookies: { keys: [randomBytes(32).toString('hex')] },
  pkce: { required: () => config.pkce_required ?? true },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: {
      enabled: true,
      // Any authenticated confidential client (Dovecot's `dovecot`) may introspect
      // access tokens issued to other clients, like a resource server does; a refresh
      // token is active only to its own client (so it never opens a mailbox).
      allowedPolicy: async (_ctx, client, token) => client.clientAuthMethod !== 'none'
        && (token.kind !== 'RefreshToken' || token.clientId === client.clientId),
    },
    revocation: { enabled: true },
  },
  interactions: {
    url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
  },
  // Refresh tokens are issued when offline_access was granted (which oidc-provider
  // only grants with prompt=consent); confidential clients keep theirs (like Google),
  // public clients get a new one at each use.
  rotateRefreshToken: (ctx) => ctx.oidc.client.clientAuthMethod === 'none',
  ttl: {
    AccessToken: accessTtl,
    ClientCredentials: accessTtl,
    RefreshToken: refreshTtl,
    AuthorizationCode: 120,
    IdToken: 3600,
    Interaction: 3600,
    Session: 14 * 24 * 3600,
    Grant: Math.max(refreshTtl, accessTtl) + 3600,
  },
  renderError: async (ctx, out) => {
    ctx.type = 'html';
    ctx.body = page('Error', `<p id="error">${esc(out.error)}: ${esc(out.error_description ?? '')}</p>`);
  },
});

for (const kind of ['access_token', 'client_credentials', 'refresh_token']) {
  provider.on(`${kind}.saved`, (token) => {
    log(
      `issued ${kind} gty=${token.gty ?? 'client_credentials'} client=${token.clientId} `
        + `account=${token.accountId ?? '-'} token_id=${tokenId(token.jti)} `
        + `scope="${token.scope ?? ''}" ttl=${token.expiration}`,
    );
  });
}
provider.on('server_error', (_ctx, err) => log(`server_error ${err.stack}`));

// ---------------------------------------------------------------------------
// RFC 7523 JWT-bearer grant: a service account (a client with a registered public
// `jwks`) signs an assertion naming the user it acts as (`sub`), Google domain-wide
// delegation style.

const tokenEndpoint = new URL('/token', issuer).href;

async function jwtBearerGrant(ctx) {
  const { client, params } = ctx.oidc;
  if (!client.jwks?.keys?.length) {
    throw new errors.UnauthorizedClient('client has no registered jwks for jwt-bearer assertions');
  }
  let claims;
  try {
    ({ payload: claims } = await jose.jwtVerify(params.assertion, jose.createLocalJWKSet(client.jwks), {
      issuer: client.clientId,
      audience: [tokenEndpoint, issuer],
      algorithms: ['RS256', 'PS256', 'ES256'],
      requiredClaims: ['iss', 'aud', 'exp', 'iat', 'sub'],
      clockTolerance: 5,
    }));
  } catch (err) {
    throw new errors.InvalidGrant(`assertion refused: ${err.message}`);
  }
  if (claims.exp - claims.iat > 3600) {
    throw new errors.InvalidGrant('assertion lives longer than an hour');
  }
  const user = await account(claims.sub);
  if (!user) {
    throw new errors.InvalidGrant('assertion names an unknown subject');
  }
  const requested = (params.scope ?? '').split(' ').filter(Boolean);
  const allowed = new Set(client.scope ? client.scope.split(' ') : scopes);
  for (const scope of requested) {
    if (!scopes.includes(scope) || !allowed.has(scope)) {
      throw new errors.InvalidScope('requested scope is not allowed', scope);
    }
  }
  const grant = new provider.Grant({ accountId: claims.sub, clientId: client.clientId });
  if (requested.length) grant.addOIDCScope(requested.join(' '));
  const grantId = await grant.save();
  const token = new provider.AccessToken({
    accountId: claims.sub,
    client,
    grantId,
    gty: 'jwt_bearer',
    scope: requested.join(' ') || undefined,
  });
  ctx.oidc.entity('AccessToken', token);
  const value = await token.save();
  ctx.body = {
    access_token: value,
    token_type: 'Bearer',
    expires_in: token.expiration,
    scope: token.scope,
  };
}

provider.registerGrantType(JWT_BEARER, jwtBearerGrant, ['assertion', 'scope']);

// ---------------------------------------------------------------------------
// Pages and test controls, served before oidc-provider's own routes.

function esc(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title, body) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title></head>`
    + `<body><h1>${esc(title)}</h1>${body}</body></html>`;
}

function loginPage(uid, clientId, error) {
  return page(
    'Sign in',
    `<p>Sign in to continue to <span id="client">${esc(clientId)}</span>.</p>`
      + (error ? `<p id="error" role="alert">${esc(error)}</p>` : '')
      + `<form method="post" action="/interaction/${esc(uid)}/login">`
      + '<label>Login <input id="login" name="login" autocomplete="username" autofocus></label> '
      + '<label>Password <input id="password" name="password" type="password" autocomplete="current-password"></label> '
      + '<button id="submit" type="submit">Sign in</button></form>',
  );
}

function consentPage(uid, clientId, account, scopeList) {
  return page(
    'Allow access',
    `<p><span id="client">${esc(clientId)}</span> asks for access to the account `
      + `<span id="account">${esc(account)}</span>: <span id="scopes">${esc(scopeList.join(' '))}</span>.</p>`
      + `<form method="post" action="/interaction/${esc(uid)}/confirm">`
      + '<button id="allow" type="submit">Allow</button></form>'
      + `<form method="post" action="/interaction/${esc(uid)}/abort">`
      + '<button id="deny" type="submit">Deny</button></form>',
  );
}

async function readForm(ctx) {
  const chunks = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += chunk.length;
    if (size > 64 * 1024) ctx.throw(413);
    chunks.push(chunk);
  }
  return querystring.parse(Buffer.concat(chunks).toString('utf8'));
}

async function interaction(ctx, uid, action) {
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  if (details.uid !== uid) ctx.throw(400, 'interaction mismatch');
  const { prompt, params } = details;
  ctx.type = 'html';
  if (ctx.method === 'GET' && !action) {
    if (prompt.name === 'login') {
      ctx.body = loginPage(uid, params.client_id);
    } else {
      const missing = prompt.details.missingOIDCScope ?? [];
      ctx.body = consentPage(uid, params.client_id, details.session?.accountId, missing);
    }
    return;
  }
  if (ctx.method !== 'POST') ctx.throw(405);
  let result;
  if (action === 'login') {
    if (prompt.name !== 'login') ctx.throw(400, 'not a login prompt');
    const form = await readForm(ctx);
    const user = users.get(String(form.login ?? ''));
    if (!user || user.password !== String(form.password ?? '')) {
      log(`login refused for "${form.login ?? ''}"`);
      ctx.status = 401;
      ctx.body = loginPage(uid, params.client_id, 'Wrong login or password.');
      return;
    }
    log(`login ${user.login}`);
    result = { login: { accountId: user.login } };
  } else if (action === 'confirm') {
    if (prompt.name !== 'consent') ctx.throw(400, 'not a consent prompt');
    const { accountId } = details.session;
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId, clientId: params.client_id });
    if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
    if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    for (const [indicator, list] of Object.entries(prompt.details.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, list.join(' '));
    }
    const grantId = await grant.save();
    log(`consent ${accountId} -> ${params.client_id}`);
    result = { consent: { grantId } };
  } else if (action === 'abort') {
    log(`consent denied -> ${params.client_id}`);
    result = { error: 'access_denied', error_description: 'End-User denied the request' };
  } else {
    ctx.throw(404);
  }
  const redirectTo = await provider.interactionResult(ctx.req, ctx.res, result, {
    mergeWithLastSubmission: false,
  });
  ctx.status = 303;
  ctx.redirect(redirectTo);
}

const introspections = [];

provider.use(async (ctx, next) => {
  const path = ctx.path;
  const m = /^\/interaction\/([^/]+)(?:\/(login|confirm|abort))?$/.exec(path);
  if (m) {
    await interaction(ctx, m[1], m[2]);
    return;
  }
  if (path === '/kit/revoke' && ctx.method === 'POST') {
    const login = ctx.query.account;
    if (!login) ctx.throw(400, 'account missing');
    const removed = revokeAccount(String(login));
    log(`kit revoke account=${login} removed=${removed}`);
    ctx.body = { account: login, removed };
    return;
  }
  if (path === '/kit/introspections' && ctx.method === 'GET') {
    ctx.body = introspections;
    return;
  }
  if (path === '/token' && ctx.method === 'POST' && ctx.is('application/x-www-form-urlencoded')) {
    // Google-style JWT-bearer requests carry only the assertion: the client is the
    // assertion's issuer (verified by the grant). Name it for client authentication.
    const form = await readForm(ctx);
    if (form.grant_type === JWT_BEARER && !form.client_id && !ctx.get('authorization') && form.assertion) {
      try {
        const { iss } = jose.decodeJwt(String(form.assertion));
        if (typeof iss === 'string') form.client_id = iss;
      } catch {
        // The grant refuses the malformed assertion.
      }
    }
    ctx.request.body = form;
  }
  await next();
  if (path === '/token/introspection' && ctx.method === 'POST' && ctx.body && typeof ctx.body === 'object') {
    const token = ctx.oidc?.params?.token;
    const entry = {
      at_ms: Date.now(),
      token_id: token ? tokenId(token) : null,
      active: ctx.body.active === true,
      sub: ctx.body.sub ?? null,
      scope: ctx.body.scope ?? null,
      client_id: ctx.oidc?.client?.clientId ?? null,
    };
    introspections.push(entry);
    log(`introspection by=${entry.client_id} token_id=${entry.token_id} active=${entry.active} sub=${entry.sub ?? '-'}`);
  }
});

const server = provider.listen(port, '127.0.0.1', () => log('ready'));

function stop() {
  server.close();
  server.closeAllConnections?.();
  process.exit(0);
}

process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.resume();
