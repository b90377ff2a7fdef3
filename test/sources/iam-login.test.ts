// IAM logins (`authentication_oci_client`) with the real mysql2 driver against the test server's
// `authentication_oci` (test/mysql-server/oci-auth.ts), with key material from the real OCI auth
// factory: an API key profile, a session-token profile (refreshed through the local OCI endpoint's
// auth service), a resource principal. The server refuses wrong keys, tampered signatures,
// expired or foreign tokens, other principals and replayed answers.
import { createPublicKey, createVerify } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import mysql, { type ConnectionOptions } from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { validateConfig } from '../../shared/config/load-config.js';
import { baseConfig } from '../../shared/detect/timeline.js';
import { ociAuthProvider, securityTokenClaims } from '../../shared/oci/auth.js';
import { Pipeline } from '../../shared/pipeline.js';
import { collect } from '../../shared/sources/collector.js';
import {
  authResponse,
  type IamCredentials,
  iamCredentials,
  iamLogin,
  keyFingerprint,
  OCI_CLIENT_PLUGIN,
  ociClientAuthPlugin,
} from '../../shared/sources/iam-login.js';
import {
  connectInstance,
  type InstanceTarget,
  instanceTargets,
} from '../../shared/sources/mysql-connection.js';
import { SqliteStore } from '../../shared/state/sqlite-store.js';
import { AuditLog } from '../mysql-server/audit-log.js';
import type { IamDirectory } from '../mysql-server/oci-auth.js';
import { minutes, RawLog } from '../mysql-server/raw-events.js';
import { HeatWaveTestServer, type TestAccount } from '../mysql-server/server.js';
import { type TlsMaterial, tlsMaterial } from '../mysql-server/tls.js';
import { authService } from '../oci-endpoint/auth-service.js';
import { type OciEndpoint, startOciEndpoint } from '../oci-endpoint/server.js';
import {
  craftSecurityToken,
  createTestPrincipal,
  generateTestKeyPair,
  type TestKeyPair,
  type TestPrincipal,
  writeSessionProfile,
} from '../oci-endpoint/signature.js';

const ALICE = 'ocid1.user.oc1..alice';
const FUNCTION = 'ocid1.fnfunc.oc1..collector';
const COLLECTORS = 'ocid1.dynamicgroup.oc1..collectors';
const GRANTS = ['AUDIT_ADMIN'];

let tls: TlsMaterial;
let apiUser: TestPrincipal;
let issuer: TestKeyPair;
let server: HeatWaveTestServer;
let endpoint: OciEndpoint;
let auth: ReturnType<typeof authService>;

beforeAll(async () => {
  tls = await tlsMaterial();
  apiUser = createTestPrincipal({ profile: 'COLLECTOR' });
  issuer = generateTestKeyPair();
  const tenancy = apiUser.tenancy;
  const iam: IamDirectory = {
    issuerPublicKeyPem: issuer.publicKeyPem,
    apiKeys: [
      { tenancy, user: apiUser.user, fingerprint: apiUser.fingerprint, publicKeyPem: apiUser.publicKeyPem },
    ],
    memberships: { [FUNCTION]: [COLLECTORS] },
  };
  const mapped = (user: string, iamUser: string): TestAccount => ({
    user,
    plugin: 'authentication_oci',
    authenticationString: JSON.stringify({ tenancy, user: iamUser }),
    grants: GRANTS,
  });
  server = await HeatWaveTestServer.start({
    tls: { key: tls.key, cert: tls.cert },
    iam,
    audit: new AuditLog(new RawLog().session({ at: minutes(0), conn: 7, user: 'app', queries: 3 }).events),
    accounts: [
      mapped('hwaudit', apiUser.user),
      mapped('hwaudit_alice', ALICE),
      {
        user: '',
        plugin: 'authentication_oci',
        authenticationString: JSON.stringify({ tenancy, group_mapping: { [COLLECTORS]: 'collector_proxy' } }),
      },
      { user: 'collector_proxy', locked: true, grants: GRANTS },
    ],
  });
  auth = authService({ issuerPrivateKeyPem: issuer.privateKeyPem });
  endpoint = await startOciEndpoint({
    tokenIssuerPublicKeyPem: issuer.publicKeyPem,
    handlers: [auth.handler],
  });
});
afterAll(async () => {
  await server.stop();
  await endpoint.close();
  apiUser.cleanup();
});
afterEach(() => {
  vi.unstubAllEnvs();
});

