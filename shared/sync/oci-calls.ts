// How `sync` calls OCI: every request through one counter (the snapshot records what discovery
// cost, by operation), with bounded retries on throttling and server errors, never past the
// deadline, and every list call paged to its end.
import { AuditError } from '../errors.js';
import { callWithRetry, DEFAULT_RETRY, type RetryPolicy, sleepMs } from '../oci/clients.js';

export class OciCalls {
  /** Requests sent, by operation (`identity.listUsers`), retries included. */
  readonly counts: Record<string, number> = {};

  constructor(
    private readonly retry: RetryPolicy = DEFAULT_RETRY,
    private readonly signal?: AbortSignal,
  ) {}

  /** One request, retried on 429 / 5xx; stops with DEADLINE once the signal is aborted. */
  async call<T>(operation: string, request: () => Promise<T>): Promise<T> {
    this.checkTime(operation);
    return callWithRetry(
      operation,
      () => {
        this.checkTime(operation);
        this.counts[operation] = (this.counts[operation] ?? 0) + 1;
        return request();
      },
      { ...this.retry, sleep: (ms) => this.sleep(ms, operation) },
    );
  }

  /**
   * Every item of an OCI list operation, following `opc-next-page`. The token is handed to `page`
   * percent-encoded: the SDK writes query values into the URL as they are.
   */
  async list<T>(
    operation: string,
    page: (token: string | undefined) => Promise<{ items: T[]; opcNextPage?: string | undefined }>,
  ): Promise<T[]> {
    const out: T[] = [];
    let token: string | undefined;
    do {
      const response = await this.call(operation, () =>
        page(token === undefined ? undefined : encodeURIComponent(token)),
      );
      out.push(...response.items);
      token = response.opcNextPage;
    } while (token);
    return out;
  }

  /** Every resource of a SCIM list, by `startIndex` / `count` until `totalResults`. */
  async scim<T>(
    operation: string,
    page: (startIndex: number) => Promise<{ resources?: T[]; totalResults: number }>,
  ): Promise<T[]> {
    const out: T[] = [];
    for (;;) {
      const response = await this.call(operation, () => page(out.length + 1));
      const got = response.resources ?? [];
      out.push(...got);
      if (got.length === 0 || out.length >= response.totalResults) return out;
    }
  }

  get total(): number {
    return Object.values(this.counts).reduce((a, b) => a + b, 0);
  }

  private checkTime(operation: string): void {
    if (this.signal?.aborted)
      throw new AuditError('DEADLINE', 'sync ran out of time before it was done', { details: { operation } });
  }

  private async sleep(ms: number, operation: string): Promise<void> {
    this.checkTime(operation);
    await (this.retry.sleep ?? sleepMs)(ms);
  }
}
