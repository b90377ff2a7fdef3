// Access review: per person, the IAM groups they held in the period, the MySQL accounts those groups
// map to on each DB system (and their personal 1-to-1 accounts), the privileges of those accounts,
// and what they actually used (sessions active in the period, last use, tables touched): a session
// that connected before the period and was still in use in it is a use in it. Entitlements not used
// in the period are flagged for review; use that no entitlement explains is listed apart. The local
// (non-IAM) accounts used in the period, applications' and systems' accounts, are listed with theirs.
import type { Session } from '../../schemas/session.js';
import { overlaps } from './audit-facts.js';
import {
  BoundedSet,
  bars,
  byText,
  CappedRows,
  column,
  iso,
  keyed,
  lastUseIn,
  notEntitled,
  type ReportDefinition,
  section,
  table,
} from './report.js';

/** Tables listed per entitlement (the ledger has them all). */
const TABLES_LISTED = 25;
/** Source addresses listed per local account. */
const SOURCES_LISTED = 20;
const PERSONAL = '';

type Entitlement = {
  person: string;
  /** The group it comes through, or PERSONAL for a 1-to-1 account. */
  via: string;
  db: string;
  account: string;
  heldFrom: number;
  heldUntil: number | undefined;
  sessions: number;
  lastUse: string | undefined;
  tables: BoundedSet;
};

const keyOf = (person: string, via: string, db: string, account: string) =>
  [person, via, db, account].join('\u0000');

/** A local (non-IAM) account's use in the period. */
type LocalUse = {
  db: string;
  user: string;
  host: string;
  account: string;
  sessions: number;
  lastUse: string;
  sources: BoundedSet;
  tables: BoundedSet;
};

