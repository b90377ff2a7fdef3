// The auth factory and the client factory, proven by requests the signature-checking endpoint
// accepts: API key from a config file profile, a session-token profile (`oci session
// authenticate` layout), and a resource principal (RPST v2.2 from env vars, as inside Functions).
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { AuditError } from '../../shared/errors.js';
import { ociAuthProvider, ociAuthSpecFromEnv, providerRegionId } from '../../shared/oci/auth.js';
import { createOciClient, ociEndpointOverride } from '../../shared/oci/clients.js';
import { notificationsService } from '../oci-endpoint/notifications.js';
import { type OciEndpoint, startOciEndpoint } from '../oci-endpoint/server.js';
import {
  craftSecurityToken,
  createTestPrincipal,
  generateTestKeyPair,
  type TestKeyPair,
  type TestPrincipal,
  writeSessionProfile,
} from '../oci-endpoint/signature.js';

const TOPIC = 'ocid1.onstopic.oc1..alerts';
let principal: TestPrincipal;
let issuer: TestKeyPair;
let endpoint: OciEndpoint;

beforeAll(async () => {
  principal = createTestPrincipal({ profile: 'AUDIT' });
  issuer = generateTestKeyPair();
  endpoint = await startOciEndpoint({
    ...principal.endpointOptions,
    tokenIssuerPublicKeyPem: issuer.publicKeyPem,
    handlers: [notificationsService().handler],
  });
});

afterAll(async () => {
  await endpoint.close();
  principal.cleanup();
});

afterEach(() => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
});

async function publishWith(spec: Parameters<typeof ociAuthProvider>[0]) {
  const auth = await ociAuthProvider(spec);
  const client = await createOciClient('notifications', {
    auth,
    env: { HWAUDIT_OCI_ENDPOINT_NOTIFICATIONS: endpoint.url },
  });
  await client.publishMessage({ topicId: TOPIC, messageDetails: { body: 'auth check' } });
  const last = endpoint.requests.at(-1)!;
  expect(last.status).toBe(200);
  return { auth, keyId: last.keyId! };
}

/** A session-token profile of alice, in the principal's folder. */
function sessionProfile(opts: { expiresAt: Date; trailingNewline: boolean }) {
  return writeSessionProfile({
    dir: principal.dir,
    issuerPrivateKeyPem: issuer.privateKeyPem,
    subject: 'ocid1.user.oc1..alice',
    tenancy: principal.tenancy,
    ...opts,
  });
}

