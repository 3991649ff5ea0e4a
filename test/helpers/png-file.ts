import { crc32, deflateSync } from 'node:zlib';

/**
 * Builds PNG files byte by byte, for the inputs an encoder will not write: an interlaced image,
 * a header that claims more pixels than the data holds, a small file that inflates to a lot.
 */
export interface PngHeader {
  readonly width: number;
  readonly height: number;
  /** 0 grey, 2 RGB, 3 palette, 4 grey + alpha, 6 RGBA. */
  readonly colorType?: number;
  readonly bitDepth?: number;
  readonly interlaced?: boolean;
}

function chunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** A PNG whose image data is `raw` (filter bytes included) deflated, whether or not it fits the header. */
export function pngFile(header: PngHeader, raw: Buffer): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(header.width, 0);
  ihdr.writeUInt32BE(header.height, 4);
  ihdr[8] = header.bitDepth ?? 8;
  ihdr[9] = header.colorType ?? 0;
  ihdr[12] = header.interlaced === true ? 1 : 0;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Adam7's seven passes: first column, first row, column step, row step. */
const passes = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
] as const;

/** An 8-bit grey PNG, Adam7-interlaced, of `grey` (row by row, one byte a pixel). */
export function interlacedGreyPng(width: number, height: number, grey: Uint8Array): Buffer {
  const rows: Buffer[] = [];
  for (const [x0, y0, dx, dy] of passes) {
    const xs: number[] = [];
    for (let x = x0; x < width; x += dx) xs.push(x);
    if (xs.length === 0) continue; // an empty pass has no rows at all, not even filter bytes
    for (let y = y0; y < height; y += dy) rows.push(Buffer.from([0, ...xs.map((x) => grey[y * width + x] ?? 0)]));
  }
  return pngFile({ width, height, interlaced: true }, Buffer.concat(rows));
}

/** A 16-bit grey PNG of 8-bit `grey` (each value v stored as v × 257, so it reads back as v). */
export function sixteenBitGreyPng(width: number, height: number, grey: Uint8Array): Buffer {
  const rows: Buffer[] = [];
  for (let y = 0; y < height; y++) {
    const row = [0];
    for (let x = 0; x < width; x++) row.push(grey[y * width + x] ?? 0, grey[y * width + x] ?? 0);
    rows.push(Buffer.from(row));
  }
  return pngFile({ width, height, bitDepth: 16 }, Buffer.concat(rows));
}
