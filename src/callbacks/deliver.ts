import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { ResolvedAddress } from './egress-guard.js';
import { realTimeout } from './real-timeout.js';
import type { SignedWebhook } from './signing.js';

/**
 * One delivery attempt of a signed webhook, classified so the dispatcher can decide what to do
 * next. It connects only to the addresses the egress guard checked, and never follows a redirect:
 * a redirect would send the payload to a destination nobody checked.
 */

/** Where to send: the `ok` half of an egress decision. */
export interface DeliveryTarget {
  readonly url: string;
  readonly hostname: string;
  readonly addresses: readonly ResolvedAddress[];
}

export interface DeliveryOptions {
  /** Until the TCP connection is up. */
  readonly connectTimeoutMs?: number;
  /** From connection to the end of the response (TLS handshake, headers, capped body). */
  readonly responseTimeoutMs?: number;
  /** Read at most this much of the response body (it is discarded; a snippet goes in the reason). */
  readonly maxResponseBytes?: number;
  readonly userAgent?: string;
  /**
   * Trusted CA certificates (PEM) for https receivers. When given they replace Node's bundled
   * roots for this attempt (NODE_EXTRA_CA_CERTS adds to them instead).
   */
  readonly ca?: string | Buffer | (string | Buffer)[];
  /** The clock for an HTTP-date Retry-After. */
  readonly now?: () => number;
  /** W3C Trace Context of the delivery's span: the receiver may join the trace. */
  readonly traceparent?: string;
}

interface OutcomeBase {
  readonly durationMs: number;
  /** Short and human: for logs and the delivery history, not for matching. */
  readonly reason: string;
}

export type DeliveryOutcome =
  | (OutcomeBase & { readonly kind: 'delivered'; readonly status: number })
  /** 429 or 503 with a Retry-After: try again no sooner than `retryAfterMs` (the caller caps it). */
  | (OutcomeBase & { readonly kind: 'retry'; readonly status: number; readonly retryAfterMs: number })
  /** 410: the receiver says the endpoint is gone; stop retrying. */
  | (OutcomeBase & { readonly kind: 'gone'; readonly status: number })
  /** Anything else; retryable with backoff. `status` is absent when no response came. */
  | (OutcomeBase & { readonly kind: 'failed'; readonly status?: number });

export const defaultUserAgent = 'Spillway-Webhooks/1';

export function deliver(
  target: DeliveryTarget,
  webhook: SignedWebhook,
  options: DeliveryOptions = {},
): Promise<DeliveryOutcome> {
  const connectTimeoutMs = options.connectTimeoutMs ?? 5000;
  const responseTimeoutMs = options.responseTimeoutMs ?? 10_000;
  const maxResponseBytes = options.maxResponseBytes ?? 4096;
  const now = options.now ?? Date.now;
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);

  const url = new URL(target.url);
  const body = Buffer.from(webhook.body, 'utf8');
  const https = url.protocol === 'https:';
  const requestOptions: RequestOptions = {
    method: 'POST',
    host: target.hostname,
    port: url.port === '' ? (https ? 443 : 80) : Number(url.port),
    path: `${url.pathname}${url.search}`,
    headers: {
      ...webhook.headers,
      'content-type': 'application/json',
      'content-length': String(body.length),
      'user-agent': options.userAgent ?? defaultUserAgent,
      ...(options.traceparent === undefined ? {} : { traceparent: options.traceparent }),
    },
    lookup: pinnedLookup(target.addresses),
    // A pooled socket could have been opened for other addresses; one connection per attempt.
    agent: false,
    // SNI and the certificate check use the name the client gave, not the pinned address.
    ...(https && isIP(target.hostname) === 0 ? { servername: target.hostname } : {}),
    ...(https && options.ca !== undefined ? { ca: options.ca } : {}),
  };

  return new Promise<DeliveryOutcome>((resolve) => {
    let settled = false;
    let disarm = () => {};
    let onTimeout = () => {};
    const finish = (outcome: DeliveryOutcome) => {
      if (settled) return;
      settled = true;
      disarm();
      req.destroy();
      resolve(outcome);
    };
    const fail = (reason: string) => finish({ kind: 'failed', durationMs: elapsed(), reason });
    const arm = (ms: number, reason: string) => {
      disarm();
      onTimeout = () => fail(reason);
      disarm = realTimeout(ms, () => onTimeout());
    };

    const req: ClientRequest = (https ? httpsRequest : httpRequest)(requestOptions, (res) => {
      // The status decides the outcome; a body that trickles in past the timeout must not turn
      // it into a failure, so the same timer now just stops reading.
      onTimeout = () => finish(classify(res, '', elapsed(), now()));
      readCapped(res, maxResponseBytes, (snippet) => finish(classify(res, snippet, elapsed(), now())));
    });
    arm(connectTimeoutMs, `no connection within ${connectTimeoutMs} ms`);
    req.on('socket', (socket) => {
      const connected = () => arm(responseTimeoutMs, `no response within ${responseTimeoutMs} ms`);
      if (socket.connecting) socket.once('connect', connected);
      else connected();
    });
    req.on('error', (error: NodeJS.ErrnoException) => fail(describeConnectionError(error)));
    req.end(body);
  });
}

