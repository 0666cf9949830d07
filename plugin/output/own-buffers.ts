// The buffers an output shows of its own: the defined "no signal" frame (dark blue-grey
// with an inset frame, so it reads as deliberate, not as a dead screen) and the host
// background where no opaque layer covers the screen.
import { DumbFramebuffer } from '../kms/dumb.js';
import type { KmsDevice } from '../kms/device.js';
import { fill } from '../compose/cpu.js';
import { NO_SIGNAL_PIXEL } from './types.js';

const NO_SIGNAL_MARK = 0xff5a6a80;

/** A full-screen dumb buffer of one colour. */
export function solidBuffer(dev: KmsDevice, width: number, height: number, pixel: number): DumbFramebuffer {
  const b = new DumbFramebuffer(dev.fd, width, height);
  fill({ bytes: b.bytes, offset: 0, stride: b.pitch, width: b.width, height: b.height }, { x: 0, y: 0, width: b.width, height: b.height }, pixel);
  return b;
}

/** The "no signal" frame. */
export function noSignalBuffer(dev: KmsDevice, width: number, height: number): DumbFramebuffer {
  const fb = solidBuffer(dev, width, height, NO_SIGNAL_PIXEL);
  const img = { bytes: fb.bytes, offset: 0, stride: fb.pitch, width: fb.width, height: fb.height };
  // A frame inset by 1/8 marks it as deliberate, not a dead screen.
  const ix = Math.floor(fb.width / 8);
  const iy = Math.floor(fb.height / 8);
  const t = Math.max(2, Math.floor(fb.height / 100));
  fill(img, { x: ix, y: iy, width: fb.width - 2 * ix, height: t }, NO_SIGNAL_MARK);
  fill(img, { x: ix, y: fb.height - iy - t, width: fb.width - 2 * ix, height: t }, NO_SIGNAL_MARK);
  fill(img, { x: ix, y: iy, width: t, height: fb.height - 2 * iy }, NO_SIGNAL_MARK);
  fill(img, { x: fb.width - ix - t, y: iy, width: t, height: fb.height - 2 * iy }, NO_SIGNAL_MARK);
  return fb;
}