/** One target on the test server, logging in with `auth: iam` as `user`. */
function target(user: string): InstanceTarget {
  const base = baseConfig();
  const { config } = validateConfig({
    ...base,
    dbSystems: [{ ...base.dbSystems![0]!, endpoints: [{ host: 'localhost', port: server.address.port }] }],
    collector: { user, auth: 'iam', tls: 'verify-identity', ca: tls.caFile },
  });
  return instanceTargets(config)[0]!;
}

const noSecrets = () => Promise.reject(new Error('no password with auth: iam'));

/** A raw mysql2 login whose plugin answers with `answer(nonce)`. */
async function rawLogin(user: string, answer: (nonce: Buffer) => Buffer): Promise<unknown> {
  const options: ConnectionOptions = {
    host: '127.0.0.1',
    port: server.address.port,
    user,
    ssl: { rejectUnauthorized: false },
    authPlugins: { [OCI_CLIENT_PLUGIN]: () => answer },
  };
  const c = await mysql.createConnection(options);
  await c.end();
  return undefined;
}

const lastVerdict = () => server.iamLogins.at(-1)!;

function session(expiresInMs: number, subject = ALICE) {
  return writeSessionProfile({
    dir: apiUser.dir,
    issuerPrivateKeyPem: issuer.privateKeyPem,
    subject,
    tenancy: apiUser.tenancy,
    expiresAt: new Date(Date.now() + expiresInMs),
  });
}

describe('collector.auth in the configuration', () => {
  const db = (collector: Record<string, unknown>) => ({
    ...baseConfig(),
    dbSystems: [{ ...baseConfig().dbSystems![0]!, endpoints: [{ host: 'db', port: 3306 }], collector }],
  });
  it('iam needs no password; password (the default) still does, and says iam is the other way', () => {
    const [t] = instanceTargets(validateConfig(db({ user: 'c', auth: 'iam' })).config);
    expect(t!.settings).toMatchObject({ user: 'c', auth: 'iam' });
    expect(t!.settings.password).toBeUndefined();
    const [p] = instanceTargets(validateConfig(db({ user: 'c', password: { env: 'PW' } })).config);
    expect(p!.settings).toMatchObject({ auth: 'password', password: { env: 'PW' } });
    expect(() => validateConfig(db({ user: 'c', auth: 'password' }))).toThrow(
      /dbSystems\[0\]\.collector\.password: the collector needs a password: .*, or auth: iam/,
    );
    expect(() => validateConfig(db({ user: 'c', auth: 'kerberos' }))).toThrow(
      /dbSystems\[0\]\.collector\.auth/,
    );
  });
});

describe('the answer to a nonce', () => {
  it('is compact JSON: the fingerprint and an RSA-SHA256 PKCS#1 v1.5 signature in base64; the token only when there is one', async () => {
    const credentials: IamCredentials = {
      principal: {
        kind: 'config-file',
        id: apiUser.user,
        tenancy: apiUser.tenancy,
        fingerprint: apiUser.fingerprint,
      },
      privateKeyPem: apiUser.privateKeyPem,
    };
    const nonce = Buffer.from([0, 10, 255, 0x7b, 13, 0]);
    const raw = authResponse(nonce, credentials).toString('utf8');
    const answer = JSON.parse(raw) as Record<string, string>;
    expect(Object.keys(answer)).toEqual(['fingerprint', 'signature']);
    expect(raw).toBe(`{"fingerprint":"${apiUser.fingerprint}","signature":"${answer.signature}"}`);
    expect(
      createVerify('RSA-SHA256').update(nonce).verify(apiUser.publicKeyPem, answer.signature!, 'base64'),
    ).toBe(true);
    expect(
      createVerify('RSA-SHA256')
        .update(Buffer.from('other'))
        .verify(apiUser.publicKeyPem, answer.signature!, 'base64'),
    ).toBe(false);
    const withToken = JSON.parse(authResponse(nonce, { ...credentials, token: 'a.b.c' }).toString('utf8'));
    expect(withToken.token).toBe('a.b.c');
  });

  it('refuses an empty nonce and a nonce that could be an OCI request signing string', () => {
    const credentials: IamCredentials = {
      principal: { kind: 'config-file', id: 'u', fingerprint: 'f' },
      privateKeyPem: apiUser.privateKeyPem,
    };
    expect(() => authResponse(Buffer.alloc(0), credentials)).toThrow(/empty/);
    const signingString =
      'date: Thu, 05 Nov 2026 10:00:00 GMT\n(request-target): get /20160918/users/x\nhost: identity.us-ashburn-1.oraclecloud.com';
    expect(() => authResponse(Buffer.from(signingString), credentials)).toThrow(/looks like an OCI request/);
    expect(() =>
      authResponse(Buffer.from('x'), { ...credentials, token: 'x'.repeat(10 * 1024 + 1) }),
    ).toThrow(/10 KB/);
  });

  it('a server that sends a signing string as its nonce gets no signature', async () => {
    const answers: Buffer[] = [];
    const rogue = await HeatWaveTestServer.start({
      authenticate: async (_hello, exchange) => {
        answers.push(
          await exchange.switchTo(OCI_CLIENT_PLUGIN, Buffer.from('(request-target): get /n/x\nhost: h')),
        );
        return { ok: true };
      },
    });
    try {
      const t = target('hwaudit');
      const plain = {
        ...t,
        endpoint: { ...t.endpoint, port: rogue.address.port },
        settings: { ...t.settings, tls: 'disabled' as const },
      };
      const login = iamLogin({ kind: 'config-file', configFile: apiUser.configFile, profile: 'COLLECTOR' });
      await expect(connectInstance(plain, noSecrets, login)).rejects.toThrow(
        /looks like an OCI request to sign/,
      );
      expect(answers).toEqual([]);
    } finally {
      await rogue.stop();
    }
  });
});

