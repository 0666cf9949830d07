// The modeset the rig tests light a head with: connector routed to the CRTC, the mode on,
// one full-screen FB on the primary plane.
import type { AtomicRequest } from '../../../plugin/kms/atomic.js';
import type { KmsConnector, KmsCrtc, KmsPlane } from '../../../plugin/kms/device.js';

export interface FullScreen {
  conn: KmsConnector;
  crtc: KmsCrtc;
  modeBlob: number;
  primary: KmsPlane;
  fbId: number;
  width: number;
  height: number;
}

/** Sets on `req` the head lit with `fbId` full screen on the primary plane; returns `req`. */
export function lightFullScreen(req: AtomicRequest, h: FullScreen): AtomicRequest {
  const { conn, crtc, primary } = h;
  return req
    .set(conn, 'CRTC_ID', crtc.id)
    .set(crtc, 'MODE_ID', h.modeBlob)
    .set(crtc, 'ACTIVE', 1)
    .set(primary, 'FB_ID', h.fbId)
    .set(primary, 'CRTC_ID', crtc.id)
    .set(primary, 'SRC_X', 0)
    .set(primary, 'SRC_Y', 0)
    .set(primary, 'SRC_W', h.width << 16)
    .set(primary, 'SRC_H', h.height << 16)
    .set(primary, 'CRTC_X', 0)
    .set(primary, 'CRTC_Y', 0)
    .set(primary, 'CRTC_W', h.width)
    .set(primary, 'CRTC_H', h.height);
}