describe('ociAuthSpecFromEnv', () => {
  it('reads the kind, config file and profile; defaults by environment', () => {
    expect(ociAuthSpecFromEnv({})).toEqual({ kind: 'config-file' });
    expect(ociAuthSpecFromEnv({ OCI_RESOURCE_PRINCIPAL_VERSION: '2.2' })).toEqual({
      kind: 'resource-principal',
    });
    expect(
      ociAuthSpecFromEnv({
        HWAUDIT_OCI_AUTH: 'session-token',
        HWAUDIT_OCI_CONFIG_FILE: '/x/config',
        HWAUDIT_OCI_PROFILE: ' P ',
      }),
    ).toEqual({ kind: 'session-token', configFile: '/x/config', profile: 'P' });
    expect(
      ociAuthSpecFromEnv({ HWAUDIT_OCI_AUTH: 'instance-principal', HWAUDIT_OCI_PROFILE: 'ignored' }),
    ).toEqual({
      kind: 'instance-principal',
    });
    expect(ociAuthSpecFromEnv({ HWAUDIT_OCI_AUTH: '  ', OCI_RESOURCE_PRINCIPAL_VERSION: '' })).toEqual({
      kind: 'config-file',
    });
  });

  it('refuses an unknown kind with CONFIG_INVALID naming the variable', () => {
    const error = (() => {
      try {
        ociAuthSpecFromEnv({ HWAUDIT_OCI_AUTH: 'api-key' });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(AuditError);
    expect(error).toMatchObject({ code: 'CONFIG_INVALID', details: { variable: 'HWAUDIT_OCI_AUTH' } });
  });
});

describe('ociAuthProvider against the signature-checking endpoint', () => {
  it('config-file profile: API key, keyId tenancy/user/fingerprint', async () => {
    const spec = ociAuthSpecFromEnv({
      HWAUDIT_OCI_AUTH: 'config-file',
      HWAUDIT_OCI_CONFIG_FILE: principal.configFile,
      HWAUDIT_OCI_PROFILE: 'AUDIT',
    });
    const { auth, keyId } = await publishWith(spec);
    expect(keyId).toBe(principal.keyId);
    expect(providerRegionId(auth)).toBe('us-ashburn-1');
  });

  it('session-token profile: ST$<token> keyId signed by the session key (token file newline tolerated)', async () => {
    const { configFile, token } = sessionProfile({
      expiresAt: new Date(Date.now() + 3600_000),
      trailingNewline: true,
    });
    const { auth, keyId } = await publishWith({ kind: 'session-token', configFile, profile: 'SESSION' });
    expect(keyId).toBe(`ST$${token}`);
    expect(providerRegionId(auth)).toBe('eu-frankfurt-1');
  });

  it('session-token profile with an expired token: the endpoint refuses it', async () => {
    vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const { configFile } = sessionProfile({
      expiresAt: new Date(Date.now() - 60_000),
      trailingNewline: false,
    });
    const auth = await ociAuthProvider({ kind: 'session-token', configFile, profile: 'SESSION' });
    const client = await createOciClient('notifications', { auth, endpoint: endpoint.url });
    await expect(
      client.publishMessage({ topicId: TOPIC, messageDetails: { body: 'x' } }),
    ).rejects.toMatchObject({
      statusCode: 401,
      serviceCode: 'NotAuthenticated',
    });
    expect(endpoint.requests.at(-1)?.authFailure).toBe('invalid-token');
  });

  it('resource principal v2.2 from env vars (RPST + private PEM, content or file): signs requests the endpoint accepts', async () => {
    const session = generateTestKeyPair();
    const rpst = craftSecurityToken({
      issuerPrivateKeyPem: issuer.privateKeyPem,
      sessionPublicKeyPem: session.publicKeyPem,
      subject: 'ocid1.fnfunc.oc1..audit',
      tenancy: principal.tenancy,
      expiresAt: new Date(Date.now() + 3600_000),
      claims: {
        res_tenant: principal.tenancy,
        res_compartment: 'ocid1.compartment.oc1..sec',
        res_type: 'fnfunc',
      },
    });
    vi.stubEnv('OCI_RESOURCE_PRINCIPAL_VERSION', '2.2');
    vi.stubEnv('OCI_RESOURCE_PRINCIPAL_RPST', rpst);
    vi.stubEnv('OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM', session.privateKeyPem);
    vi.stubEnv('OCI_RESOURCE_PRINCIPAL_REGION', 'phx');
    const spec = ociAuthSpecFromEnv(process.env);
    expect(spec).toEqual({ kind: 'resource-principal' });
    const { auth, keyId } = await publishWith(spec);
    expect(keyId).toBe(`ST$${rpst}`);
    expect(providerRegionId(auth)).toBe('us-phoenix-1');
    const claims = auth as unknown as { getStringClaim(k: string): Promise<string | null> };
    expect(await claims.getStringClaim('res_compartment')).toBe('ocid1.compartment.oc1..sec');

    // As Functions mounts them: absolute paths instead of contents.
    const pemFile = join(principal.dir, 'rp.pem');
    const rpstFile = join(principal.dir, 'rpst');
    writeFileSync(pemFile, session.privateKeyPem);
    writeFileSync(rpstFile, rpst);
    vi.stubEnv('OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM', pemFile);
    vi.stubEnv('OCI_RESOURCE_PRINCIPAL_RPST', rpstFile);
    expect((await publishWith(spec)).keyId).toBe(`ST$${rpst}`);
  });

  it('fails with CONFIG_INVALID, without key material, when credentials are missing', async () => {
    await expect(
      ociAuthProvider({ kind: 'config-file', configFile: principal.configFile, profile: 'NOPE' }),
    ).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      details: { auth: 'config-file', profile: 'NOPE' },
      // Which profile of which file, and the SDK's reason without its pointers to documentation.
      message: `cannot build OCI config-file credentials (profile NOPE of ${principal.configFile}): No profile named NOPE exists in the configuration file.`,
    });
    // An API-key profile is not a session-token profile.
    const error = await ociAuthProvider({
      kind: 'session-token',
      configFile: principal.configFile,
      profile: 'AUDIT',
    }).catch((e) => e);
    expect(error).toMatchObject({ code: 'CONFIG_INVALID' });
    expect(String(error.message)).toContain('security_token_file');
    expect(String(error.message)).not.toContain('PRIVATE KEY');

    vi.stubEnv('OCI_RESOURCE_PRINCIPAL_VERSION', '2.2');
    vi.stubEnv('OCI_RESOURCE_PRINCIPAL_RPST', '');
    await expect(ociAuthProvider({ kind: 'resource-principal' })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
    });
  });
});

