// @ts-check
/**
 * Turns a request's base64 PNG into RGBA pixels, refusing what cannot or should not be decoded.
 * pngjs does the decoding; this module only checks what arrives and reads the fixed-offset IHDR
 * header first, so an image too large is refused before anything is inflated.
 */
import { inflateSync } from 'node:zlib';
import pngjs from 'pngjs';

/** Largest PNG file accepted, in bytes, unless `max_png_bytes` says otherwise. */
export const defaultMaxPngBytes = 1_048_576;
/** Largest width or height accepted, unless `max_side` says otherwise: 4096² RGBA is 64 MiB. */
export const defaultMaxSide = 4096;

const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const dataUrlPrefix = /^data:image\/png;base64,/i;
// Strict base64: Buffer.from(…, 'base64') silently skips any character it does not know.
const base64Pattern = /^[A-Za-z0-9+/]*={0,2}$/;
/** Samples per pixel by PNG colour type: grey, -, RGB, palette, grey+alpha, -, RGBA. */
const samplesPerPixel = new Map([[0, 1], [2, 3], [3, 1], [4, 2], [6, 4]]);

/**
 * @typedef {{ readonly maxPngBytes: number, readonly maxSide: number }} PngLimits
 * @typedef {{ readonly width: number, readonly height: number, readonly rgba: Uint8Array }} RgbaImage
 */

/** A refusal of this input: not retryable, since the same bytes fail the same way every time. */
export function invalidImage(/** @type {string} */ reason) {
  return Object.assign(new Error(`invalid image: ${reason}`), { retryable: false });
}

/** The limits from the model's parameters, falling back to the defaults above. */
export function pngLimits(/** @type {Readonly<Record<string, unknown>>} */ parameters) {
  const positive = (/** @type {unknown} */ v, /** @type {number} */ fallback) =>
    typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : fallback;
  return {
    maxPngBytes: positive(parameters['max_png_bytes'], defaultMaxPngBytes),
    maxSide: positive(parameters['max_side'], defaultMaxSide),
  };
}

/** The PNG's bytes from a bare base64 string or a `data:image/png;base64,` URL. */
export function pngBytes(/** @type {unknown} */ text, /** @type {PngLimits} */ limits) {
  if (typeof text !== 'string' || text.length === 0) throw invalidImage('`image` must be a non-empty base64 string');
  const body = text.replace(dataUrlPrefix, '').replace(/\s+/g, '');
  if (body.startsWith('data:')) throw invalidImage('only PNG is taken, as base64 or a data:image/png;base64, URL');
  // Checked on the text, before decoding it, so an oversized input costs no allocation.
  if (body.length > Math.ceil(limits.maxPngBytes / 3) * 4) {
    throw invalidImage(`the PNG is over ${limits.maxPngBytes} bytes`);
  }
  if (body.length % 4 === 1 || !base64Pattern.test(body)) throw invalidImage('`image` is not base64');
  const bytes = Buffer.from(body, 'base64');
  if (bytes.length > limits.maxPngBytes) throw invalidImage(`the PNG is over ${limits.maxPngBytes} bytes`);
  if (bytes.length < 33 || !bytes.subarray(0, 8).equals(signature) || bytes.toString('latin1', 12, 16) !== 'IHDR') {
    throw invalidImage('not a PNG (the PNG signature and header are missing)');
  }
  return bytes;
}

/** Decodes a PNG into 8-bit RGBA, whatever its colour type and bit depth. */
export function decodePng(/** @type {Buffer} */ bytes, /** @type {PngLimits} */ limits) {
  const width = bytes.readUInt32BE(16);
  const height = bytes.readUInt32BE(20);
  if (width === 0 || height === 0) throw invalidImage('the PNG has no pixels');
  if (width > limits.maxSide || height > limits.maxSide) {
    throw invalidImage(`the PNG is ${width}×${height}; the most is ${limits.maxSide}×${limits.maxSide}`);
  }
  if (bytes[28] === 1) checkInterlacedSize(bytes, width, height);
  let png;
  try {
    png = pngjs.PNG.sync.read(bytes);
  } catch (error) {
    throw invalidImage(`the PNG cannot be decoded (${error instanceof Error ? error.message : String(error)})`);
  }
  return /** @type {RgbaImage} */ ({ width: png.width, height: png.height, rgba: png.data });
}

/**
 * pngjs bounds the inflated size of a plain PNG by its header, but inflates an interlaced one
 * without a bound, so a small file could expand to gigabytes. Inflate it once here with a cap
 * (twice the plain size: Adam7's seven passes add one filter byte per row of each pass).
 */
function checkInterlacedSize(/** @type {Buffer} */ bytes, /** @type {number} */ width, /** @type {number} */ height) {
  const samples = samplesPerPixel.get(bytes[25] ?? -1) ?? 4;
  const depth = bytes[24] ?? 8;
  const plain = (Math.ceil((width * samples * depth) / 8) + 1) * height;
  const idat = [];
  // Walk the chunks (length, type, data, CRC) to gather the compressed image data.
  for (let at = 8; at + 12 <= bytes.length; ) {
    const length = bytes.readUInt32BE(at);
    if (bytes.toString('latin1', at + 4, at + 8) === 'IDAT') idat.push(bytes.subarray(at + 8, at + 8 + length));
    at += 12 + length;
  }
  try {
    inflateSync(Buffer.concat(idat), { maxOutputLength: 2 * plain + 1024 });
  } catch {
    throw invalidImage('the interlaced PNG holds more data than its size allows, or none that inflates');
  }
}
