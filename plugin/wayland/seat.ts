// wl_seat: the seat the clipboard and (with issue 14) input devices belong to. Until the
// kiosk reads input devices the seat has no capabilities, which the protocol allows
// (a seat whose devices are all unplugged); clients that need a seat to exist (foot,
// for its clipboard) start, and asking for a device it never had is missing_capability.
import type { Display, Global } from '../../protocols/runtime.js';
import { ProtocolViolation } from '../../protocols/runtime.js';
import { WlSeat, WlSeatError, type WlSeatCapability } from '../../protocols/generated/wayland.js';

export const SEAT_NAME = 'seat0';

export function createSeatGlobal(display: Display): Global<WlSeat> {
  return WlSeat.global(display, 8, (id) => {
    const missing = (what: string) => (r: WlSeat) => {
      throw new ProtocolViolation(r, WlSeatError.MISSING_CAPABILITY, `${SEAT_NAME} has no ${what} (the kiosk reads no input devices yet)`);
    };
    const seat = id.create({ getPointer: missing('pointer'), getKeyboard: missing('keyboard'), getTouch: missing('touch'), release() {} });
    seat.sendCapabilities(0 as WlSeatCapability);
    if (seat.version >= 2) seat.sendName(SEAT_NAME);
  });
}
