// The modeset the rig tests light a head with: connector routed to the CRTC, the mode on,
// one full-screen FB on the primary plane.
import * as drm from '../../../ffi/drm.js';
import type { AtomicRequest } from '../../../plugin/kms/atomic.js';
import type { KmsConnector, KmsCrtc, KmsDevice, KmsPlane } from '../../../plugin/kms/device.js';

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

/** What the first CRTC, Virtual-1 and its primary plane show: compared before and after a kiosk. */
export interface ScreenState {
  active: bigint;
  mode: string;
  fbId: bigint;
  planeCrtc: bigint;
  connectorCrtc: bigint;
}

export function screenState(d: KmsDevice): ScreenState {
  const crtc = d.crtcs[0]!;
  const conn = d.connectorByName('Virtual-1');
  const primary = d.planesFor(crtc, 'primary')[0]!;
  crtc.props.refreshValues(d.fd, drm.DRM_MODE_OBJECT_CRTC);
  conn.props.refreshValues(d.fd, drm.DRM_MODE_OBJECT_CONNECTOR);
  primary.props.refreshValues(d.fd, drm.DRM_MODE_OBJECT_PLANE);
  const blobId = Number(crtc.props.get('MODE_ID')!.value);
  const blob = blobId ? drm.getPropertyBlob(d.fd, blobId) : null;
  return {
    active: crtc.props.get('ACTIVE')!.value,
    mode: blob ? Buffer.from(blob).toString('hex') : '',
    fbId: primary.props.get('FB_ID')!.value,
    planeCrtc: primary.props.get('CRTC_ID')!.value,
    connectorCrtc: conn.props.get('CRTC_ID')!.value,
  };
}
