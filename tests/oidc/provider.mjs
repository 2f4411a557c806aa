// A real OpenID Provider (panva/oidc-provider, OpenID Certified) for cooper's end-to-end tests.
// Listens on 127.0.0.1 (a free port unless given), prints its issuer URL, and serves until stdin
// closes. Any login name signs in (the provider's development interactions); the account's
// claims are `<login>@example.com`, verified, in the groups listed in GROUPS (comma-separated).

import { generateKeyPair, exportJWK } from 'jose';
import Provider from 'oidc-provider';
import http from 'node:http';

const port = Number(process.argv[2] ?? 0);
const groups = (process.env.GROUPS ?? 'sso-engineers').split(',').filter(Boolean);

const { privateKey } = await generateKeyPair('RS256', { extractable: true });
const jwk = { ...(await exportJWK(privateKey)), kid: 'test-rs256', use: 'sig', alg: 'RS256' };

const server = http.createServer();
await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'cooper-cli',
      token_endpoint_auth_method: 'none',
      application_type: 'native',
      redirect_uris: ['http://127.0.0.1/callback'],
      grant_types: ['authorization_code', 'urn:ietf:params:oauth:grant-type:device_code'],
      response_types: ['code'],
    },
    {
      // The web console as a confidential client (a web application with a secret, as Google
      // Workspace and most providers register one): the secret by HTTP Basic.
      client_id: 'cooper-console-confidential',
      client_secret: 'console-secret+/:1',
      token_endpoint_auth_method: 'client_secret_basic',
      application_type: 'native',
      redirect_uris: ['http://127.0.0.1/signin/oidc/callback'],
      grant_types: ['authorization_code'],
      response_types: ['code'],
    },
    {
      // The web console's client (a loopback redirect: any port, as RFC 8252 allows natives).
      client_id: 'cooper-console',
      token_endpoint_auth_method: 'none',
      application_type: 'native',
      redirect_uris: ['http://127.0.0.1/signin/oidc/callback'],
      grant_types: ['authorization_code'],
      response_types: ['code'],
    },
  ],
  jwks: { keys: [jwk] },
  scopes: ['openid', 'email', 'groups'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], groups: ['groups'] },
  // Put the scopes' claims in the ID token itself: cooper reads them from there.
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: true }, deviceFlow: { enabled: true } },
  pkce: { required: () => true },
  async findAccount(_ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: `${id}@example.com`, email_verified: true, groups };
      },
    };
  },
});
provider.proxy = false;
server.on('request', provider.callback());

process.stdout.write(`${issuer}\n`);
// Whoever started us reads one line: everything else the provider says goes to stderr.
console.log = console.info = (...args) => console.error(...args);
process.stdout.on('error', () => {});
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