describe('IAM logins through the auth factory', () => {
  it('API key profile: logs in as the mapped account; the session says which principal', async () => {
    const login = iamLogin({ kind: 'config-file', configFile: apiUser.configFile, profile: 'COLLECTOR' });
    const s = await connectInstance(target('hwaudit'), noSecrets, login);
    try {
      expect(s.principal).toEqual({
        kind: 'config-file',
        id: apiUser.user,
        tenancy: apiUser.tenancy,
        fingerprint: apiUser.fingerprint,
      });
      expect(await s.query('SELECT CURRENT_USER() AS account')).toEqual([{ account: 'hwaudit@%' }]);
      expect(lastVerdict()).toEqual({ ok: true, principal: apiUser.user });
    } finally {
      await s.close();
    }
  });

  it('session-token profile: the token travels with the signature of the session key', async () => {
    const profile = session(50 * 60_000);
    const login = iamLogin({
      kind: 'session-token',
      configFile: profile.configFile,
      profile: profile.profile,
    });
    const s = await connectInstance(target('hwaudit_alice'), noSecrets, login);
    await s.close();
    expect(s.principal).toMatchObject({
      kind: 'session-token',
      id: ALICE,
      fingerprint: profile.session.fingerprint,
    });
    expect(lastVerdict()).toEqual({ ok: true, principal: ALICE });
    expect(auth.issued).toHaveLength(0);
  });

  it('session-token profile near its expiry: refreshed once through the auth service, written back, then used', async () => {
    const profile = session(5 * 60_000);
    const before = securityTokenClaims(profile.token).expiresAt!;
    const env = { HWAUDIT_OCI_ENDPOINT_AUTH: endpoint.url };
    const login = iamLogin(
      { kind: 'session-token', configFile: profile.configFile, profile: profile.profile },
      { env },
    );
    const issued = auth.issued.length;
    // Two instances log in at once: one refresh.
    const [a, b] = await Promise.all([
      connectInstance(target('hwaudit_alice'), noSecrets, login),
      connectInstance(target('hwaudit_alice'), noSecrets, login),
    ]);
    await a.close();
    await b.close();
    expect(auth.issued.length - issued).toBe(1);
    const written = readFileSync(profile.tokenFile, 'utf8');
    expect(written).toBe(auth.issued.at(-1));
    expect(statSync(profile.tokenFile).mode & 0o777).toBe(0o600);
    expect(securityTokenClaims(written).expiresAt!).toBeGreaterThan(before + 30 * 60_000);
    expect(a.principal!.tokenExpiresAt).toBe(securityTokenClaims(written).expiresAt);
    expect(lastVerdict()).toEqual({ ok: true, principal: ALICE });
  });

  it('a refresh that fails is a warning while the token is valid; an expired token is an error that says what to run', async () => {
    const warnings: string[] = [];
    const profile = session(5 * 60_000);
    endpoint.faults.failNext('auth.refresh', 1, 500);
    const env = { HWAUDIT_OCI_ENDPOINT_AUTH: endpoint.url };
    const login = iamLogin(
      { kind: 'session-token', configFile: profile.configFile, profile: profile.profile },
      { env, onWarning: (w) => warnings.push(w) },
    );
    const s = await connectInstance(target('hwaudit_alice'), noSecrets, login);
    await s.close();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      /cannot refresh the session token of profile SESSION .*used until it expires/,
    );
    expect(readFileSync(profile.tokenFile, 'utf8')).toBe(profile.token);

    const expired = session(-60_000);
    const late = iamLogin(
      { kind: 'session-token', configFile: expired.configFile, profile: expired.profile },
      { env },
    );
    const logins = server.iamLogins.length;
    const error = await connectInstance(target('hwaudit_alice'), noSecrets, late).then(
      () => new Error('logged in'),
      (e: Error) => e,
    );
    expect(error.message).toMatch(
      /the session token of profile SESSION expired at .*: run `oci session authenticate` again/,
    );
    expect(server.iamLogins.length).toBe(logins);
    expect(error.message).not.toContain(expired.token);
  });

  it('resource principal (RPST and its session key from the environment): logs in through the group mapping of its dynamic group, and the collector reads over that session', async () => {
    const key = generateTestKeyPair();
    const rpst = craftSecurityToken({
      issuerPrivateKeyPem: issuer.privateKeyPem,
      sessionPublicKeyPem: key.publicKeyPem,
      subject: FUNCTION,
      tenancy: apiUser.tenancy,
      expiresAt: new Date(Date.now() + 3_600_000),
      claims: { res_type: 'fnfunc', res_tenant: apiUser.tenancy },
    });
    vi.stubEnv('OCI_RESOURCE_PRINCIPAL_VERSION', '2.2');
    vi.stubEnv('OCI_RESOURCE_PRINCIPAL_RPST', rpst);
    vi.stubEnv('OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM', key.privateKeyPem);
    vi.stubEnv('OCI_RESOURCE_PRINCIPAL_REGION', 'fra');
    const login = iamLogin({ kind: 'resource-principal' });
    const s = await connectInstance(target('hwaudit_function'), noSecrets, login);
    expect(await s.query('SELECT CURRENT_USER() AS account')).toEqual([{ account: 'collector_proxy@%' }]);
    await s.close();
    expect(s.principal).toEqual({
      kind: 'resource-principal',
      id: FUNCTION,
      tenancy: apiUser.tenancy,
      fingerprint: key.fingerprint,
      tokenExpiresAt: securityTokenClaims(rpst).expiresAt,
    });
    expect(lastVerdict()).toEqual({ ok: true, account: 'collector_proxy', principal: FUNCTION });

    const t = target('hwaudit_function');
    const base = baseConfig();
    const { config, rules } = validateConfig({
      ...base,
      dbSystems: [{ ...base.dbSystems![0]!, endpoints: [t.endpoint] }],
      collector: { user: 'hwaudit_function', auth: 'iam', tls: 'verify-identity', ca: tls.caFile },
    });
    const store = SqliteStore.open(':memory:');
    try {
      const pipeline = await Pipeline.open({ config, rules, store });
      const result = await collect({
        pipeline,
        targets: instanceTargets(config),
        connect: (x) => connectInstance(x, noSecrets, login),
      });
      expect(result.instances[0]!.error).toBeUndefined();
      expect(result.instances[0]!.records).toBe(server.audit.size);
      expect(result.instances[0]!.caughtUp).toBe(true);
    } finally {
      await store.close();
    }
  });
});

