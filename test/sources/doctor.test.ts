// doctor against MySQL-protocol servers set up right and wrong (test/mysql-server).
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../shared/config/load-config.js';
import { baseConfig } from '../../shared/detect/timeline.js';
import { diagnoseFleet, loggedClasses, RECOMMENDED_FILTER } from '../../shared/sources/doctor.js';
import { iamLogin } from '../../shared/sources/iam-login.js';
import { connectInstance, instanceTargets, secretReader } from '../../shared/sources/mysql-connection.js';
import { AuditLog } from '../mysql-server/audit-log.js';
import { HeatWaveTestServer, type TestAccount, type TestServerOptions } from '../mysql-server/server.js';
import { type TlsMaterial, tlsMaterial } from '../mysql-server/tls.js';
import { createTestPrincipal, generateTestKeyPair } from '../oci-endpoint/signature.js';

const PASSWORD = 'd0ctor-pw';
const COLLECTOR: TestAccount = {
  user: 'hwaudit',
  password: PASSWORD,
  grants: [
    'AUDIT_ADMIN',
    'SELECT ON mysql.audit_log_filter',
    'SELECT ON mysql.audit_log_user',
    'SELECT ON mysql.user',
    // sync: every account's privileges
    'SELECT ON mysql.global_grants',
    'SELECT ON mysql.role_edges',
    'SELECT ON mysql.db',
    'SELECT ON mysql.tables_priv',
  ],
};
const servers: HeatWaveTestServer[] = [];
let tls: TlsMaterial;
beforeAll(async () => {
  tls = await tlsMaterial();
});
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

async function diagnoseWith(
  opts: TestServerOptions,
  collector: Record<string, unknown> = {},
  account: TestAccount = COLLECTOR,
  /** Accounts the configuration lists besides the standard fleet's. */
  listed: { user: string; host: string; plugin: string; authenticationString: string }[] = [],
) {
  const base = baseConfig();
  const db0 = base.dbSystems![0]!;
  const server = await HeatWaveTestServer.start({
    tls: { key: tls.key, cert: tls.cert },
    audit: new AuditLog(),
    ...opts,
    accounts: [account, ...(opts.accounts ?? [])],
  });
  servers.push(server);
  const { config } = validateConfig({
    ...base,
    dbSystems: [
      {
        ...db0,
        accounts: [...db0.accounts!, ...listed],
        endpoints: [{ host: 'localhost', port: server.address.port }],
      },
    ],
    collector: {
      user: 'hwaudit',
      password: { env: 'PW' },
      tls: 'verify-identity',
      ca: tls.caFile,
      ...collector,
    },
  });
  const read = secretReader({ PW: PASSWORD }, () => Promise.reject(new Error('no vault')));
  const [result] = await diagnoseFleet(instanceTargets(config), config, (t) => connectInstance(t, read));
  return {
    ready: result!.ready,
    checks: Object.fromEntries(result!.checks.map((c) => [c.name, c])),
  };
}

const ociAccounts: TestAccount[] = [
  {
    user: '',
    plugin: 'authentication_oci',
    authenticationString:
      '{"tenancy":"ocid1.tenancy.oc1..example","group_mapping":{"ocid1.group.oc1..dba":"dba_proxy"}}',
  },
  { user: 'carol', plugin: 'authentication_oci', authenticationString: '{"user":"ocid1.user.oc1..carol"}' },
];

