// Attribution evidence: how many sessions on shared (group-proxied) MySQL accounts are tied to a
// person, by which method and with which confidence, per DB system and account; the sessions that
// are not; and those tied to someone the directory says was not entitled at the time. Also every
// IAM session (shared or personal) made while a credential someone else created on its person was in force.
import type { Cell } from '../../schemas/report.js';
import {
  ATTRIBUTION_METHODS,
  CONFIDENCES,
  type LoginState,
  type Session,
  sessionPlantedCredentials,
} from '../../schemas/session.js';
import {
  bars,
  byText,
  CappedRows,
  column,
  connectedIn,
  keyed,
  notEntitled,
  percent,
  type ReportDefinition,
  section,
  Tally,
  table,
} from './report.js';

/** The methods that can name a person behind a group login, strongest first. */
const GROUP_METHODS = ['external-user', 'login-name', 'signon-correlated'] as const;
const TIED_CONFIDENCES = CONFIDENCES.filter((c) => c !== 'none');

const SESSION_COLUMNS = [
  column('connect_time', 'Connected', 'time'),
  column('db_system', 'DB system'),
  column('mysql_account', 'MySQL account'),
  column('login_user', 'Login name'),
  column('source_ip', 'Source address'),
];

/** A session's cells, with the account and login user of one of its logins (default: the last). */
function sessionCells(s: Session, login: LoginState = s): Cell[] {
  return [s.connectTime, s.dbSystem.name, login.mysqlAccount, login.login.user, s.sourceIp ?? null];
}

type AccountRow = { db: string; account: string; sessions: number; methods: Tally; confidences: Tally };