describe('the server refuses', () => {
  const refused = async (user: string, answer: (nonce: Buffer) => Buffer, why: RegExp) => {
    const logins = server.iamLogins.length;
    const error = (await rawLogin(user, answer).catch((e: unknown) => e)) as {
      errno?: number;
      message?: string;
    };
    expect(error?.errno).toBe(1045);
    expect(server.iamLogins.length).toBe(logins + 1);
    expect(lastVerdict()).toMatchObject({ ok: false, message: expect.stringMatching(why) });
  };
  const apiCredentials = async () =>
    await iamLogin({
      kind: 'config-file',
      configFile: apiUser.configFile,
      profile: 'COLLECTOR',
    }).credentials();

  it('an API key IAM does not hold for the user, and the user’s fingerprint with another key', async () => {
    const other = createTestPrincipal({ profile: 'COLLECTOR' });
    try {
      const unknown = await iamLogin({
        kind: 'config-file',
        configFile: other.configFile,
        profile: 'COLLECTOR',
      }).credentials();
      await refused('hwaudit', ociClientAuthPlugin(unknown)(), /no API key with this fingerprint/);
      const impostor = { ...unknown, principal: { ...unknown.principal, fingerprint: apiUser.fingerprint } };
      await refused('hwaudit', ociClientAuthPlugin(impostor)(), /the signature does not verify/);
    } finally {
      other.cleanup();
    }
  });

  it('a tampered signature', async () => {
    const credentials = await apiCredentials();
    await refused(
      'hwaudit',
      (nonce) => {
        const answer = JSON.parse(authResponse(nonce, credentials).toString('utf8')) as { signature: string };
        const bytes = Buffer.from(answer.signature, 'base64');
        bytes[17] = bytes[17]! ^ 0x01;
        return Buffer.from(JSON.stringify({ ...answer, signature: bytes.toString('base64') }));
      },
      /the signature does not verify/,
    );
  });

  it('an expired token, a token IAM did not sign, a token of another tenancy, and a principal that is not the mapped user', async () => {
    const sign = async (profile: ReturnType<typeof session>) =>
      iamCredentials(
        'session-token',
        await ociAuthProvider({
          kind: 'session-token',
          configFile: profile.configFile,
          profile: profile.profile,
        }),
      );
    await refused(
      'hwaudit_alice',
      ociClientAuthPlugin(await sign(session(-60_000)))(),
      /The security token has expired/,
    );

    const forger = generateTestKeyPair();
    const own = await sign(session(3_600_000));
    const forged = craftSecurityToken({
      issuerPrivateKeyPem: forger.privateKeyPem,
      sessionPublicKeyPem: publicOf(own.privateKeyPem),
      subject: ALICE,
      tenancy: apiUser.tenancy,
      expiresAt: new Date(Date.now() + 3_600_000),
    });
    await refused(
      'hwaudit_alice',
      ociClientAuthPlugin({ ...own, token: forged })(),
      /signature does not verify/,
    );

    const elsewhere = craftSecurityToken({
      issuerPrivateKeyPem: issuer.privateKeyPem,
      sessionPublicKeyPem: publicOf(own.privateKeyPem),
      subject: ALICE,
      tenancy: 'ocid1.tenancy.oc1..other',
      expiresAt: new Date(Date.now() + 3_600_000),
    });
    await refused('hwaudit_alice', ociClientAuthPlugin({ ...own, token: elsewhere })(), /another tenancy/);

    await refused(
      'hwaudit_alice',
      ociClientAuthPlugin(await sign(session(3_600_000, 'ocid1.user.oc1..bob')))(),
      /not the mapped user/,
    );
    await refused('hwaudit', ociClientAuthPlugin(own)(), /not the mapped user/);
  });

  it('an answer replayed on another connection (each connection has its own nonce)', async () => {
    const credentials = await apiCredentials();
    let recorded: Buffer | undefined;
    await rawLogin('hwaudit', (nonce) => {
      recorded = authResponse(nonce, credentials);
      return recorded;
    });
    expect(lastVerdict()).toMatchObject({ ok: true });
    await refused('hwaudit', () => recorded!, /the signature does not verify/);
  });

  it('through connectInstance: access denied names the principal, never a key, token or signature', async () => {
    const other = createTestPrincipal({ profile: 'COLLECTOR' });
    try {
      const login = iamLogin({ kind: 'config-file', configFile: other.configFile, profile: 'COLLECTOR' });
      const error = await connectInstance(target('hwaudit'), noSecrets, login).then(
        () => new Error('logged in'),
        (e: Error) => e,
      );
      expect(error.message).toBe(
        `prod-orders/localhost:${server.address.port}: access denied for the collector user hwaudit (IAM login as API key of ${other.user} (fingerprint ${other.fingerprint}): check the account's authentication_oci mapping and the tenancy's mysql_dp_auth policy, docs/iam-authentication.md)`,
      );
      expect(error.message).not.toMatch(/PRIVATE KEY|signature"/);
      expect(keyFingerprint(other.privateKeyPem)).toBe(other.fingerprint);
    } finally {
      other.cleanup();
    }
  });
});

function publicOf(privateKeyPem: string): string {
  return createPublicKey(privateKeyPem).export({ type: 'spki', format: 'pem' }).toString();
}
