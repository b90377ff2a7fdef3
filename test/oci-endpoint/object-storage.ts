// Object Storage: GetNamespace, PutObject (body not signed, like the SDK), GetObject,
// DeleteObject, ListObjects (prefix, start, limit, fields, nextStartWith), in memory.
// Conditional requests: if-none-match '*' and if-match '<etag>' -> 412 when they do not hold.
// Content-MD5, when sent, must match the body (400 InvalidDigest).
import { createHash } from 'node:crypto';
import { type EndpointRequest, ociError, type ServiceHandler } from './server.js';

export interface StoredObject {
  data: Buffer;
  contentType: string;
  etag: string;
  md5: string;
  timeCreated: string;
  meta: Record<string, string>;
}

export interface ObjectStorageService {
  handler: ServiceHandler;
  /** `namespace/bucket` -> objectName -> object. */
  buckets: Map<string, Map<string, StoredObject>>;
}

function header(req: EndpointRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export function objectStorageService(
  opts: { namespace?: string; buckets?: string[] } = {},
): ObjectStorageService {
  const namespace = opts.namespace ?? 'testnamespace';
  const buckets = new Map<string, Map<string, StoredObject>>();
  for (const b of opts.buckets ?? []) buckets.set(`${namespace}/${b}`, new Map());
  let etagSeq = 0;

  const bucketOf = (req: EndpointRequest) =>
    buckets.get(`${req.params.namespaceName}/${req.params.bucketName}`);
  const notFound = (what: string) =>
    ociError(404, what === 'bucket' ? 'BucketNotFound' : 'ObjectNotFound', `The ${what} does not exist.`);

  const handler: ServiceHandler = {
    name: 'objectstorage',
    routes: [
      {
        name: 'getNamespace',
        method: 'GET',
        pattern: '/n',
        // A JSON string, as the service sends it.
        handle: () => ({
          status: 200,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(namespace),
        }),
      },
      {
        name: 'putObject',
        method: 'PUT',
        pattern: '/n/{namespaceName}/b/{bucketName}/o/{objectName}',
        unsignedBody: true,
        handle(req, ctx) {
          const bucket = bucketOf(req);
          if (!bucket) return notFound('bucket');
          const name = req.params.objectName!;
          const existing = bucket.get(name);
          if (header(req, 'if-none-match') === '*' && existing) {
            return ociError(412, 'IfNoneMatchFailed', 'The object already exists.');
          }
          const ifMatch = header(req, 'if-match');
          if (ifMatch !== undefined && existing?.etag !== ifMatch) {
            return ociError(412, 'IfMatchFailed', 'The ETag does not match.');
          }
          const md5 = createHash('md5').update(req.rawBody).digest('base64');
          // The body is outside the signature; Content-MD5 is what protects it.
          const sentMd5 = header(req, 'content-md5');
          if (sentMd5 !== undefined && sentMd5 !== md5) {
            return ociError(
              400,
              'InvalidDigest',
              'The computed MD5 of the request body does not match the Content-MD5 header.',
            );
          }
          const meta: Record<string, string> = {};
          for (const [k, v] of Object.entries(req.headers)) {
            if (k.startsWith('opc-meta-') && typeof v === 'string') meta[k.slice('opc-meta-'.length)] = v;
          }
          etagSeq += 1;
          const obj: StoredObject = {
            data: req.rawBody,
            contentType: header(req, 'content-type') ?? 'application/octet-stream',
            etag: `etag-${etagSeq}`,
            md5,
            timeCreated: new Date(ctx.now()).toISOString(),
            meta,
          };
          bucket.set(name, obj);
          return { status: 200, headers: { etag: obj.etag, 'opc-content-md5': md5 } };
        },
      },
      {
        name: 'getObject',
        method: 'GET',
        pattern: '/n/{namespaceName}/b/{bucketName}/o/{objectName}',
        handle(req) {
          const bucket = bucketOf(req);
          if (!bucket) return notFound('bucket');
          const obj = bucket.get(req.params.objectName!);
          if (!obj) return notFound('object');
          const headers: Record<string, string> = {
            etag: obj.etag,
            'content-type': obj.contentType,
            'content-md5': obj.md5,
          };
          for (const [k, v] of Object.entries(obj.meta)) headers[`opc-meta-${k}`] = v;
          return { status: 200, headers, body: obj.data };
        },
      },
      {
        name: 'deleteObject',
        method: 'DELETE',
        pattern: '/n/{namespaceName}/b/{bucketName}/o/{objectName}',
        handle(req) {
          const bucket = bucketOf(req);
          if (!bucket) return notFound('bucket');
          if (!bucket.delete(req.params.objectName!)) return notFound('object');
          return { status: 204 };
        },
      },
      {
        name: 'listObjects',
        method: 'GET',
        pattern: '/n/{namespaceName}/b/{bucketName}/o',
        handle(req) {
          const bucket = bucketOf(req);
          if (!bucket) return notFound('bucket');
          const prefix = req.query.prefix ?? '';
          const start = req.query.start ?? '';
          const limit = Math.min(Number(req.query.limit ?? 1000) || 1000, 1000);
          const fields = new Set((req.query.fields ?? 'name').split(','));
          const names = [...bucket.keys()].filter((n) => n.startsWith(prefix) && n >= start).sort();
          const page = names.slice(0, limit);
          const objects = page.map((name) => {
            const o = bucket.get(name)!;
            const summary: Record<string, unknown> = { name };
            if (fields.has('size')) summary.size = o.data.length;
            if (fields.has('md5')) summary.md5 = o.md5;
            if (fields.has('etag')) summary.etag = o.etag;
            if (fields.has('timeCreated')) summary.timeCreated = o.timeCreated;
            return summary;
          });
          const body: Record<string, unknown> = { objects };
          if (names.length > limit) body.nextStartWith = names[limit];
          return { status: 200, body };
        },
      },
    ],
  };
  return { handler, buckets };
}
