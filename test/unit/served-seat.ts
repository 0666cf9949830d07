// A unit test's Display with its Seat, served by the test's serve() and ended after each test
// (the clients the test started first, then the display, then the seat): shared by seat.test
// and drag.test, which feed the same kind of seat.
import { afterEach } from 'vitest';
import type { Display } from '../../protocols/runtime.js';
import type { Seat } from '../../plugin/wayland/seat.js';

export function useServedSeat(): { serving(display: Display, seat: Seat): void; onCleanup(k: () => Promise<void>): void } {
  let display: Display | null = null;
  let seat: Seat | null = null;
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const k of cleanups.splice(0)) await k();
    if (display) {
      await display.stop();
      display.destroy();
    }
    seat?.close();
    display = null;
    seat = null;
  });
  return {
    serving(d, s) {
      display = d;
      seat = s;
    },
    onCleanup: (k) => cleanups.push(k),
  };
}
