import { isUtf8 } from 'node:buffer';
import { SpillwayError } from '../protocol/errors.js';

/**
 * Arrays and objects nested deeper than this are refused. Real inputs (tensors, OIP payloads,
 * documents) stay far below it, and every later step (the envelope's JSON, the store, the
 * response serialiser) recurses, so an unbounded depth would fail there, after acceptance.
 */
export const maxJsonDepth = 64;

/**
 * Parses a request body as JSON, refusing before anything is queued what would be lost or
 * changed on the way: bytes that are not UTF-8 (they would become U+FFFD), numbers outside a
 * double's range (1e400 would become Infinity, then null), nesting past `maxJsonDepth`, and the
 * keys that poison a prototype when JavaScript code copies the object (`__proto__`, and
 * `prototype` inside `constructor`).
 */
export function parseJsonBody(body: Buffer): unknown {
  if (body.length === 0) throw new SpillwayError('SPILLWAY_MALFORMED_JSON', 'the body is empty; send a JSON object');
  if (!isUtf8(body)) throw new SpillwayError('SPILLWAY_MALFORMED_JSON', 'the body is not valid UTF-8 (JSON text must be UTF-8, RFC 8259)');
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw new SpillwayError('SPILLWAY_MALFORMED_JSON', `malformed JSON: ${(error as Error).message}`, { cause: error });
  }
  checkJsonValue(value);
  return value;
}

/** A container met on the walk, with the way back to the root for a JSON pointer. */
interface Frame {
  readonly value: object;
  readonly depth: number;
  readonly parent: Frame | undefined;
  readonly key: string;
}

/** Walks the parsed value without recursion (a deep value must not overflow the stack here). */
function checkJsonValue(root: unknown): void {
  if (root === null || typeof root !== 'object') {
    checkScalar(root, undefined, '');
    return;
  }
  const stack: Frame[] = [{ value: root, depth: 1, parent: undefined, key: '' }];
  for (let frame = stack.pop(); frame !== undefined; frame = stack.pop()) {
    if (frame.depth > maxJsonDepth) {
      throw new SpillwayError('SPILLWAY_JSON_TOO_DEEP', `the body nests arrays and objects more than ${maxJsonDepth} levels deep`, {
        details: [{ pointer: pointerOf(frame.parent, frame.key), message: `nested deeper than ${maxJsonDepth} levels` }],
      });
    }
    const container = frame.value;
    if (Array.isArray(container)) {
      for (let i = 0; i < container.length; i++) {
        const child: unknown = container[i];
        // Key strings are made only for containers and failures: a tensor may hold many numbers.
        if (typeof child === 'number') {
          if (!Number.isFinite(child)) checkScalar(child, frame, String(i));
        } else visit(stack, frame, String(i), child);
      }
    } else {
      for (const key of Object.keys(container)) {
        const child = (container as Record<string, unknown>)[key];
        checkKey(frame, key, child);
        visit(stack, frame, key, child);
      }
    }
  }
}

function visit(stack: Frame[], parent: Frame, key: string, child: unknown): void {
  if (child !== null && typeof child === 'object') stack.push({ value: child, depth: parent.depth + 1, parent, key });
  else checkScalar(child, parent, key);
}

function checkKey(frame: Frame, key: string, child: unknown): void {
  const poisoned =
    key === '__proto__' ||
    (key === 'constructor' && child !== null && typeof child === 'object' && Object.hasOwn(child, 'prototype'));
  if (!poisoned) return;
  const name = key === '__proto__' ? '"__proto__"' : '"constructor" holding "prototype"';
  throw new SpillwayError('SPILLWAY_FORBIDDEN_JSON_KEY', `the body has a ${name} key, which Spillway refuses: it can rewrite object prototypes in code that copies the value`, {
    details: [{ pointer: pointerOf(frame, key), message: 'rename this key' }],
  });
}

function checkScalar(value: unknown, parent: Frame | undefined, key: string): void {
  if (typeof value === 'number' && !Number.isFinite(value)) {
    throw new SpillwayError('SPILLWAY_INVALID_REQUEST', 'the body has a number outside the range of a 64-bit float', {
      details: [{ pointer: pointerOf(parent, key), message: 'numbers must be finite (at most about 1.8e308 in magnitude)' }],
    });
  }
}

/** RFC 6901 pointer from the root to `key` inside `parent`. */
function pointerOf(parent: Frame | undefined, key: string): string {
  const parts: string[] = [];
  if (parent !== undefined) parts.push(key);
  for (let f = parent; f?.parent !== undefined; f = f.parent) parts.push(f.key);
  return parts
    .reverse()
    .map((p) => `/${p.replaceAll('~', '~0').replaceAll('/', '~1')}`)
    .join('');
}
