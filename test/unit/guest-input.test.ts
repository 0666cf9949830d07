// Host input mapped into a guest: pure logic (the real path, libinput and uinput into an
// unmodified QEMU, is test/integration/qemu-dbus-input.test.ts). The target records calls.
import { describe, it, expect } from 'vitest';
import { MultiTouchRefused, multiTouchRefusal } from '../../plugin/sources/qemu-dbus-protocol.js';
import { DbusError } from '../../plugin/dbus/connection.js';
import { GuestInput, type InputTarget } from '../../plugin/input/guest-input.js';

function setup(fit: 'native' | 'fit' | 'fill', guest = { width: 640, height: 480 }) {
  const calls: string[] = [];
  const target: InputTarget = {
    key: async (c, d) => void calls.push(`key ${c} ${d ? 'down' : 'up'}`),
    button: async (b, d) => void calls.push(`button ${b} ${d ? 'down' : 'up'}`),
    pointerTo: async (x, y, from, rel) => void calls.push(`pointer ${x},${y}${from ? ` from ${from.x},${from.y}` : ''}${rel ? ` rel ${rel.dx},${rel.dy}` : ''}`),
  };
  const actions = { quits: 0, grabs: [] as boolean[] };
  const gi = new GuestInput(target, { screen: { width: 1280, height: 960 }, guest: () => guest, fit }, { quit: () => actions.quits++, grab: (g) => actions.grabs.push(g), error: (e) => calls.push(`error ${e.message}`) });
  return { gi, calls, actions };
}