export const attributionEvidence: ReportDefinition = {
  id: 'attribution-evidence',
  title: 'Attribution evidence for shared accounts',
  description:
    'Sessions on shared MySQL accounts (reached through an IAM group mapping) and whether each is tied to an individual, by method and confidence; the sessions that are not tied to anyone.',
  controls: ['PCI DSS 4.0 8.2.2', 'PCI DSS 4.0 10.2.1', 'PCI DSS 4.0 10.2.2'],
  start({ period }) {
    const accounts = new Map<string, AccountRow>();
    const combos = new Tally();
    const untied = new CappedRows();
    const questioned = new CappedRows();
    const planted = new CappedRows();
    let individual = 0;
    let local = 0;
    return {
      session(s) {
        // Each session counts once, in the period it connected in (not in each it was active in).
        if (s.outcome !== 'success' || !connectedIn(s, period)) return;
        for (const { login, credential: c } of sessionPlantedCredentials(s))
          planted.push([
            ...sessionCells(s, login),
            login.identity?.name ?? null,
            login.attribution?.confidence ?? null,
            c.type,
            c.actor.name ?? c.actor.id ?? null,
            c.time,
            c.key,
            s.id,
          ]);
        if (!s.proxied) {
          if (s.attribution?.method === 'mapped-user') individual++;
          else if (s.attribution?.method === 'local-account') local++;
          return;
        }
        const a = keyed(accounts, `${s.dbSystem.id}\u0000${s.mysqlAccount}`, () => ({
          db: s.dbSystem.name,
          account: s.mysqlAccount,
          sessions: 0,
          methods: new Tally(),
          confidences: new Tally(),
        }));
        a.sessions++;
        const method = s.identity ? (s.attribution?.method ?? 'unattributed') : 'unattributed';
        const confidence = s.identity ? (s.attribution?.confidence ?? 'none') : 'none';
        a.methods.add(method);
        a.confidences.add(confidence);
        combos.add(`${method}\u0000${confidence}`);
        if (!s.identity) untied.push([...sessionCells(s), s.attribution?.problem ?? 'no-evidence', s.id]);
        else if (notEntitled(s))
          questioned.push([
            ...sessionCells(s),
            s.identity.name,
            s.attribution?.method ?? null,
            s.attribution?.problem ?? null,
            s.id,
          ]);
      },

      finish() {
        const rows = [...accounts.values()].sort(
          (a, b) => byText(a.db, b.db) || byText(a.account, b.account),
        );
        const shared = rows.reduce((n, a) => n + a.sessions, 0);
        const tied = shared - untied.total;
        const sumConfidence = (c: string) => rows.reduce((n, a) => n + a.confidences.get(c), 0);
        // A share of no session is none at all (not 100 % for each confidence at once).
        const share = (part: number) => (shared === 0 ? 'n/a' : `${percent(part, shared)} %`);
        const comboRows = ATTRIBUTION_METHODS.flatMap((m) =>
          CONFIDENCES.filter((c) => combos.get(`${m}\u0000${c}`) > 0).map((c) => {
            const n = combos.get(`${m}\u0000${c}`);
            return [m, c, n, percent(n, shared)];
          }),
        );
        return {
          figures: [
            { label: 'Sessions on shared accounts', value: shared },
            { label: 'Tied to a person', value: share(tied) },
            ...TIED_CONFIDENCES.map((c) => ({
              label: `Confidence ${c}`,
              value: share(sumConfidence(c)),
            })),
            {
              label: 'Not tied to anyone',
              value: untied.total,
              status: untied.total > 0 ? ('attention' as const) : ('ok' as const),
            },
            {
              label: 'Tied to someone not entitled at the time',
              value: questioned.total,
              status: questioned.total > 0 ? ('attention' as const) : ('ok' as const),
            },
            {
              label: 'Made while a credential someone else created was in force',
              value: planted.total,
              status: planted.total > 0 ? ('attention' as const) : ('ok' as const),
            },
            { label: 'Sessions on personal (1-to-1) IAM accounts', value: individual },
            { label: 'Sessions on local accounts', value: local },
          ],
          sections: [
            section(
              'by-account',
              'By DB system and shared account',
              'Successful sessions on each group-proxied account, how many are tied to a person, and how.',
              table(
                [
                  column('db_system', 'DB system'),
                  column('mysql_account', 'MySQL account'),
                  column('sessions', 'Sessions', 'count'),
                  column('tied', 'Tied to a person', 'count'),
                  column('tied_percent', 'Tied', 'percent'),
                  ...TIED_CONFIDENCES.map((c) => column(c, c[0]!.toUpperCase() + c.slice(1), 'count')),
                  ...GROUP_METHODS.map((m) => column(m.replaceAll('-', '_'), m, 'count')),
                  column('not_tied', 'Not tied', 'count'),
                ],
                rows.map((a) => {
                  const none = a.methods.get('unattributed');
                  return [
                    a.db,
                    a.account,
                    a.sessions,
                    a.sessions - none,
                    percent(a.sessions - none, a.sessions),
                    ...TIED_CONFIDENCES.map((c) => a.confidences.get(c)),
                    ...GROUP_METHODS.map((m) => a.methods.get(m)),
                    none,
                  ];
                }),
              ),
              bars(
                'Sessions on shared accounts by confidence',
                rows.map((a) => `${a.account} on ${a.db}`),
                CONFIDENCES.map((c) => ({ name: c, values: rows.map((a) => a.confidences.get(c)) })),
                true,
              ),
            ),
            section(
              'by-method',
              'By method and confidence',
              'verified: the server or a 1-to-1 mapping names the person; corroborated: a claim confirmed by an IAM sign-on; asserted: a claim the client made (the login name) without confirmation.',
              table(
                [
                  column('method', 'Method'),
                  column('confidence', 'Confidence'),
                  column('sessions', 'Sessions', 'count'),
                  column('share_percent', 'Share', 'percent'),
                ],
                comboRows,
              ),
            ),
            section(
              'not-tied',
              'Sessions not tied to a person',
              'Group-proxied sessions nobody could be named for (access.unattributed findings).',
              table([...SESSION_COLUMNS, column('problem', 'Why'), column('session_id', 'Session')], untied),
            ),
            section(
              'not-entitled',
              'Sessions tied to someone not entitled at the time',
              'The person named behind the session was not a member of a group mapped to the account, had left it, or was no longer an active IAM user (access.identity-mismatch and access.after-revocation findings).',
              table(
                [
                  ...SESSION_COLUMNS,
                  column('person', 'Person'),
                  column('method', 'Method'),
                  column('problem', 'Why'),
                  column('session_id', 'Session'),
                ],
                questioned,
              ),
            ),
            section(
              'planted-credential',
              'Sessions made while a credential someone else created was in force',
              "IAM sessions (shared or personal accounts) of a person on whose IAM user another principal had created a credential not deleted by then: whoever holds it may have made them; one row per credential (access.planted-credential findings; their confidence is lowered, see the session ledger's attribution).",
              table(
                [
                  ...SESSION_COLUMNS,
                  column('person', 'Person'),
                  column('confidence', 'Confidence'),
                  column('credential', 'Credential'),
                  column('created_by', 'Created by'),
                  column('created_at', 'Created', 'time'),
                  column('credential_event', 'IAM event'),
                  column('session_id', 'Session'),
                ],
                planted,
              ),
            ),
          ],
        };
      },
    };
  },
};