/** Hands the connection the pre-checked addresses, so no second DNS answer can be used. */
function pinnedLookup(addresses: readonly ResolvedAddress[]): LookupFunction {
  return (_hostname, options, callback) => {
    const first = addresses[0];
    if (first === undefined) {
      callback(Object.assign(new Error('no checked address to connect to'), { code: 'ENOTFOUND' }), '', 4);
      return;
    }
    // With autoSelectFamily (the default since Node 20) the socket asks for every address.
    if (options.all === true) {
      callback(null, addresses.map(({ address, family }) => ({ address, family })));
    } else {
      callback(null, first.address, first.family);
    }
  };
}

/** Reads up to `cap` bytes and stops; the receiver's body is only a hint for the reason. */
function readCapped(res: IncomingMessage, cap: number, done: (snippet: string) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    done(Buffer.concat(chunks).toString('utf8'));
  };
  res.on('data', (chunk: Buffer) => {
    if (size < cap) chunks.push(chunk.subarray(0, cap - size));
    size += chunk.length;
    if (size >= cap) end();
  });
  res.on('end', end);
  res.on('error', end);
}

function classify(res: IncomingMessage, snippet: string, durationMs: number, nowMs: number): DeliveryOutcome {
  const status = res.statusCode ?? 0;
  const said = summarise(snippet);
  const answered = `answered ${status}${res.statusMessage ? ` ${res.statusMessage}` : ''}${said}`;
  if (status >= 200 && status < 300) return { kind: 'delivered', status, durationMs, reason: `answered ${status}` };
  if (status === 410) return { kind: 'gone', status, durationMs, reason: answered };
  if (status >= 300 && status < 400) {
    const location = res.headers.location;
    const to = location === undefined ? '' : ` to ${location.slice(0, 200)}`;
    return { kind: 'failed', status, durationMs, reason: `answered ${status}, a redirect${to} (not followed)` };
  }
  if (status === 429 || status === 503) {
    const retryAfterMs = parseRetryAfter(res.headers['retry-after'], nowMs);
    if (retryAfterMs !== undefined) {
      return { kind: 'retry', status, durationMs, retryAfterMs, reason: `${answered}, retry after ${retryAfterMs} ms` };
    }
  }
  return { kind: 'failed', status, durationMs, reason: answered };
}

function summarise(snippet: string): string {
  const text = snippet.replace(/\s+/g, ' ').trim();
  if (text === '') return '';
  return `: ${text.length > 120 ? `${text.slice(0, 120)}…` : text}`;
}

/** Retry-After as delay-seconds or an HTTP-date (RFC 9110 §10.2.3), in ms from now; undefined if unreadable. */
export function parseRetryAfter(value: string | undefined, nowMs: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  // Only the three HTTP-date forms; Date.parse alone would read "7.5" as a day in July.
  let at = Number.NaN;
  if (/^[A-Za-z]{3,9}, .+ GMT$/.test(text)) at = Date.parse(text);
  else if (/^[A-Za-z]{3} [A-Za-z]{3} +\d{1,2} \d\d:\d\d:\d\d \d{4}$/.test(text)) at = Date.parse(`${text} GMT`);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}

function describeConnectionError(error: NodeJS.ErrnoException): string {
  switch (error.code) {
    case 'ECONNREFUSED':
      return 'connection refused (ECONNREFUSED)';
    case 'ECONNRESET':
      return 'connection reset by the receiver (ECONNRESET)';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `no route to the receiver (${error.code})`;
    default:
      return error.code === undefined ? error.message : `${error.message} (${error.code})`;
  }
}

/**
 * Delay before retry number `attempt` (1 for the first retry): exponential with full jitter, a
 * uniform draw in [0, min(cap, base·2^(attempt−1))), so that receivers recovering from an outage
 * are not hit by every sender at the same instant.
 */
export function backoff(attempt: number, baseMs: number, capMs: number, random: () => number = Math.random): number {
  const exponent = Math.max(0, Math.floor(attempt) - 1);
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(exponent, 52));
  return Math.floor(random() * ceiling);
}
