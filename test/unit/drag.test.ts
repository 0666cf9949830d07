// Drag-and-drop on the kiosk's seat (plugin/wayland/drag.ts through data-device.ts and
// seat-input.ts) against a real libwayland client: the seat is fed InputStack's events
// directly, as the compositor passes them on. The client (gp-wayland-client input, GP_DND)
// starts a drag on a button press, with an icon, and is its own drop target.
import { describe, it, expect, afterEach } from 'vitest';
import { Display } from '../../protocols/runtime.js';
import { callbackTime, createCompositorGlobal, finishUnshown, type Surface } from '../../plugin/wayland/surface.js';
import { createShmGlobal } from '../../plugin/wayland/shm.js';
import { createXdgShellGlobal } from '../../plugin/wayland/xdg-shell.js';
import { Seat } from '../../plugin/wayland/seat.js';
import { SeatInput } from '../../plugin/wayland/seat-input.js';
import { DataDevices } from '../../plugin/wayland/data-device.js';
import { chooseAction } from '../../plugin/wayland/drag.js';
import { buildWaylandClient, startClient, useRuntimeDir } from '../integration/helpers/wayland-client.js';
import { useServedSeat } from './served-seat.js';

let n = 0;
const runtimeDir = useRuntimeDir('gp-drag-');
const served = useServedSeat();

const pointer = { sysname: 'event1', name: 'test pointer', capabilities: { keyboard: false, pointer: true, touch: false } };

/** A display with a seat and data devices; the newest toplevel is the scene, 1:1 on 1024x768. */
function serve(): { socket: string; input: SeatInput; data: DataDevices; changes: () => number } {
  const d = Display.create();
  const socket = `gp-drag-${process.pid}-${++n}`;
  d.addSocket(socket);
  createCompositorGlobal(d, () => {});
  createShmGlobal(d);
  let root: Surface | null = null;
  const s = new Seat(d, { keymap: { layout: 'us' } });
  served.serving(d, s);
  let changes = 0;
  let data: DataDevices | null = null;
  const input = new SeatInput(s, { output: () => ({ w: 1024, h: 768 }), fit: () => 'native', root: () => (root?.size && !root.resource.destroyed ? root : null), drag: () => data?.dragging ?? null });
  data = new DataDevices(d, {
    validSerial: (c, serial) => s.inputSerial(c, serial),
    pointerGrab: () => (s.pointer.grabbed ? s.pointer.focus!.surface : null),
    releasePointer: () => s.pointer.moveTo(null),
    serial: () => d.nextSerial(),
    time: () => callbackTime(),
    changed: () => {
      changes++;
      queueMicrotask(() => input.refresh());
    },
  });
  createXdgShellGlobal(d, {
    size: () => ({ width: 1024, height: 768 }),
    onToplevel: (t) => {
      root = t.surface;
      t.surface.on('commit', (c) => {
        finishUnshown(c);
        queueMicrotask(() => input.refresh());
      });
    },
    onToplevelDestroyed: () => {
      root = null;
    },
  });
  d.start({ onError: () => {} });
  return { socket, input, data, changes: () => changes };
}

function client(socket: string, dnd: string) {
  const c = startClient(buildWaylandClient(), ['input', '1024', '768'], { runtimeDir: runtimeDir(), socket, extra: { GP_DND: dnd } });
  served.onCleanup(() => c.kill());
  return c;
}

const at = (x: number, y: number) => ({ kind: 'absolute' as const, x: x / 1024, y: y / 768 });
const button = (pressed: boolean) => ({ kind: 'button' as const, button: 0x110, pressed });

describe('drag-and-drop', { timeout: 30_000 }, () => {
  it('the action is the target\'s preferred one when both allow it, else the first in common', () => {
    expect(chooseAction(0b011, 0b011, 0b010)).toBe(0b010);
    expect(chooseAction(0b001, 0b011, 0b010)).toBe(0b001);
    expect(chooseAction(0b100, 0b011, 0b001)).toBe(0);
  });

  it('a press starts a drag: the pointer leaves, the icon is the drag\'s, enter/motion with an offer, the release drops, the data moves, finish ends it', async () => {
    const { socket, input, data } = serve();
    input.deviceAdded(pointer);
    const c = client(socket, 'ok');
    await c.waitFor(/^MAPPED 1024x768$/);
    input.handle(at(100, 100));
    await c.waitFor(/^(PTR_ENTER .*|MOTION) x=100\.0+ y=100\.0+$/);
    input.handle(button(true));
    await c.waitFor(/^START_DRAG serial=ok$/);
    await c.waitFor(/^DND_ENTER x=100\.00 y=100\.00 offer=yes$/);
    expect(data.dragging).not.toBeNull();
    // The icon is drawn at the pointer, offset by what it attached with.
    await c.waitFor(/^SRC_ACTION 2$/);
    expect(data.dragIcon?.offset).toEqual({ x: -4, y: -6 });
    expect(c.lines).toContain('OFFER_MIME text/plain');
    expect(c.lines).toContain('OFFER_SOURCE_ACTIONS 3');
    expect(c.lines).toContain('SRC_TARGET text/plain');
    expect(c.lines.some((l) => l.startsWith('PTR_LEAVE'))).toBe(true);
    const from = c.lines.length;
    input.handle(at(300, 200));
    await c.waitFor(/^DND_MOTION x=300\.00 y=200\.00$/);
    // No wl_pointer motion while dragging.
    expect(c.lines.slice(from).filter((l) => l.startsWith('MOTION'))).toEqual([]);
    input.handle(button(false));
    await c.waitFor(/^DND_DROP$/);
    await c.waitFor(/^DND_DATA dragged$/);
    await c.waitFor(/^SRC_FINISHED$/);
    expect(c.lines).toContain('SRC_DROP_PERFORMED');
    expect(c.lines).toContain('OFFER_ACTION 2');
    // The release was the drop's; afterwards the pointer is back on the window.
    expect(c.lines.slice(from).filter((l) => l.startsWith('BUTTON'))).toEqual([]);
    await c.waitFor(/^PTR_ENTER .* x=300\.0+ y=200\.0+$/);
    expect(data.dragging).toBeNull();
    expect(data.dragIcon).toBeNull();
    expect(c.lines.filter((l) => /error/i.test(l))).toEqual([]);
  });

  it('a drag quoting a serial the client was never given is cancelled; nothing is dragged', async () => {
    const { socket, input, data } = serve();
    input.deviceAdded(pointer);
    const c = client(socket, 'bad-serial');
    await c.waitFor(/^MAPPED 1024x768$/);
    input.handle(at(50, 60));
    await c.waitFor(/^PTR_ENTER /);
    input.handle(button(true));
    await c.waitFor(/^START_DRAG serial=bad$/);
    await c.waitFor(/^SRC_CANCELLED$/);
    expect(data.dragging).toBeNull();
    input.handle(button(false));
    // The pointer still has the window and the release is delivered.
    await c.waitFor(/^BUTTON serial=\d+ button=272 state=0$/);
    expect(c.lines.filter((l) => l.startsWith('DND_'))).toEqual([]);
  });
});
