// The CRTC configuration that was on screen before an output lit it, and how it is put
// back when the output closes: saved at enable() (the mode's bytes, ACTIVE, the
// connector's CRTC and the primary plane's rectangle and FB), restored by a non-blocking
// modeset whose completion is awaited, else the CRTC is switched off.
import * as drm from '../../ffi/drm.js';
import { COMMIT, type AtomicRequest } from '../kms/atomic.js';
import type { KmsConnector, KmsCrtc, KmsDevice, KmsPlane } from '../kms/device.js';
import type { FlipEvent } from '../kms/events.js';
import { nextCookie } from './types.js';

/** How long the restore waits for the restoring modeset (the kernel's own flip_done timeout is 10 s). */
const RESTORE_TIMEOUT_MS = 12_000;
const PLANE_RECT_PROPS = ['FB_ID', 'CRTC_ID', 'SRC_X', 'SRC_Y', 'SRC_W', 'SRC_H', 'CRTC_X', 'CRTC_Y', 'CRTC_W', 'CRTC_H'];

export interface SavedCrtc {
  modeBlob: Buffer | null;
  active: bigint;
  connectorCrtc: bigint;
  plane: Record<string, bigint>;
}

/** The kernel objects one output drives. */
export interface Pipe {
  dev: KmsDevice;
  crtc: KmsCrtc;
  connector: KmsConnector;
  primary: KmsPlane;
}

export function saveCrtc({ dev: d, crtc, connector, primary }: Pipe): SavedCrtc {
  const crtcProps = d.crtc(crtc.id).props;
  crtcProps.refreshValues(d.fd, drm.DRM_MODE_OBJECT_CRTC);
  connector.props.refreshValues(d.fd, drm.DRM_MODE_OBJECT_CONNECTOR);
  primary.props.refreshValues(d.fd, drm.DRM_MODE_OBJECT_PLANE);
  const modeId = crtcProps.get('MODE_ID')?.value ?? 0n;
  // Keep the mode's bytes, not its blob id: the blob dies with its creator's reference.
  let modeBlob: Buffer | null = null;
  if (modeId !== 0n) {
    try {
      modeBlob = drm.getPropertyBlob(d.fd, Number(modeId));
    } catch {
      modeBlob = null;
    }
  }
  const plane: Record<string, bigint> = {};
  for (const n of PLANE_RECT_PROPS) plane[n] = primary.props.get(n)?.value ?? 0n;
  return { modeBlob, active: crtcProps.get('ACTIVE')?.value ?? 0n, connectorCrtc: connector.props.get('CRTC_ID')?.value ?? 0n, plane };
}

export interface RestoreOptions {
  /** Planes besides the primary the output lit: switched off. */
  others: readonly KmsPlane[];
  /** The writeback connector, when routed to the CRTC: unrouted. */
  writeback?: KmsConnector;
  report(cause: string, message: string): void;
}

/**
 * Puts back what was on screen before enable() (else switches the CRTC off), without
 * blocking the event loop: a non-blocking modeset whose completion event is awaited.
 * When it resolves the kernel has let go of every FB this output showed (callers and
 * the leak tests count them), and other outputs kept presenting meanwhile (a modeset
 * takes frames; after a vkms unplug the kernel waits 10 s for a flip that never comes).
 * A kernel that refuses the non-blocking form gets the blocking one.
 */
export async function restoreCrtc(pipe: Pipe, s: SavedCrtc, o: RestoreOptions): Promise<void> {
  const { dev: d, crtc, connector, primary } = pipe;
  let blob = 0;
  const offRest = (req: AtomicRequest) => {
    for (const pl of o.others) req.set(pl, 'FB_ID', 0).set(pl, 'CRTC_ID', 0);
    if (o.writeback) req.set(o.writeback, 'CRTC_ID', 0);
    return req;
  };
  const full = () => {
    const req = d.request();
    if (s.modeBlob && s.active !== 0n && !blob) blob = drm.createPropertyBlob(d.fd, s.modeBlob);
    req.set(crtc, 'MODE_ID', s.active !== 0n ? blob : 0).set(crtc, 'ACTIVE', s.active).set(connector, 'CRTC_ID', s.connectorCrtc);
    for (const n of PLANE_RECT_PROPS) req.set(primary, n, s.plane[n]);
    return offRest(req);
  };
  const off = () => offRest(d.request().set(crtc, 'MODE_ID', 0).set(crtc, 'ACTIVE', 0).set(connector, 'CRTC_ID', 0).set(primary, 'FB_ID', 0).set(primary, 'CRTC_ID', 0));
  try {
    await modesetAndWait(pipe, full, o.report);
  } catch (e) {
    o.report('restore-failed', `could not restore the previous configuration (${(e as Error).message}); switching ${connector.name} off`);
    try {
      await modesetAndWait(pipe, off, o.report);
    } catch {
      /* device gone */
    }
  } finally {
    if (blob) drm.destroyPropertyBlob(d.fd, blob);
  }
}

/** A non-blocking modeset of `make()`'s request, awaited through its completion event (blocking if refused). */
async function modesetAndWait({ dev: d, connector }: Pipe, make: () => AtomicRequest, report: RestoreOptions['report']): Promise<void> {
  const cookie = nextCookie();
  let done: (ok: boolean) => void = () => {};
  const completed = new Promise<boolean>((r) => (done = r));
  const onFlip = (ev: FlipEvent) => {
    if (ev.userData === cookie) done(true);
  };
  const timer = setTimeout(() => done(false), RESTORE_TIMEOUT_MS);
  d.events.on('flip', onFlip);
  try {
    try {
      make().commit(COMMIT.ALLOW_MODESET | COMMIT.NONBLOCK | COMMIT.PAGE_FLIP_EVENT, cookie);
    } catch (e) {
      // EBUSY (a commit still pending), or a driver that sends no event for this
      // change: the blocking form, which returns once the kernel is done.
      if (d.commitFailure(e)) throw e;
      make().commit(COMMIT.ALLOW_MODESET);
      return;
    }
    if (!(await completed)) {
      report('restore-slow', `the restoring modeset of ${connector.name} did not complete within ${RESTORE_TIMEOUT_MS / 1000} s; its buffers are released anyway`);
    }
  } finally {
    clearTimeout(timer);
    d.events.off('flip', onFlip);
  }
}

/** Waits (up to 1 s) until the kernel has dropped the last references to these FBs. */
export async function untilGone(d: KmsDevice, fbIds: readonly number[]): Promise<void> {
  const end = Date.now() + 1000;
  let left = fbIds.filter((id) => id !== 0);
  while (left.length > 0 && Date.now() < end && !d.isClosed && d.present) {
    left = left.filter((id) => drm.fbExists(d.fd, id));
    if (left.length > 0) await new Promise((r) => setTimeout(r, 2));
  }
}
