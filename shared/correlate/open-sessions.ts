// The sessions open on each server, by connection id. Connection ids are per server: a DB
// system's instances (primary, replicas) each have their own. Lookups go DB system -> instance ->
// connection id, so the hot path (every statement) builds no key string.
import type { Session } from '../../schemas/session.js';

export class OpenSessions {
  private readonly byDb = new Map<string, Map<string, Map<number, Session>>>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  get(dbSystemId: string, instance: string | undefined, connectionId: number): Session | undefined {
    return this.server(dbSystemId, instance)?.get(connectionId);
  }

  set(s: Session): void {
    let instances = this.byDb.get(s.dbSystem.id);
    if (!instances) {
      instances = new Map();
      this.byDb.set(s.dbSystem.id, instances);
    }
    let conns = instances.get(s.instance ?? '');
    if (!conns) {
      conns = new Map();
      instances.set(s.instance ?? '', conns);
    }
    if (!conns.has(s.connectionId)) this.count++;
    conns.set(s.connectionId, s);
  }

  /** Closes the connection of `s`. */
  delete(s: Session): void {
    if (this.server(s.dbSystem.id, s.instance)?.delete(s.connectionId)) this.count--;
  }

  /** Whether `s` is the session open on its connection. */
  isOpen(s: Session): boolean {
    return this.get(s.dbSystem.id, s.instance, s.connectionId) === s;
  }

  /**
   * Forgets the sessions of one server (it restarted, or another took over) that connected before
   * `before`, and returns them by connection id.
   */
  closeServer(dbSystemId: string, instance: string | undefined, before: number): Session[] {
    const conns = this.server(dbSystemId, instance);
    if (!conns) return [];
    const closed = [...conns.values()]
      .filter((s) => s.connectTs < before)
      .sort((a, b) => a.connectionId - b.connectionId);
    for (const s of closed) conns.delete(s.connectionId);
    this.count -= closed.length;
    return closed;
  }

  /** Forgets the sessions `drop` picks. */
  deleteWhere(drop: (s: Session) => boolean): void {
    for (const instances of this.byDb.values())
      for (const conns of instances.values())
        for (const [id, s] of conns)
          if (drop(s)) {
            conns.delete(id);
            this.count--;
          }
  }

  private server(dbSystemId: string, instance: string | undefined): Map<number, Session> | undefined {
    return this.byDb.get(dbSystemId)?.get(instance ?? '');
  }
}
