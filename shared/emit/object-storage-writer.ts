// Small Object Storage helper for reports and exports: put / get / list / delete with bounded
// retries. PutObject bodies are not covered by the request signature (the SDK excludes them), so
// every put carries Content-MD5 and Object Storage rejects a body that changed on the way.
import { createHash } from 'node:crypto';
import type { ObjectStorageClient } from 'oci-objectstorage';
import { AuditError } from '../errors.js';
import { callWithRetry, classifyOciError, DEFAULT_RETRY, type RetryPolicy } from '../oci/clients.js';

export type ObjectStorageApi = Pick<
  ObjectStorageClient,
  'getNamespace' | 'putObject' | 'getObject' | 'listObjects' | 'deleteObject'
>;

export interface ObjectStorageWriterOptions {
  client: ObjectStorageApi;
  bucket: string;
  /** Object Storage namespace; looked up once with GetNamespace when omitted. */
  namespace?: string;
  retry?: RetryPolicy;
  /** Bound on ListObjects pages per `list` call (1,000 objects a page). */
  maxListPages?: number;
}

export interface PutOptions {
  contentType?: string;
  /** `'*'`: create only (412 when the object exists): write-once reports. */
  ifNoneMatch?: '*';
  /** Replace only this version. */
  ifMatch?: string;
  /** `opc-meta-*` headers. */
  meta?: Record<string, string>;
}

export interface StoredObject {
  data: Buffer;
  contentType: string | undefined;
  etag: string | undefined;
}

export interface ObjectInfo {
  name: string;
  size: number | undefined;
  md5: string | undefined;
  timeCreated: Date | undefined;
}

export class ObjectStorageWriter {
  private readonly client: ObjectStorageApi;
  private readonly bucket: string;
  private readonly retry: RetryPolicy;
  private readonly maxListPages: number;
  private ns: string | undefined;

  constructor(opts: ObjectStorageWriterOptions) {
    this.client = opts.client;
    this.bucket = opts.bucket;
    this.ns = opts.namespace;
    this.retry = opts.retry ?? DEFAULT_RETRY;
    this.maxListPages = opts.maxListPages ?? 100;
  }

  async namespace(): Promise<string> {
    if (this.ns === undefined) {
      const res = await callWithRetry(
        'objectstorage.getNamespace',
        () => this.client.getNamespace({}),
        this.retry,
      );
      this.ns = res.value;
    }
    return this.ns;
  }

  async put(
    name: string,
    data: string | Buffer,
    opts: PutOptions = {},
  ): Promise<{ etag: string | undefined }> {
    const namespaceName = await this.namespace();
    const body = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    const request = {
      namespaceName,
      bucketName: this.bucket,
      objectName: name,
      putObjectBody: body,
      contentLength: body.length,
      contentMD5: createHash('md5').update(body).digest('base64'),
      contentType:
        opts.contentType ??
        (typeof data === 'string' ? 'text/plain; charset=utf-8' : 'application/octet-stream'),
      ...(opts.ifNoneMatch ? { ifNoneMatch: opts.ifNoneMatch } : {}),
      ...(opts.ifMatch ? { ifMatch: opts.ifMatch } : {}),
      ...(opts.meta ? { opcMeta: opts.meta } : {}),
    };
    const res = await callWithRetry(
      'objectstorage.putObject',
      () => this.client.putObject(request),
      this.retry,
    );
    return { etag: res.eTag };
  }

  /** The object, or null when it does not exist. */
  async get(name: string): Promise<StoredObject | null> {
    const namespaceName = await this.namespace();
    try {
      const res = await callWithRetry(
        'objectstorage.getObject',
        () => this.client.getObject({ namespaceName, bucketName: this.bucket, objectName: name }),
        this.retry,
      );
      return { data: await readAll(res.value), contentType: res.contentType, etag: res.eTag };
    } catch (error) {
      if (error instanceof AuditError && classifyOciError(error.cause).status === 404) return null;
      throw error;
    }
  }

  async getText(name: string): Promise<string | null> {
    const obj = await this.get(name);
    return obj === null ? null : obj.data.toString('utf8');
  }

  /**
   * Objects whose name starts with `prefix`, in name order, following pages (bounded). The SDK
   * puts query values into the URL as they are: `prefix` and `start` are URL-encoded here, or a
   * name holding `+`, `&` or `#` would be read as another one.
   */
  async list(prefix = ''): Promise<ObjectInfo[]> {
    const namespaceName = await this.namespace();
    const out: ObjectInfo[] = [];
    let start: string | undefined;
    for (let page = 0; page < this.maxListPages; page++) {
      const res = await callWithRetry(
        'objectstorage.listObjects',
        () =>
          this.client.listObjects({
            namespaceName,
            bucketName: this.bucket,
            prefix: encodeURIComponent(prefix),
            fields: 'name,size,md5,timeCreated',
            ...(start !== undefined ? { start: encodeURIComponent(start) } : {}),
          }),
        this.retry,
      );
      for (const o of res.listObjects.objects) {
        out.push({
          name: o.name,
          size: o.size,
          md5: o.md5,
          timeCreated: o.timeCreated ? new Date(o.timeCreated) : undefined,
        });
      }
      start = res.listObjects.nextStartWith;
      if (!start) return out;
    }
    throw new AuditError(
      'OCI_REQUEST_FAILED',
      `objectstorage.listObjects: more than ${this.maxListPages} pages`,
      {
        details: { bucket: this.bucket, pages: this.maxListPages },
      },
    );
  }

  async delete(name: string): Promise<void> {
    const namespaceName = await this.namespace();
    await callWithRetry(
      'objectstorage.deleteObject',
      () => this.client.deleteObject({ namespaceName, bucketName: this.bucket, objectName: name }),
      this.retry,
    );
  }
}

async function readAll(value: unknown): Promise<Buffer> {
  if (value === undefined || value === null) return Buffer.alloc(0);
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (Buffer.isBuffer(value)) return value;
  const chunks: Buffer[] = [];
  for await (const chunk of value as AsyncIterable<Uint8Array | string>) {
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
}