export const accessReview: ReportDefinition = {
  id: 'access-review',
  title: 'Access review',
  description:
    'Who could reach which database, as which MySQL account, through which IAM group, with which privileges, and whether they used it in the period. Unused entitlements are flagged for removal review. The application and system (local, non-IAM) accounts used in the period are listed with their privileges.',
  controls: ['PCI DSS 4.0 7.2.4', 'PCI DSS 4.0 7.2.5', 'PCI DSS 4.0 7.2.5.1', 'PCI DSS 4.0 8.2.6'],
  start(ctx) {
    const { facts, period } = ctx;
    const wanted = (db: string) => ctx.dbSystem === undefined || db === ctx.dbSystem;
    const entitlements = new Map<string, Entitlement>();
    const hold = (
      person: string,
      via: string,
      db: string,
      account: string,
      from: number,
      until: number | undefined,
    ) => {
      const e = keyed(entitlements, keyOf(person, via, db, account), () => ({
        person,
        via,
        db,
        account,
        heldFrom: from,
        heldUntil: until,
        sessions: 0,
        lastUse: undefined,
        tables: new BoundedSet(TABLES_LISTED),
      }));
      e.heldFrom = Math.min(e.heldFrom, from);
      e.heldUntil =
        e.heldUntil === undefined || until === undefined ? undefined : Math.max(e.heldUntil, until);
    };
    // What groups and IAM users map to may change within the period: each mapping in force in it counts.
    const changes = facts.mappings.definitionChanges(period.from, period.to);
    for (const i of facts.intervals()) {
      if (!overlaps(i.from, i.to, period)) continue;
      // What the group mapped to at the end of the stretch within the period, and before each change in it.
      const from = Math.max(period.from, i.from);
      const until = Math.min(period.to, i.to ?? period.to);
      const times = [...changes.filter((t) => t > from && t < until), until].map((t) => t - 1);
      for (const at of times)
        for (const e of facts.groupAccounts(i.group, at))
          if (wanted(e.db)) hold(i.user, i.group, e.db, e.account, i.from, i.to);
    }
    for (const ts of [period.from, ...changes, period.to - 1])
      for (const [person, accounts] of facts.personalAccounts(ts))
        for (const e of accounts)
          if (wanted(e.db)) hold(person, PERSONAL, e.db, e.account, period.from, undefined);

    const outside = new CappedRows();
    const unexplained = new Map<string, number>();
    const local = new Map<string, LocalUse>();
    return {
      session(s: Session) {
        if (s.outcome !== 'success') return;
        const used = lastUseIn(s, period);
        if (s.attribution?.method === 'local-account') {
          const l = keyed(local, `${s.dbSystem.id}\u0000${s.mysqlAccount}`, () => ({
            db: s.dbSystem.id,
            user: s.account.user,
            host: s.account.host,
            account: s.mysqlAccount,
            sessions: 0,
            lastUse: used,
            sources: new BoundedSet(SOURCES_LISTED),
            tables: new BoundedSet(TABLES_LISTED),
          }));
          l.sessions++;
          if (used > l.lastUse) l.lastUse = used;
          if (s.sourceIp) l.sources.add(s.sourceIp);
          l.tables.addAll(s.tables);
          return;
        }
        if (!s.identity) return;
        const via = s.proxied
          ? (s.group?.id ?? '?')
          : s.attribution?.method === 'mapped-user'
            ? PERSONAL
            : undefined;
        if (via === undefined) return;
        const e = entitlements.get(keyOf(s.identity.id, via, s.dbSystem.id, s.account.user));
        if (e === undefined || notEntitled(s)) {
          unexplained.set(s.identity.id, (unexplained.get(s.identity.id) ?? 0) + 1);
          outside.push([
            s.connectTime,
            s.identity.name,
            s.group?.name ?? null,
            s.dbSystem.name,
            s.mysqlAccount,
            s.attribution?.method ?? null,
            s.attribution?.confidence ?? null,
            s.attribution?.problem ?? null,
            s.id,
          ]);
          return;
        }
        e.sessions++;
        if (e.lastUse === undefined || used > e.lastUse) e.lastUse = used;
        e.tables.addAll(s.tables);
      },

      finish() {
        const list = [...entitlements.values()].sort(
          (a, b) =>
            byText(facts.userName(a.person), facts.userName(b.person)) ||
            byText(a.via, b.via) ||
            byText(facts.dbName(a.db), facts.dbName(b.db)) ||
            byText(a.account, b.account),
        );
        const viaName = (via: string) => (via === PERSONAL ? '(personal account)' : facts.groupName(via));
        const people = new Map<string, Entitlement[]>();
        for (const e of list) keyed(people, e.person, () => []).push(e);
        for (const person of unexplained.keys()) keyed(people, person, () => []);
        const personRows = [...people.entries()]
          .sort(([a], [b]) => byText(facts.userName(a), facts.userName(b)))
          .map(([person, es]) => {
            const used = es.filter((e) => e.sessions > 0);
            const last =
              used
                .map((e) => e.lastUse!)
                .sort()
                .at(-1) ?? null;
            return [
              facts.userName(person),
              person,
              facts.userState(person, period.to - 1),
              [...new Set(es.filter((e) => e.via !== PERSONAL).map((e) => facts.groupName(e.via)))].sort(
                byText,
              ),
              es.length,
              used.length,
              es.length - used.length,
              es.reduce((n, e) => n + e.sessions, 0),
              last,
              unexplained.get(person) ?? 0,
            ];
          });
        const unused = list.filter((e) => e.sessions === 0).length;
        const privileged = list.filter((e) => facts.privileged(e.db, e.account)).length;
        const vias = [...new Set(list.map((e) => viaName(e.via)))].sort(byText);
        const locals = [...local.values()].sort(
          (a, b) => byText(facts.dbName(a.db), facts.dbName(b.db)) || byText(a.account, b.account),
        );
        return {
          figures: [
            { label: 'People with database access', value: people.size },
            { label: 'Entitlements (person, DB system, account)', value: list.length },
            { label: 'Privileged entitlements', value: privileged },
            { label: 'Not used in the period', value: unused, status: unused > 0 ? 'attention' : 'ok' },
            { label: 'Local (application and system) accounts used', value: locals.length },
            {
              label: 'Sessions no entitlement explains',
              value: outside.total,
              status: outside.total > 0 ? 'attention' : 'ok',
            },
          ],
          sections: [
            section(
              'people',
              'People',
              'Everyone who held database access in the period, their state in IAM at the end of it, and how much of their access they used.',
              table(
                [
                  column('person', 'Person'),
                  column('person_id', 'IAM user OCID'),
                  column('iam_state', 'IAM state'),
                  column('groups', 'Groups', 'list'),
                  column('entitlements', 'Entitlements', 'count'),
                  column('used', 'Used', 'count'),
                  column('unused', 'Unused', 'count'),
                  column('sessions', 'Sessions', 'count'),
                  column('last_use', 'Last use', 'time'),
                  column('sessions_outside', 'Sessions outside entitlements', 'count'),
                ],
                personRows,
              ),
            ),
            section(
              'entitlements',
              'Entitlements',
              'One row per person, DB system and MySQL account, with the group that grants it (or a personal 1-to-1 account). Held from / until are shown when the membership began or ended inside the period. Privileges are those the configuration lists for the account (dbSystems[].accounts[].grants), else those the last sync read from the server; they are the current ones.',
              table(
                [
                  column('person', 'Person'),
                  column('via', 'Through'),
                  column('db_system', 'DB system'),
                  column('mysql_account', 'MySQL account'),
                  column('privileged', 'Privileged', 'flag'),
                  column('privileges', 'Privileges', 'code'),
                  column('held_from', 'Held from', 'time'),
                  column('held_until', 'Held until', 'time'),
                  column('sessions', 'Sessions', 'count'),
                  column('last_use', 'Last use', 'time'),
                  column('tables', 'Tables touched', 'list'),
                  column('unused', 'Unused in the period', 'flag'),
                ],
                list.map((e) => [
                  facts.userName(e.person),
                  viaName(e.via),
                  facts.dbName(e.db),
                  e.account,
                  facts.privileged(e.db, e.account),
                  facts.grantsOf(e.db, e.account) ?? [],
                  e.heldFrom > period.from ? iso(e.heldFrom) : null,
                  e.heldUntil !== undefined && e.heldUntil < period.to ? iso(e.heldUntil) : null,
                  e.sessions,
                  e.lastUse ?? null,
                  e.tables.sorted(),
                  e.sessions === 0,
                ]),
              ),
              bars(
                'Entitlements used and unused, by group',
                vias,
                [
                  {
                    name: 'Used',
                    values: vias.map(
                      (v) => list.filter((e) => viaName(e.via) === v && e.sessions > 0).length,
                    ),
                  },
                  {
                    name: 'Unused',
                    values: vias.map(
                      (v) => list.filter((e) => viaName(e.via) === v && e.sessions === 0).length,
                    ),
                  },
                ],
                true,
              ),
            ),
            section(
              'outside-entitlements',
              'Sessions outside the entitlements',
              "Sessions of a named person through a group or account they did not hold in the period (identity mismatches, access after revocation). The person is named by the attribution method and with the confidence shown: asserted is the client's word (the login name it sent), confirmed by nothing, so the session may be another's.",
              table(
                [
                  column('connect_time', 'Connected', 'time'),
                  column('person', 'Person'),
                  column('group', 'Group'),
                  column('db_system', 'DB system'),
                  column('mysql_account', 'MySQL account'),
                  column('method', 'Attribution'),
                  column('confidence', 'Confidence'),
                  column('problem', 'Why'),
                  column('session_id', 'Session'),
                ],
                outside,
              ),
            ),
            section(
              'local-accounts',
              'Application and system accounts',
              'Local (non-IAM) MySQL accounts used on each DB system in the period: applications, batch jobs, monitoring, administrators. Privileges as for the entitlements: the configured ones, else those the last sync read; they are the current ones.',
              table(
                [
                  column('db_system', 'DB system'),
                  column('mysql_account', 'MySQL account'),
                  column('privileged', 'Privileged', 'flag'),
                  column('privileges', 'Privileges', 'code'),
                  column('sessions', 'Sessions', 'count'),
                  column('last_use', 'Last use', 'time'),
                  column('sources', 'Source addresses', 'list'),
                  column('tables', 'Tables touched', 'list'),
                ],
                locals.map((l) => [
                  facts.dbName(l.db),
                  l.account,
                  facts.privileged(l.db, l.user),
                  facts.grantsOf(l.db, l.user, l.host) ?? [],
                  l.sessions,
                  l.lastUse,
                  l.sources.sorted(),
                  l.tables.sorted(),
                ]),
              ),
            ),
          ],
        };
      },
    };
  },
};