describe('doctor', () => {
  it('a healthy instance passes every check', async () => {
    const { ready, checks } = await diagnoseWith({ accounts: ociAccounts }, {});
    expect(ready).toBe(true);
    expect(
      Object.values(checks)
        .filter((c) => c.status !== 'pass')
        .map((c) => c.name),
    ).toEqual(['collector account']);
    expect(checks.TLS!.detail).toBe('TLSv1.3, server certificate verified');
    expect(checks['audit filter']!.detail).toBe(
      "filter log_all for '%' logs connections and statements and table access",
    );
    expect(checks['read buffer']!.detail).toBe(
      "audit_log_read_buffer_size = 32768 bytes, raised to 4194304 for the collector's sessions",
    );
    expect(checks['IAM accounts']!.detail).toBe(
      '2 authentication_oci account(s): 1 group mapping(s), 1 1-to-1',
    );
    expect(checks.privileges!.detail).toBe(
      'sync can read the privileges of 3 account(s), 1 of them privileged',
    );
    expect(checks['collector account']).toMatchObject({
      status: 'warn',
      fix: 'add "hwaudit@%" to dbSystems[].allowedLocalAccounts',
    });
  });

  it('an IAM account the configuration lists with its host in another case is the one the server has', async () => {
    const dave = {
      user: 'dave',
      plugin: 'authentication_oci',
      authenticationString: '{"user":"ocid1.user.oc1..dave"}',
    };
    const { checks } = await diagnoseWith(
      { accounts: [...ociAccounts, { ...dave, host: 'localhost' }] },
      {},
      COLLECTOR,
      [{ ...dave, host: 'LocalHost' }],
    );
    expect(checks['IAM accounts']).toMatchObject({
      status: 'pass',
      detail: '3 authentication_oci account(s): 1 group mapping(s), 2 1-to-1',
    });
  });

  it('passes the filter it recommends, read from the JSON column as a real server sends it', async () => {
    const { ready, checks } = await diagnoseWith({
      filters: [{ name: 'heatwave_iam_audit', filter: JSON.parse(RECOMMENDED_FILTER) }],
      filterUsers: [{ user: '%', host: '', filter: 'heatwave_iam_audit' }],
    });
    expect(ready).toBe(true);
    expect(checks['audit filter']).toEqual({
      name: 'audit filter',
      status: 'pass',
      detail: "filter heatwave_iam_audit for '%' logs connections and statements and table access",
    });
  });

  it('fails an instance whose audit logging is switched off, plugin or component', async () => {
    const plugin = await diagnoseWith({ auditVariables: { disable: 'ON' } });
    expect(plugin.ready).toBe(false);
    expect(plugin.checks['audit logging']).toEqual({
      name: 'audit logging',
      status: 'fail',
      detail: 'audit_log_disable = ON: the server writes no audit events, so collect reads nothing',
      fix: "set audit_log_disable to OFF (on HeatWave, in the DB system's configuration: a custom configuration with audit_log_disable OFF, applied to the DB system)",
    });
    const component = await diagnoseWith({ flavor: 'component', auditVariables: { disable: 'ON' } });
    expect(component.ready).toBe(false);
    expect(component.checks['audit logging']).toMatchObject({
      status: 'fail',
      detail: 'audit_log.disable = ON: the server writes no audit events, so collect reads nothing',
    });
    const on = await diagnoseWith({ flavor: 'component' });
    expect(on.checks['audit logging']).toMatchObject({
      status: 'pass',
      detail: 'on (audit_log.disable = OFF)',
    });
  });

  it('a misconfigured instance fails with the fix for each problem', async () => {
    const withoutSync = (g: string) => g !== 'SELECT ON mysql.db' && g !== 'SELECT ON mysql.tables_priv';
    const collector = { ...COLLECTOR, grants: COLLECTOR.grants!.filter(withoutSync) };
    const { ready, checks } = await diagnoseWith(
      {
        version: '8.0.32-u1-cloud',
        auditVariables: { format: 'NEW' },
        filters: [{ name: 'logins_only', filter: { filter: { class: { name: 'connection' } } } }],
        filterUsers: [{ user: '%', host: '', filter: 'logins_only' }],
        accounts: [
          { user: 'x', plugin: 'authentication_oci', authenticationString: '{"user":"ocid1.user.oc1..x"}' },
        ],
        plugins: [],
      },
      {},
      collector,
    );
    expect(ready).toBe(false);
    expect(checks['server version']).toMatchObject({ status: 'warn', detail: 'MySQL 8.0.32-u1-cloud' });
    expect(checks['JSON format']).toMatchObject({
      status: 'fail',
      fix: 'set audit_log_format=JSON (audit_log_read() reads JSON logs only)',
    });
    expect(checks['audit filter']).toMatchObject({
      status: 'fail',
      detail: "filter logins_only for '%' does not log general events",
    });
    expect(checks['audit filter']!.fix).toContain("audit_log_filter_set_user('%', 'heatwave_iam_audit')");
    expect(checks.authentication_oci).toMatchObject({
      status: 'warn',
      detail: 'plugin not loaded: no IAM logins on this DB system',
    });
    expect(checks['IAM accounts']!.detail).toContain("1 not in the configuration ('x'@'%')");
    expect(checks['IAM accounts']!.fix).toMatch(/^run sync \(it reads them; then doctor --state\)/);
    expect(checks.privileges).toMatchObject({
      status: 'warn',
      detail:
        "cannot read mysql.db, mysql.tables_priv: sync cannot tell the accounts' privileges (the access review's, the privileged accounts, privilege drift) from there",
      fix: 'GRANT SELECT ON mysql.db TO hwaudit; GRANT SELECT ON mysql.tables_priv TO hwaudit;',
    });
  });

  it('checks the instances at once and lists them in the configuration order, a down one failing alone', async () => {
    const up = await HeatWaveTestServer.start({
      accounts: [{ user: 'hwaudit', password: PASSWORD, grants: ['AUDIT_ADMIN'] }],
      audit: new AuditLog(),
    });
    const down = await HeatWaveTestServer.start({ accounts: [], audit: new AuditLog() });
    servers.push(up, down);
    await down.stop();
    const endpoint = (port: number, name: string) => ({ host: '127.0.0.1', port, name });
    const { config } = validateConfig({
      ...baseConfig(),
      dbSystems: [
        {
          ...baseConfig().dbSystems![0]!,
          endpoints: [
            endpoint(down.address.port, 'a-down'),
            { ...endpoint(up.address.port, 'b-up'), role: 'replica' },
            { ...endpoint(up.address.port, 'c-up'), role: 'replica' },
            { host: 'no-such-host.invalid', port: 3306, name: 'd-unnamed', role: 'replica' },
          ],
        },
      ],
      collector: { user: 'hwaudit', password: { env: 'PW' }, tls: 'disabled', allowPlaintext: true },
    });
    const read = secretReader({ PW: PASSWORD }, () => Promise.reject(new Error('no vault')));
    let inFlight = 0;
    let most = 0;
    const results = await diagnoseFleet(instanceTargets(config), config, async (t) => {
      most = Math.max(most, ++inFlight);
      try {
        return await connectInstance(t, read);
      } finally {
        inFlight--;
      }
    });
    expect(most).toBe(4);
    expect(results.map((r) => [r.instance, r.checks[0]!.status])).toEqual([
      ['a-down', 'fail'],
      ['b-up', 'pass'],
      ['c-up', 'pass'],
      ['d-unnamed', 'fail'],
    ]);
    // Refused: a route or a rule to open. A name that does not resolve: the host to check.
    expect(results[0]!.checks[0]!.fix).toMatch(/^open the path from the collector/);
    expect(results[3]!.checks[0]!.fix).toMatch(/^the host name does not resolve from here/);
  });

  it('names the CA certificate file it cannot read, and why', async () => {
    const { config } = validateConfig({
      ...baseConfig(),
      dbSystems: [{ ...baseConfig().dbSystems![0]!, endpoints: [{ host: '127.0.0.1', port: 1 }] }],
      collector: {
        user: 'hwaudit',
        password: { env: 'PW' },
        tls: 'verify-identity',
        ca: '/nonexistent/ca.pem',
      },
    });
    const read = secretReader({ PW: PASSWORD }, () => Promise.reject(new Error('no vault')));
    const [r] = await diagnoseFleet(instanceTargets(config), config, (t) => connectInstance(t, read));
    expect(r!.checks[0]).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining(
        'cannot read the collector CA certificate file /nonexistent/ca.pem (ENOENT)',
      ),
    });
  });

  it('names the privilege and the grants the collector user lacks', async () => {
    const noGrants = await HeatWaveTestServer.start({
      accounts: [{ user: 'hwaudit', password: PASSWORD }],
      audit: new AuditLog(),
    });
    servers.push(noGrants);
    const { config } = validateConfig({
      ...baseConfig(),
      dbSystems: [
        { ...baseConfig().dbSystems![0]!, endpoints: [{ host: '127.0.0.1', port: noGrants.address.port }] },
      ],
      collector: { user: 'hwaudit', password: { env: 'PW' }, tls: 'disabled', allowPlaintext: true },
    });
    const read = secretReader({ PW: PASSWORD }, () => Promise.reject(new Error('no vault')));
    const [r] = await diagnoseFleet(instanceTargets(config), config, (t) => connectInstance(t, read));
    const checks = Object.fromEntries(r!.checks.map((c) => [c.name, c]));
    expect(r!.ready).toBe(false);
    expect(checks.TLS).toMatchObject({ status: 'warn', detail: 'the session is not encrypted' });
    expect(checks['audit_log_read()']).toMatchObject({
      status: 'fail',
      fix: 'GRANT AUDIT_ADMIN ON *.* TO hwaudit;',
    });
    expect(checks['audit filter']!.fix).toBe(
      'GRANT SELECT ON mysql.audit_log_filter TO hwaudit; GRANT SELECT ON mysql.audit_log_user TO hwaudit;',
    );
    expect(checks['IAM accounts']!.fix).toBe('GRANT SELECT ON mysql.user TO hwaudit;');
  });

  it('an unreachable instance fails "reachable" with the network fix', async () => {
    const gone = await HeatWaveTestServer.start({});
    const port = gone.address.port;
    await gone.stop();
    const { config } = validateConfig({
      ...baseConfig(),
      dbSystems: [{ ...baseConfig().dbSystems![0]!, endpoints: [{ host: '127.0.0.1', port }] }],
      collector: { user: 'hwaudit', password: { env: 'PW' } },
    });
    const read = secretReader({ PW: PASSWORD }, () => Promise.reject(new Error('no vault')));
    const [r] = await diagnoseFleet(instanceTargets(config), config, (t) => connectInstance(t, read));
    expect(r!.checks).toEqual([
      expect.objectContaining({
        name: 'reachable',
        status: 'fail',
        fix: expect.stringContaining(`security list or NSG on port ${port}`),
      }),
    ]);
  });

  it('with auth: iam, says which principal logged in and as which account; an unmapped one fails "IAM login" with the mapping to create', async () => {
    const principal = createTestPrincipal({ profile: 'DOCTOR' });
    const stranger = createTestPrincipal({ profile: 'DOCTOR' });
    try {
      const { tenancy, user, fingerprint, publicKeyPem } = principal;
      const iamServer = await HeatWaveTestServer.start({
        audit: new AuditLog(),
        iam: {
          issuerPublicKeyPem: generateTestKeyPair().publicKeyPem,
          apiKeys: [{ tenancy, user, fingerprint, publicKeyPem }],
        },
        accounts: [
          {
            user: 'hwaudit',
            grants: COLLECTOR.grants!,
            plugin: 'authentication_oci',
            authenticationString: JSON.stringify({ tenancy, user }),
          },
        ],
      });
      servers.push(iamServer);
      const { config } = validateConfig({
        ...baseConfig(),
        dbSystems: [
          {
            ...baseConfig().dbSystems![0]!,
            iamOnly: true,
            endpoints: [{ host: '127.0.0.1', port: iamServer.address.port }],
          },
        ],
        collector: { user: 'hwaudit', auth: 'iam', tls: 'disabled', allowPlaintext: true },
      });
      const diagnoseAs = async (who: typeof principal) => {
        const login = iamLogin({ kind: 'config-file', configFile: who.configFile, profile: 'DOCTOR' });
        const [r] = await diagnoseFleet(instanceTargets(config), config, (t) =>
          connectInstance(t, () => Promise.reject(new Error('no password')), login),
        );
        return { ready: r!.ready, checks: Object.fromEntries(r!.checks.map((c) => [c.name, c])) };
      };

      const ok = await diagnoseAs(principal);
      expect(ok.checks['IAM login']).toEqual({
        name: 'IAM login',
        status: 'pass',
        detail: `API key of ${user} (fingerprint ${fingerprint}) of tenancy ${tenancy}, as account hwaudit@%`,
      });
      expect(ok.checks['collector account']).toMatchObject({
        status: 'pass',
        detail: 'hwaudit logs in through authentication_oci, not as a local account',
      });
      expect(ok.checks['audit_log_read()']!.status).toBe('pass');

      const refused = await diagnoseAs(stranger);
      expect(refused.ready).toBe(false);
      expect(Object.keys(refused.checks)).toEqual(['IAM login']);
      expect(refused.checks['IAM login']!.status).toBe('fail');
      expect(refused.checks['IAM login']!.detail).toContain(
        `access denied for the collector user hwaudit (IAM login as API key of ${stranger.user} (fingerprint ${stranger.fingerprint})`,
      );
      expect(refused.checks['IAM login']!.fix).toBe(
        `CREATE USER 'hwaudit'@'%' IDENTIFIED WITH 'authentication_oci' AS '{"tenancy":"${tenancy}","user":"${stranger.user}"}'; GRANT AUDIT_ADMIN ON *.* TO 'hwaudit'@'%'; and in the tenancy's root compartment: Allow service mysql_dp_auth to {AUTHENTICATION_INSPECT, GROUP_MEMBERSHIP_INSPECT, DYNAMIC_GROUP_INSPECT} in tenancy`,
      );

      const missing = await diagnoseAs({ ...principal, configFile: `${principal.dir}/no-such-config` });
      expect(missing.checks['IAM login']).toMatchObject({
        status: 'fail',
        detail: expect.stringContaining('cannot build OCI config-file credentials'),
        fix: 'check HWAUDIT_OCI_AUTH, HWAUDIT_OCI_CONFIG_FILE and HWAUDIT_OCI_PROFILE: docs/iam-authentication.md',
      });
    } finally {
      principal.cleanup();
      stranger.cleanup();
    }
  });

  it('reads which classes a filter logs', () => {
    expect(loggedClasses({ filter: {} })).toEqual({ connection: true, general: true, table_access: true });
    expect(loggedClasses({ filter: { log: false } })).toEqual({
      connection: false,
      general: false,
      table_access: false,
    });
    expect(
      loggedClasses({ filter: { class: [{ name: 'connection' }, { name: ['general', 'table_access'] }] } }),
    ).toEqual({
      connection: true,
      general: true,
      table_access: true,
    });
    expect(loggedClasses({ filter: { log: true, class: { name: 'table_access', log: false } } })).toEqual({
      connection: true,
      general: true,
      table_access: false,
    });
    expect(loggedClasses(null)).toEqual({ connection: false, general: false, table_access: false });
  });
});
