import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** Where the gateway serves the dashboard page and its files. */
export const dashboardPath = '/dashboard';

interface Asset {
  readonly file: string;
  readonly type: string;
}

const require = createRequire(import.meta.url);
// The same two levels up from src/gateway/dashboard and from dist/gateway/dashboard.
const page = (name: string) => fileURLToPath(new URL(`../../../web/dashboard/${name}`, import.meta.url));

/**
 * The files of the dashboard, by the name the page asks for them under /dashboard/. The page and
 * its script are ours (web/dashboard); uPlot comes from its package as installed, never from a
 * CDN, so the page works on a machine with no internet.
 */
export const dashboardAssets: Readonly<Record<string, Asset>> = {
  'index.html': { file: page('index.html'), type: 'text/html; charset=utf-8' },
  'dashboard.js': { file: page('dashboard.js'), type: 'text/javascript; charset=utf-8' },
  'dashboard.css': { file: page('dashboard.css'), type: 'text/css; charset=utf-8' },
  'uPlot.iife.min.js': { file: require.resolve('uplot/dist/uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' },
  'uPlot.min.css': { file: require.resolve('uplot/dist/uPlot.min.css'), type: 'text/css; charset=utf-8' },
};

const cache = new Map<string, Promise<Buffer>>();

/** The asset's bytes, read once. */
export function readAsset(asset: Asset): Promise<Buffer> {
  let bytes = cache.get(asset.file);
  if (bytes === undefined) {
    bytes = readFile(asset.file);
    // A failed read is tried again next time, not remembered.
    bytes.catch(() => cache.delete(asset.file));
    cache.set(asset.file, bytes);
  }
  return bytes;
}

/**
 * Everything the page loads comes from the gateway itself; the browser refuses anything else.
 * uPlot sets element styles from script, hence the inline styles.
 */
export const dashboardContentSecurityPolicy =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
