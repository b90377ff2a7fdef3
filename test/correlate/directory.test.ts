import { describe, expect, it } from 'vitest';
import { Directory } from '../../shared/correlate/directory.js';
import { EntityCache } from '../../shared/state/entity-cache.js';

const DOMAIN_A = 'ocid1.domain.oc1..a';
const DOMAIN_B = 'ocid1.domain.oc1..b';

function directory(): Directory {
  const d = new Directory(new EntityCache());
  d.seed({
    key: 'seed',
    users: [],
    groups: [
      { id: 'ocid1.group.oc1..a-dbas', name: 'DBAs', aliases: ['guid-a'], domain: DOMAIN_A },
      { id: 'ocid1.group.oc1..b-dbas', name: 'DBAs', aliases: ['guid-b'], domain: DOMAIN_B },
      { id: 'ocid1.group.oc1..ops', name: 'Ops', aliases: [] },
    ],
  });
  return d;
}

describe('directory groups', () => {
  it('finds a group by OCID or by its identity-domain id, case-insensitively', () => {
    const d = directory();
    expect(d.findGroup('ocid1.group.oc1..a-dbas')?.id).toBe('ocid1.group.oc1..a-dbas');
    expect(d.findGroup('GUID-B')?.id).toBe('ocid1.group.oc1..b-dbas');
  });

  it('finds a group by name only when one group has it (in the event domain when it says)', () => {
    const d = directory();
    expect(d.findGroup(undefined, 'dbas')).toBeUndefined();
    expect(d.findGroup('unknown-guid', 'DBAs', DOMAIN_B)?.id).toBe('ocid1.group.oc1..b-dbas');
    expect(d.findGroup(undefined, 'Ops', DOMAIN_A)?.id).toBe('ocid1.group.oc1..ops');
    // A new OCID under an old name is another group (deleted and created again).
    expect(d.findGroup('ocid1.group.oc1..ops-again', 'Ops')).toBeUndefined();
  });

  it('learns an id found by name as an alias; records a group it cannot find as unknown', () => {
    const d = directory();
    expect(d.noteGroup('guid-new', 'DBAs', DOMAIN_A)).toMatchObject({
      row: { id: 'ocid1.group.oc1..a-dbas' },
      known: true,
    });
    expect(d.findGroup('guid-new')?.id).toBe('ocid1.group.oc1..a-dbas');
    expect(d.noteGroup('guid-x', 'Nobody', DOMAIN_A)).toMatchObject({ row: { id: 'guid-x' }, known: false });
    expect(d.noteGroup('guid-x', 'Nobody', DOMAIN_A)?.known).toBe(false);
    d.seed({ key: 'snapshot', users: [], groups: [{ id: 'guid-x', name: 'Nobody', aliases: [] }] });
    expect(d.noteGroup('guid-x', 'Nobody', DOMAIN_A)?.known).toBe(true);
  });

  it('a seed adds aliases and names a group the configuration named only by id; its break-glass setting wins', () => {
    const d = new Directory(new EntityCache());
    d.seed({ key: 'config', users: [], groups: [{ id: 'g', name: 'g', aliases: [], breakGlassMs: 60_000 }] });
    d.seed({ key: 'snapshot', users: [], groups: [{ id: 'g', name: 'BreakGlass', aliases: ['guid-g'] }] });
    expect(d.group('g')).toMatchObject({ name: 'BreakGlass', aliases: ['guid-g'], breakGlassMs: 60_000 });
    expect(d.findGroup(undefined, 'breakglass')?.id).toBe('g');
  });
});

describe('directory users', () => {
  it('a user created under the name of a deleted one is another person, whom the name then means', () => {
    const d = new Directory(new EntityCache());
    d.seed({
      key: 'seed',
      users: [
        { id: 'ocid1.user.oc1..alice', name: 'alice@example.com', aliases: ['guid-alice'], state: 'active' },
      ],
      groups: [],
    });
    d.setUserState('ocid1.user.oc1..alice', 'deleted', 100, 'deleted');
    const again = d.noteUser('ocid1.user.oc1..alice2', 'alice@example.com', 200);
    expect(again?.id).toBe('ocid1.user.oc1..alice2');
    expect(d.user('ocid1.user.oc1..alice')?.aliases).toEqual(['guid-alice']);
    expect(d.findUser('ALICE@example.com')?.id).toBe('ocid1.user.oc1..alice2');
    expect(d.findUser('alice@example.com', 50)?.id).toBe('ocid1.user.oc1..alice2'); // both live then: the newer
    expect(d.findUser('guid-alice')?.id).toBe('ocid1.user.oc1..alice');
    // The same, with the index built again from the stored rows.
    const cache = new EntityCache();
    const first = new Directory(cache);
    first.seed({ key: 's', users: [{ id: 'u2', name: 'bob', aliases: [], state: 'active' }], groups: [] });
    first.seed({ key: 's2', users: [{ id: 'u1', name: 'bob', aliases: [], state: 'deleted' }], groups: [] });
    expect(new Directory(cache).findUser('bob')?.id).toBe('u2');
    // An identity-domain id it does not know still resolves by name.
    expect(d.noteUser('guid-alice2', 'alice@example.com', 300)?.id).toBe('ocid1.user.oc1..alice2');
  });
});
