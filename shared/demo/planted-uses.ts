// Ground truth of access.planted-credential. The generator knows on whom it planted a credential
// and when, and every session it planned: each person's first successful session per DB system after
// the credential (which the demo never deletes) is one the credential may have made, whoever was
// really behind it (the incident's own login, or the person's normal work).
import { type Story, sec } from './story.js';

export function expectPlantedCredentialUses(story: Story): void {
  for (const planted of story.plantedCredentials) {
    const reached = new Set<string>();
    const sessions = story.sessions
      .filter((s) => s.status === 0 && s.person?.id === planted.person.id && sec(s.start) > planted.ts)
      .sort((a, b) => a.start - b.start);
    for (const s of sessions) {
      if (reached.has(s.db.id)) continue;
      reached.add(s.db.id);
      story.expect(
        'access.planted-credential',
        'incident',
        `${s.purpose?.story ?? 'normal work'}: ${planted.person.name} on ${s.db.name} while ${planted.actor}'s API key on their user was in force`,
        { at: sec(s.start), dbSystemId: s.db.id, principalId: planted.person.id, severity: 'high' },
      );
    }
  }
}
