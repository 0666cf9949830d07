// Which kernel objects each output of a device holds, and how a new output picks its
// mode, CRTC and primary plane. Several outputs share one device: a CRTC and a primary
// plane belong to one output; an overlay or cursor plane that several CRTCs can take
// belongs to whichever output lit it last (until it lets go).
import * as drm from '../../ffi/drm.js';
import type { KmsConnector, KmsCrtc, KmsDevice, KmsPlane } from '../kms/device.js';
import { DEFAULT_PATHS, type FramePath, type ModeRequest } from './types.js';

/** What the outputs of one device hold. Object ids are per device: two devices often use the same ones. */
export interface DeviceClaims {
  crtcs: Set<number>;
  primaries: Set<number>;
  /** Which output uses a plane now (planes that several CRTCs can take are shared). */
  planeOwner: Map<number, object>;
}
const claimsByDevice = new WeakMap<KmsDevice, DeviceClaims>();
export function claimsOf(dev: KmsDevice): DeviceClaims {
  let c = claimsByDevice.get(dev);
  if (!c) {
    c = { crtcs: new Set(), primaries: new Set(), planeOwner: new Map() };
    claimsByDevice.set(dev, c);
  }
  return c;
}

/** A free CRTC for `conn` (the one it is on, else any it can use) and its free primary plane. */
export function claimPipe(dev: KmsDevice, conn: KmsConnector, crtcId: number | undefined): { crtc: KmsCrtc; primary: KmsPlane } {
  const claims = claimsOf(dev);
  const usable = (c: KmsCrtc) => (conn.possibleCrtcs & (1 << c.index)) !== 0 && !claims.crtcs.has(c.id);
  const crtc = crtcId !== undefined ? dev.crtc(crtcId) : dev.crtcs.find((c) => usable(c) && (conn.crtcId === 0 || conn.crtcId === c.id)) ?? dev.crtcs.find(usable);
  if (!crtc) throw new Error(`no free CRTC can drive ${conn.name}`);
  const primary = dev.planesFor(crtc, 'primary').find((p) => !claims.primaries.has(p.id) && (claims.planeOwner.get(p.id) ?? null) === null);
  if (!primary) throw new Error(`CRTC ${crtc.id} has no free primary plane`);
  return { crtc, primary };
}

/** Records the claim of claimPipe's answer (after the rest of the output's set-up succeeded). */
export function holdPipe(dev: KmsDevice, crtc: KmsCrtc, primary: KmsPlane, owner: object): void {
  const claims = claimsOf(dev);
  claims.crtcs.add(crtc.id);
  claims.primaries.add(primary.id);
  claims.planeOwner.set(primary.id, owner);
}

/** Gives back everything `owner` holds on the device. */
export function releasePipe(dev: KmsDevice, crtc: KmsCrtc, primary: KmsPlane, owner: object): void {
  const claims = claimsOf(dev);
  claims.crtcs.delete(crtc.id);
  claims.primaries.delete(primary.id);
  for (const [id, o] of [...claims.planeOwner]) if (o === owner) claims.planeOwner.delete(id);
}

/** Planes `owner` may use on `crtc`: the CRTC's, minus other outputs' primaries and planes in use elsewhere. */
export function usablePlanes(dev: KmsDevice, crtc: KmsCrtc, primary: KmsPlane, owner: object): KmsPlane[] {
  return dev.planesFor(crtc).filter((p) => {
    if (p.type === 'primary' && p.id !== primary.id) return false;
    const o = claimsOf(dev).planeOwner.get(p.id);
    return o === undefined || o === owner;
  });
}

export function checkPaths(paths: readonly FramePath[] | undefined): ReadonlySet<FramePath> {
  if (paths === undefined) return new Set(DEFAULT_PATHS);
  const bad = paths.filter((p) => !DEFAULT_PATHS.includes(p));
  if (bad.length > 0) throw new Error(`options.paths: unknown path(s) ${bad.map((b) => JSON.stringify(b)).join(', ')}; allowed: ${DEFAULT_PATHS.join(', ')}`);
  if (paths.length === 0) throw new Error(`options.paths is empty: allow at least one of ${DEFAULT_PATHS.join(', ')}`);
  return new Set(paths);
}

/** The connector mode matching a request (or the preferred one). */
export function pickMode(conn: KmsConnector, want?: ModeRequest): drm.DrmModeInfo {
  if (conn.modes.length === 0) throw new Error(`connector ${conn.name} reports no modes`);
  if (!want) return conn.modes.find((m) => m.type & drm.DRM_MODE_TYPE_PREFERRED) ?? conn.modes[0];
  const matches = conn.modes.filter((m) => m.hdisplay === want.width && m.vdisplay === want.height && (!want.refresh || m.vrefresh === want.refresh));
  if (matches.length === 0) {
    const list = [...new Set(conn.modes.map((m) => `${m.hdisplay}x${m.vdisplay}@${m.vrefresh}`))].join(', ');
    throw new Error(`connector ${conn.name} has no mode ${want.width}x${want.height}${want.refresh ? `@${want.refresh}` : ''}; it has: ${list}`);
  }
  return matches.find((m) => m.type & drm.DRM_MODE_TYPE_PREFERRED) ?? matches[0];
}