describe('GuestInput', () => {
  it('maps the host pointer through the fit placement: the guest pointer lands under the host pointer', () => {
    const { gi, calls } = setup('fit'); // 640x480 scaled 2x onto 1280x960
    gi.handle({ kind: 'motion', dx: 10, dy: 0, dxRaw: 7, dyRaw: 0 }); // from the centre (640,480) → (650,480)
    gi.handle({ kind: 'absolute', x: 0.25, y: 0.5 }); // (320,480) → guest (160,240)
    gi.handle({ kind: 'motion', dx: -5000, dy: -5000, dxRaw: -3000, dyRaw: -3000 }); // clamped to the corner
    expect(calls).toEqual(['pointer 325,240 from 320,240 rel 7,0', 'pointer 160,240 from 325,240', 'pointer 0,0 from 160,240 rel -3000,-3000']);
  });

  it('native: a smaller guest is centred; outside the picture the pointer stays on its edge', () => {
    const { gi, calls } = setup('native'); // 640x480 centred at (320,240) on 1280x960
    gi.handle({ kind: 'absolute', x: 0.5, y: 0.5 }); // where it is already: nothing to send
    gi.handle({ kind: 'absolute', x: 0, y: 0 });
    gi.handle({ kind: 'absolute', x: 0.3, y: 0.3 });
    expect(calls).toEqual(['pointer 0,0 from 320,240', 'pointer 64,48 from 0,0']);
  });

  it('keys and buttons go through; wheel detents become wheel buttons; Ctrl+Alt+G releases (keys and buttons held are released in the guest) and takes back; Ctrl+Alt+Q quits', () => {
    const { gi, calls, actions } = setup('fit');
    gi.handle({ kind: 'key', code: 30, pressed: true });
    gi.handle({ kind: 'button', button: 0x110, pressed: true });
    gi.handle({ kind: 'scroll', axis: 'vertical', v120: 60 });
    gi.handle({ kind: 'scroll', axis: 'vertical', v120: 60 });
    gi.handle({ kind: 'key', code: 29, pressed: true });
    gi.handle({ kind: 'key', code: 56, pressed: true });
    gi.handle({ kind: 'key', code: 34, pressed: true }); // G: release
    gi.handle({ kind: 'key', code: 34, pressed: false });
    gi.handle({ kind: 'key', code: 31, pressed: true }); // not grabbed: not sent
    gi.handle({ kind: 'key', code: 34, pressed: true }); // G again: grab
    gi.handle({ kind: 'key', code: 16, pressed: true }); // Q: quit
    expect(calls).toEqual([
      'key 30 down',
      'button left down',
      'button wheel-down down',
      'button wheel-down up',
      'key 29 down',
      'key 56 down',
      'key 30 up',
      'key 29 up',
      'key 56 up',
      'button left up',
    ]);
    expect(actions.grabs).toEqual([false, true]);
    expect(actions.quits).toBe(1);
  });

  it('on a seat, Ctrl+Alt+F2 asks for VT 2 and is not sent; losing the seat releases what the guest holds, once', () => {
    const calls: string[] = [];
    const vts: number[] = [];
    const target: InputTarget = {
      key: async (c, d) => void calls.push(`key ${c} ${d ? 'down' : 'up'}`),
      button: async (b, d) => void calls.push(`button ${b} ${d ? 'down' : 'up'}`),
      pointerTo: async () => {},
    };
    const gi = new GuestInput(target, { screen: { width: 100, height: 100 }, guest: () => null, fit: 'fit' }, { quit: () => {}, switchSession: (vt) => vts.push(vt), error: () => {} });
    gi.handle({ kind: 'button', button: 0x111, pressed: true });
    gi.handle({ kind: 'key', code: 29, pressed: true });
    gi.handle({ kind: 'key', code: 56, pressed: true });
    gi.handle({ kind: 'key', code: 60, pressed: true }); // F2
    gi.releaseAll(); // the seat went to VT 2: no releases will come from the closed devices
    gi.releaseAll();
    gi.handle({ kind: 'key', code: 88, pressed: true }); // F12 without Ctrl+Alt (released above): sent
    expect(vts).toEqual([2]);
    expect(calls).toEqual(['button right down', 'key 29 down', 'key 56 down', 'key 29 up', 'key 56 up', 'button right up', 'key 88 down']);
  });

  it('one finger is the pointer and the left button', () => {
    const { gi, calls } = setup('fill');
    gi.handle({ kind: 'touch', phase: 'down', slot: 0, x: 0.5, y: 0.5 });
    gi.handle({ kind: 'touch', phase: 'motion', slot: 0, x: 0.75, y: 0.5 });
    gi.handle({ kind: 'touch', phase: 'up', slot: 0, x: 0, y: 0 });
    expect(calls).toEqual(['button left down', 'pointer 480,240 from 320,240', 'button left up']);
  });

  it('multitouch: every finger its own slot at its guest pixel, begin/update/end; a second finger does not move the first; a lost seat ends what is down (QEMU\'s CANCEL would leave it down in the guest)', () => {
    const calls: string[] = [];
    const target: InputTarget = {
      key: async () => {},
      button: async (b, d) => void calls.push(`button ${b} ${d ? 'down' : 'up'}`),
      pointerTo: async (x, y) => void calls.push(`pointer ${x},${y}`),
      touch: async (k, slot, x, y) => void calls.push(`${k} ${slot} ${x},${y}`),
    };
    const gi = new GuestInput(target, { screen: { width: 1280, height: 960 }, guest: () => ({ width: 640, height: 480 }), fit: 'fit' }, { quit: () => {}, error: (e) => calls.push(`error ${e.message}`) }, { multiTouch: true });
    gi.handle({ kind: 'touch', phase: 'down', slot: 0, x: 0.5, y: 0.5 });
    gi.handle({ kind: 'touch', phase: 'down', slot: 1, x: 0.25, y: 0.25 });
    gi.handle({ kind: 'touch', phase: 'motion', slot: 1, x: 0.5, y: 0.25 });
    gi.handle({ kind: 'touch', phase: 'up', slot: 1, x: 0, y: 0 });
    gi.handle({ kind: 'touch', phase: 'motion', slot: 7, x: 0.1, y: 0.1 }); // never down: nothing
    gi.releaseAll(); // slot 0 still down
    gi.handle({ kind: 'touch', phase: 'up', slot: 0, x: 0, y: 0 }); // already cancelled
    expect(calls).toEqual(['begin 0 320,240', 'begin 1 160,120', 'update 1 320,120', 'end 1 320,120', 'end 0 320,240']);
  });

  it('multitouch: touch ids take the lowest free of QEMU\'s 10 slots, an 11th finger is not sent; releasing the grab ends the fingers down', () => {
    const calls: string[] = [];
    const target: InputTarget = {
      key: async () => {},
      button: async () => {},
      pointerTo: async () => {},
      touch: async (k, slot) => void calls.push(`${k} ${slot}`),
    };
    const gi = new GuestInput(target, { screen: { width: 640, height: 480 }, guest: () => ({ width: 640, height: 480 }), fit: 'fit' }, { quit: () => {}, error: (e) => calls.push(`error ${e.message}`) }, { multiTouch: true });
    for (let id = 30; id < 41; id++) gi.handle({ kind: 'touch', phase: 'down', slot: id, x: 0.5, y: 0.5 });
    gi.handle({ kind: 'touch', phase: 'up', slot: 33, x: 0, y: 0 });
    gi.handle({ kind: 'touch', phase: 'down', slot: 99, x: 0.5, y: 0.5 }); // takes the slot 33 left
    gi.handle({ kind: 'touch', phase: 'motion', slot: 40, x: 0.5, y: 0.5 }); // the 11th: never sent
    const begun = calls.splice(0);
    expect(begun).toEqual([...Array.from({ length: 10 }, (_, i) => `begin ${i}`), 'end 3', 'begin 3']);
    for (const k of [29, 56, 34]) gi.handle({ kind: 'key', code: k, pressed: true }); // Ctrl+Alt+G: the grab released
    expect(calls.sort()).toEqual(Array.from({ length: 10 }, (_, i) => `end ${i}`).sort());
  });

  it('multitouch refused by QEMU (7.x has no MultiTouch): said once, then a finger is the pointer again', async () => {
    const calls: string[] = [];
    const target: InputTarget = {
      key: async () => {},
      button: async (b, d) => void calls.push(`button ${b} ${d ? 'down' : 'up'}`),
      pointerTo: async (x, y) => void calls.push(`pointer ${x},${y}`),
      touch: () => Promise.reject(new MultiTouchRefused('org.freedesktop.DBus.Error.UnknownInterface')),
    };
    const gi = new GuestInput(target, { screen: { width: 640, height: 480 }, guest: () => ({ width: 640, height: 480 }), fit: 'fit' }, { quit: () => {}, error: (e) => calls.push(`error ${e.message}`) }, { multiTouch: true });
    gi.handle({ kind: 'touch', phase: 'down', slot: 0, x: 0.5, y: 0.5 });
    gi.handle({ kind: 'touch', phase: 'motion', slot: 0, x: 0.6, y: 0.5 });
    await new Promise((r) => setTimeout(r, 0));
    gi.handle({ kind: 'touch', phase: 'down', slot: 0, x: 0.25, y: 0.5 });
    gi.handle({ kind: 'touch', phase: 'up', slot: 0, x: 0, y: 0 });
    expect(calls).toEqual(['error MultiTouch refused (org.freedesktop.DBus.Error.UnknownInterface); touch goes to the guest as its pointer from now on', 'pointer 160,240', 'button left down', 'button left up']);
  });

  it('a MultiTouch call lost with the connection (QEMU restarting, the kiosk stopping) is an error, not a refusal: touch stays MultiTouch', async () => {
    const calls: string[] = [];
    let lose = true;
    const target: InputTarget = {
      key: async () => {},
      button: async (b, d) => void calls.push(`button ${b} ${d ? 'down' : 'up'}`),
      pointerTo: async (x, y) => void calls.push(`pointer ${x},${y}`),
      touch: async (k, slot) => {
        if (lose) throw new Error('D-Bus connection closed before org.qemu.Display1.MultiTouch.SendEvent was answered');
        calls.push(`${k} ${slot}`);
      },
    };
    const gi = new GuestInput(target, { screen: { width: 640, height: 480 }, guest: () => ({ width: 640, height: 480 }), fit: 'fit' }, { quit: () => {}, error: (e) => calls.push(`error ${e.message}`) }, { multiTouch: true });
    gi.handle({ kind: 'touch', phase: 'down', slot: 0, x: 0.5, y: 0.5 });
    gi.handle({ kind: 'touch', phase: 'up', slot: 0, x: 0, y: 0 });
    await new Promise((r) => setTimeout(r, 0));
    lose = false;
    gi.handle({ kind: 'touch', phase: 'down', slot: 0, x: 0.5, y: 0.5 });
    gi.handle({ kind: 'touch', phase: 'up', slot: 0, x: 0, y: 0 });
    await new Promise((r) => setTimeout(r, 0));
    const lost = 'error D-Bus connection closed before org.qemu.Display1.MultiTouch.SendEvent was answered';
    expect(calls).toEqual([lost, lost, 'begin 0', 'end 0']);
  });

  it('only QEMU\'s error reply to a MultiTouch call is a refusal: not our own timeout or limit, not a closed connection', () => {
    const as = (e: Error) => {
      try {
        multiTouchRefusal(e);
      } catch (x) {
        return x instanceof MultiTouchRefused ? 'refused' : (x as Error).message;
      }
      return 'returned';
    };
    expect(as(new DbusError('org.freedesktop.DBus.Error.UnknownMethod', 'No such interface “org.qemu.Display1.MultiTouch”'))).toBe('refused');
    expect(as(new DbusError('org.freedesktop.DBus.Error.NoReply', 'no answer within 5000 ms'))).toBe('no answer within 5000 ms');
    expect(as(new DbusError('org.freedesktop.DBus.Error.LimitsExceeded', 'calls waiting'))).toBe('calls waiting');
    expect(as(new Error('D-Bus connection closed before it was answered'))).toBe('D-Bus connection closed before it was answered');
  });
});
