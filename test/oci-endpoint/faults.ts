// Fault injection for the local OCI endpoint. Faults are armed against a route selector:
//   'streaming.putMessages'  one operation (service name + route name)
//   'streaming' or 'streaming.*'  every operation of a service
//   '*'  every request
// Each armed fault has a count (how many matching requests it applies to; Infinity = until
// cleared). HTTP faults (errors, delays) are applied by the server before the handler runs;
// handler hooks (`arm`/`take`) let a service handler shape an otherwise successful answer
// (failed entries inside a 200 PutMessages, an expired cursor, ...).

export interface HttpFault {
  status: number;
  code: string;
  message: string;
  retryAfterSeconds?: number;
}

/** Well-known handler hooks (service handlers may define more). */
export const FAULT_HOOKS = {
  /** Streaming PutMessages answers 200 with these entries failed. data: PutMessagesFailureSpec. */
  putMessagesFailures: 'put-messages-failures',
  /** Streaming GetMessages / cursor use answers 400 InvalidParameter "cursor expired". */
  cursorExpired: 'cursor-expired',
} as const;

/** Which entries of one PutMessages request fail: the first N, or those at these indexes. */
export type PutMessagesFailureSpec =
  | { first: number; errorCode?: string }
  | { indexes: number[]; errorCode?: string }
  | { every: number; errorCode?: string };

const DEFAULT_ERRORS: Record<number, { code: string; message: string }> = {
  400: { code: 'InvalidParameter', message: 'Injected bad request.' },
  401: { code: 'NotAuthenticated', message: 'Injected authentication failure.' },
  404: { code: 'NotAuthorizedOrNotFound', message: 'Injected not found.' },
  409: { code: 'Conflict', message: 'Injected conflict.' },
  429: { code: 'TooManyRequests', message: 'Too many requests for the tenant.' },
  500: { code: 'InternalServerError', message: 'Injected internal error.' },
  502: { code: 'BadGateway', message: 'Injected bad gateway.' },
  503: { code: 'ServiceUnavailable', message: 'Injected service unavailable.' },
  504: { code: 'GatewayTimeout', message: 'Injected gateway timeout.' },
};

interface Armed<T> {
  selector: string;
  remaining: number;
  value: T;
}

export function matchesSelector(selector: string, route: string): boolean {
  if (selector === '*' || selector === route) return true;
  const service = route.split('.')[0];
  return selector === service || selector === `${service}.*`;
}

export class FaultController {
  private readonly errors: Armed<HttpFault>[] = [];
  private readonly delays: Armed<number>[] = [];
  private readonly hooks = new Map<string, Armed<unknown>[]>();
  /** How many faults of each kind were applied, by route: `429 streaming.putMessages` -> n. */
  readonly applied = new Map<string, number>();

  /** The next `count` requests matching `selector` answer `status` with OCI's error JSON. */
  failNext(
    selector: string,
    count: number,
    status = 429,
    opts: { code?: string; message?: string; retryAfterSeconds?: number } = {},
  ): this {
    const d = DEFAULT_ERRORS[status] ?? { code: 'InternalServerError', message: 'Injected error.' };
    const fault: HttpFault = { status, code: opts.code ?? d.code, message: opts.message ?? d.message };
    if (opts.retryAfterSeconds !== undefined) fault.retryAfterSeconds = opts.retryAfterSeconds;
    this.errors.push({ selector, remaining: count, value: fault });
    return this;
  }

  /** The next `count` matching requests wait `ms` before being handled (Infinity: until clear). */
  delayNext(selector: string, count: number, ms: number): this {
    this.delays.push({ selector, remaining: count, value: ms });
    return this;
  }

  /** Arms a handler hook: the next `count` `take(route, kind)` calls on matching routes get `data`. */
  arm<T>(selector: string, kind: string, count: number, data: T): this {
    const list = this.hooks.get(kind) ?? [];
    list.push({ selector, remaining: count, value: data });
    this.hooks.set(kind, list);
    return this;
  }

  /** For service handlers: consumes one armed hook of `kind` for `route`, if any. */
  take<T>(route: string, kind: string): T | undefined {
    const hit = consume(this.hooks.get(kind) ?? [], route);
    if (hit === undefined) return undefined;
    this.count(`${kind} ${route}`);
    return hit as T;
  }

  /** Armed faults that have not fired yet (for assertions that a test used what it armed). */
  pending(): number {
    const n = (xs: Armed<unknown>[]) => xs.filter((x) => x.remaining > 0).length;
    let hooks = 0;
    for (const list of this.hooks.values()) hooks += n(list);
    return n(this.errors) + n(this.delays) + hooks;
  }

  clear(): void {
    this.errors.length = 0;
    this.delays.length = 0;
    this.hooks.clear();
    this.applied.clear();
  }

  /** @internal server: the error to answer this request with, if one is armed. */
  nextError(route: string): HttpFault | undefined {
    const fault = consume(this.errors, route);
    if (fault) this.count(`${fault.status} ${route}`);
    return fault;
  }

  /** @internal server: how long to hold this request. */
  nextDelay(route: string): number {
    const ms = consume(this.delays, route);
    if (ms === undefined) return 0;
    this.count(`delay ${route}`);
    return ms;
  }

  private count(key: string): void {
    this.applied.set(key, (this.applied.get(key) ?? 0) + 1);
  }
}

function consume<T>(list: Armed<T>[], route: string): T | undefined {
  for (const armed of list) {
    if (armed.remaining > 0 && matchesSelector(armed.selector, route)) {
      armed.remaining -= 1;
      return armed.value;
    }
  }
  return undefined;
}