describe('createOciClient', () => {
  it('resolves endpoints: per-service variable, then the shared one, then the region', async () => {
    expect(
      ociEndpointOverride('audit', {
        HWAUDIT_OCI_ENDPOINT: 'http://127.0.0.1:9/',
        HWAUDIT_OCI_ENDPOINT_AUDIT: 'https://audit.example/x/',
      }),
    ).toBe('https://audit.example/x');
    expect(ociEndpointOverride('audit', { HWAUDIT_OCI_ENDPOINT: 'http://127.0.0.1:9/' })).toBe(
      'http://127.0.0.1:9',
    );
    expect(ociEndpointOverride('audit', {})).toBeUndefined();
    expect(() => ociEndpointOverride('audit', { HWAUDIT_OCI_ENDPOINT: 'ftp://x' })).toThrow(
      /HWAUDIT_OCI_ENDPOINT: expected an http/,
    );
    expect(() => ociEndpointOverride('audit', { HWAUDIT_OCI_ENDPOINT_AUDIT: 'https://u:secret@x' })).toThrow(
      /credentials/,
    );

    const auth = await ociAuthProvider({
      kind: 'config-file',
      configFile: principal.configFile,
      profile: 'AUDIT',
    });
    const onsClient = await createOciClient('notifications', { auth, env: {} });
    expect(onsClient.endpoint).toBe('https://notification.us-ashburn-1.oraclecloud.com/20181201');
    const frankfurt = await createOciClient('objectstorage', {
      auth,
      env: { HWAUDIT_OCI_REGION: 'eu-frankfurt-1' },
    });
    // Object Storage keeps a dual-stack template that the SDK resolves per request.
    expect(frankfurt.endpoint).toMatch(/^https:\/\/objectstorage\.eu-frankfurt-1\./);
    const audit = await createOciClient('audit', { auth, env: { HWAUDIT_OCI_ENDPOINT: endpoint.url } });
    expect(audit.endpoint).toBe(`${endpoint.url}/20190901`);
    const search = await createOciClient('loggingsearch', { auth, endpoint: `${endpoint.url}/` });
    expect(search.endpoint).toBe(`${endpoint.url}/20190909`);
    await expect(createOciClient('streaming', { auth, env: {} })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      details: { variable: 'HWAUDIT_OCI_ENDPOINT_STREAMING' },
    });
  });

  it('a call that gets no answer fails naming the host, and the SDK writes nothing to the console', async () => {
    // A port nothing listens on.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const script = `
      import { ociAuthProvider } from './shared/oci/auth.ts';
      import { callWithRetry, createOciClient } from './shared/oci/clients.ts';
      const auth = await ociAuthProvider({ kind: 'config-file', configFile: ${JSON.stringify(principal.configFile)}, profile: 'AUDIT' });
      const audit = await createOciClient('audit', { auth, endpoint: 'http://127.0.0.1:${port}' });
      const list = () => audit.listEvents({ compartmentId: 'ocid1.tenancy.oc1..t', startTime: new Date(0), endTime: new Date(60000) });
      await callWithRetry('listEvents', list, { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2 })
        .catch((e) => process.stdout.write(e.message));
    `;
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: join(import.meta.dirname, '..', '..'),
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(run.stdout).toBe(`listEvents failed: no answer from 127.0.0.1:${port}`);
    // The SDK's retrier wrote "All retry attempts have exhausted ... [object Object]" per attempt.
    expect(run.stderr).toBe('');
  });

  it('loads no OCI SDK package until a client or provider is created', () => {
    const script = `
      import { createRequire } from 'node:module';
      const loaded = () => Object.keys(createRequire(import.meta.url).cache).filter((k) => k.includes('/node_modules/oci-')).length;
      await import('./shared/oci/clients.ts');
      await import('./shared/oci/auth.ts');
      await import('./shared/emit/stream-sink.ts');
      await import('./shared/emit/notifications-sink.ts');
      await import('./shared/emit/object-storage-writer.ts');
      const before = loaded();
      await import('oci-ons');
      process.stdout.write(JSON.stringify({ before, after: loaded() }));
    `;
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: join(import.meta.dirname, '..', '..'),
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(run.stderr).toBe('');
    const { before, after } = JSON.parse(run.stdout) as { before: number; after: number };
    expect(before).toBe(0);
    expect(after).toBeGreaterThan(0);
  });
});
