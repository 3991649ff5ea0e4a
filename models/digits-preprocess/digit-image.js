// @ts-check
/**
 * Turns RGBA pixels of one handwritten digit into the 8×8 grid of scikit-learn's digits data:
 * light ink (high values) on a dark background, each cell an integer from 0 to 16.
 *
 * The digits data was made from binary 32×32 bitmaps, size-normalised so that the ink fills the
 * box's height and centred, each 4×4 block giving the count of its inked pixels. In all 1797 rows
 * of `load_digits()` the ink spans all 8 rows and, in most, columns 1 to 6. So a picture is made
 * binary (ink is what reaches half the strongest ink), cropped to its ink, its longer side fitted
 * to the grid, centred, and each cell counts the ink it covers. Thresholding is what makes a
 * smooth, anti-aliased or thick-penned picture look like the data: the digits model is trained
 * on crisp counts, and blurred counts (area averages of the grey levels) cost it a third of its
 * accuracy on the test set, binary ones a few per cent (models/digits-image/README.md).
 *
 * A picture that is such a grid already (an 8×8 image, or one scaled up by whole pixels without
 * smoothing) keeps its counts instead of being thresholded, which would round them to 0 or 16.
 *
 * Last, the grid is stretched so that its strongest cell is 16: 1765 of the 1797 rows have a
 * fully inked cell, and a thin pen would otherwise leave every cell faint.
 */

/** @typedef {import('./png-input.js').RgbaImage} RgbaImage */

export const gridSide = 8;
/** The digits data counts 16 source pixels per cell. */
const maxCount = 16;
/** Ink weaker than this fraction of the strongest is noise, not the digit's extent. */
const inkThreshold = 0.05;
/** What counts as ink once the picture is made binary, as a fraction of the strongest ink. */
const binaryThreshold = 0.5;
/** How far apart (in ink, 0–1) two pixels of one cell of a scaled-up grid may be: lossless PNGs give 0. */
const blockTolerance = 0.01;

/** The 64 values, row by row, that the `digits` model takes. */
export function digitGrid(/** @type {RgbaImage} */ image) {
  const { width, height } = image;
  const ink = inkMap(image);
  const counts = countsGrid(ink, width, height);
  if (counts !== undefined) return stretched(counts);
  for (let i = 0; i < ink.length; i++) ink[i] = (ink[i] ?? 0) >= binaryThreshold ? 1 : 0;
  const box = inkBox(ink, width, height);
  const side = Math.max(box.right - box.left, box.bottom - box.top);
  const cx = (box.left + box.right) / 2;
  const cy = (box.top + box.bottom) / 2;
  return stretched(areaAverage(ink, width, height, cx - side / 2, cy - side / 2, side));
}

/** Cells (0–1) as integer counts, the strongest made 16. */
function stretched(/** @type {readonly number[]} */ cells) {
  const strongest = Math.max(...cells);
  return cells.map((c) => Math.round((maxCount * c) / strongest));
}

/**
 * The cells, if the ink is an 8-row grid of uniform square blocks (k×k pixels each), as an 8×8
 * digits row scaled up by k is; else undefined. Its columns are placed as the digits data most
 * often places ink that wide: starting at column ceil((8 − width) / 2).
 */
export function countsGrid(/** @type {Float32Array} */ ink, /** @type {number} */ width, /** @type {number} */ height) {
  const box = inkBox(ink, width, height);
  const k = (box.bottom - box.top) / gridSide;
  const columns = (box.right - box.left) / k;
  if (!Number.isInteger(k) || !Number.isInteger(columns) || columns > gridSide) return undefined;
  for (let y = box.top; y < box.bottom; y++) {
    for (let x = box.left; x < box.right; x++) {
      const corner = ink[(y - ((y - box.top) % k)) * width + (x - ((x - box.left) % k))] ?? 0;
      if (Math.abs((ink[y * width + x] ?? 0) - corner) > blockTolerance) return undefined;
    }
  }
  const x0 = box.left - Math.ceil((gridSide - columns) / 2) * k;
  return areaAverage(ink, width, height, x0, box.top, gridSide * k);
}

/**
 * Ink from 0 (background) to 1 (the strongest ink), from luminance (Rec. 601, as Pillow's
 * `convert('L')`). The background is the commonest level along the border, so a dark digit on
 * light paper is inverted and a light one on dark is not.
 */
