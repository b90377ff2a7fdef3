// Notifications (ONS) data plane: PublishMessage, with the service's limits enforced so a test
// fails when a client breaks them: 64 KB per request and 60 messages per minute per topic
// (sliding window on the endpoint clock; over it -> 429 TooManyRequests).
import { randomUUID } from 'node:crypto';
import { ociError, type ServiceHandler } from './server.js';

export const ONS_MAX_REQUEST_BYTES = 64 * 1024;
export const ONS_MAX_TITLE_CHARS = 255;
export const ONS_MESSAGES_PER_MINUTE = 60;

export interface PublishedMessage {
  topicId: string;
  messageId: string;
  title: string | undefined;
  body: string;
  messageType: string | undefined;
  /** Endpoint clock at acceptance (ms). */
  at: number;
  requestBytes: number;
}

export interface NotificationsService {
  handler: ServiceHandler;
  /** Accepted messages, in order. */
  published: PublishedMessage[];
  /** Requests refused for the rate (429) or size (400) limit. */
  refused: { rate: number; size: number };
}

export function notificationsService(
  opts: { perMinute?: number; maxRequestBytes?: number; knownTopics?: string[] } = {},
): NotificationsService {
  const perMinute = opts.perMinute ?? ONS_MESSAGES_PER_MINUTE;
  const maxBytes = opts.maxRequestBytes ?? ONS_MAX_REQUEST_BYTES;
  const published: PublishedMessage[] = [];
  const refused = { rate: 0, size: 0 };
  const recent = new Map<string, number[]>();

  const handler: ServiceHandler = {
    name: 'ons',
    basePath: '/20181201',
    routes: [
      {
        name: 'publishMessage',
        method: 'POST',
        pattern: '/topics/{topicId}/messages',
        handle(req, ctx) {
          const topicId = req.params.topicId!;
          if (opts.knownTopics && !opts.knownTopics.includes(topicId)) {
            return ociError(404, 'NotAuthorizedOrNotFound', 'Topic not found or not authorized.');
          }
          const details = req.body as { title?: unknown; body?: unknown } | undefined;
          if (!details || typeof details.body !== 'string') {
            return ociError(400, 'InvalidParameter', 'body is required.');
          }
          if (req.rawBody.length > maxBytes) {
            refused.size += 1;
            return ociError(400, 'InvalidParameter', `Message size exceeds ${maxBytes} bytes.`);
          }
          if (
            details.title !== undefined &&
            (typeof details.title !== 'string' || details.title.length > ONS_MAX_TITLE_CHARS)
          ) {
            refused.size += 1;
            return ociError(400, 'InvalidParameter', `title longer than ${ONS_MAX_TITLE_CHARS} characters.`);
          }
          const now = ctx.now();
          const times = (recent.get(topicId) ?? []).filter((t) => t > now - 60_000);
          if (times.length >= perMinute) {
            refused.rate += 1;
            recent.set(topicId, times);
            return ociError(429, 'TooManyRequests', 'Topic message rate exceeded.');
          }
          times.push(now);
          recent.set(topicId, times);
          const messageId = randomUUID();
          const header = req.headers.messagetype;
          published.push({
            topicId,
            messageId,
            title: details.title as string | undefined,
            body: details.body,
            messageType: Array.isArray(header) ? header[0] : header,
            at: now,
            requestBytes: req.rawBody.length,
          });
          return { status: 200, body: { messageId, timeStamp: new Date(now).toISOString() } };
        },
      },
    ],
  };
  return { handler, published, refused };
}

/** The most messages of `times` (ms) within any 60 s window: what a per-minute limit bounds. */
export function maxInAnyMinute(times: number[]): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  let lo = 0;
  for (let hi = 0; hi < sorted.length; hi++) {
    while (sorted[hi]! - sorted[lo]! >= 60_000) lo++;
    best = Math.max(best, hi - lo + 1);
  }
  return best;
}