export function inkMap(/** @type {RgbaImage} */ { width, height, rgba }) {
  const n = width * height;
  const lum = new Float32Array(n);
  for (let i = 0; i < n; i++) lum[i] = 0.299 * (rgba[4 * i] ?? 0) + 0.587 * (rgba[4 * i + 1] ?? 0) + 0.114 * (rgba[4 * i + 2] ?? 0);
  flattenAlpha(lum, rgba);
  const background = borderMode(lum, width, height);
  const invert = background >= 128;
  // In place, and 32-bit: a 4096×4096 picture is 16 M pixels.
  const ink = lum;
  let strongest = 0;
  for (let i = 0; i < n; i++) {
    const v = Math.max(0, invert ? background - (lum[i] ?? 0) : (lum[i] ?? 0) - background);
    ink[i] = v;
    if (v > strongest) strongest = v;
  }
  // A few grey levels of difference are compression or scanning noise, not a digit.
  if (strongest < 16) throw Object.assign(new Error('invalid image: it holds no digit (it is all one colour)'), { retryable: false });
  for (let i = 0; i < n; i++) ink[i] = (ink[i] ?? 0) / strongest;
  return ink;
}

/**
 * Lays a picture with transparency over a background that contrasts with its ink: black strokes
 * on a transparent canvas would vanish over black. The ink's colour is the alpha-weighted mean.
 */
function flattenAlpha(/** @type {Float32Array} */ lum, /** @type {Uint8Array} */ rgba) {
  let weight = 0;
  let sum = 0;
  for (let i = 0; i < lum.length; i++) {
    const a = (rgba[4 * i + 3] ?? 255) / 255;
    weight += a;
    sum += a * (lum[i] ?? 0);
  }
  if (weight === lum.length) return; // opaque: nothing to flatten
  const over = weight > 0 && sum / weight < 128 ? 255 : 0;
  for (let i = 0; i < lum.length; i++) {
    const a = (rgba[4 * i + 3] ?? 255) / 255;
    lum[i] = a * (lum[i] ?? 0) + (1 - a) * over;
  }
}

/** The commonest level (in bins of 16) among the border pixels, as the mean of that bin. */
function borderMode(/** @type {Float32Array} */ lum, /** @type {number} */ width, /** @type {number} */ height) {
  const count = new Array(16).fill(0);
  const sum = new Array(16).fill(0);
  const add = (/** @type {number} */ i) => {
    const v = lum[i] ?? 0;
    const bin = Math.min(15, Math.floor(v / 16));
    count[bin] += 1;
    sum[bin] += v;
  };
  for (let x = 0; x < width; x++) {
    add(x);
    if (height > 1) add((height - 1) * width + x);
  }
  for (let y = 1; y < height - 1; y++) {
    add(y * width);
    if (width > 1) add(y * width + width - 1);
  }
  const best = count.indexOf(Math.max(...count));
  return sum[best] / count[best];
}

/** The box, in pixel edges (right and bottom exclusive), of the ink above the noise threshold. */
export function inkBox(/** @type {Float32Array} */ ink, /** @type {number} */ width, /** @type {number} */ height) {
  let left = width;
  let right = 0;
  let top = height;
  let bottom = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if ((ink[y * width + x] ?? 0) <= inkThreshold) continue;
      if (x < left) left = x;
      if (x + 1 > right) right = x + 1;
      if (y < top) top = y;
      if (y + 1 > bottom) bottom = y + 1;
    }
  }
  return { left, right, top, bottom };
}

/**
 * The mean ink of each of the 8×8 cells of the square [x0, x0+side)×[y0, y0+side), weighting
 * every pixel by the part of it a cell covers (area averaging, as the digits data's 4×4 block
 * counts are). Outside the picture is background. Each pixel is read once per cell it touches.
 */
export function areaAverage(
  /** @type {Float32Array} */ ink,
  /** @type {number} */ width,
  /** @type {number} */ height,
  /** @type {number} */ x0,
  /** @type {number} */ y0,
  /** @type {number} */ side,
) {
  const step = side / gridSide;
  const columns = Array.from({ length: gridSide }, (_, j) => coverage(x0 + j * step, x0 + (j + 1) * step, width));
  const rows = Array.from({ length: gridSide }, (_, i) => coverage(y0 + i * step, y0 + (i + 1) * step, height));
  /** @type {number[]} */
  const cells = [];
  for (const row of rows) {
    for (const column of columns) {
      let total = 0;
      for (const [y, wy] of row) {
        let across = 0;
        for (const [x, wx] of column) across += wx * (ink[y * width + x] ?? 0);
        total += wy * across;
      }
      cells.push(total / (step * step));
    }
  }
  return cells;
}

/** The pixels 0…n-1 that overlap [a, b), each with the length of its overlap. */
function coverage(/** @type {number} */ a, /** @type {number} */ b, /** @type {number} */ n) {
  /** @type {[number, number][]} */
  const out = [];
  for (let p = Math.max(0, Math.floor(a)); p < Math.min(n, Math.ceil(b)); p++) {
    const w = Math.min(b, p + 1) - Math.max(a, p);
    if (w > 0) out.push([p, w]);
  }
  return out;
}
