// The kiosk's wl_seat (plugin/wayland/seat.ts, keyboard/pointer/touch.ts, seat-input.ts)
// against a real libwayland client on the host: the version-dependent parts the rig test
// (test/integration/wayland-input.test.ts, with uinput, udevd and libinput) does not cover.
// Here there is no libinput: the seat is fed InputStack's events (plugin/input/devices.ts
// InputEvent) directly, as the compositor passes them on.
import { describe, it, expect, afterEach } from 'vitest';
import { Display } from '../../protocols/runtime.js';
import { createCompositorGlobal, finishUnshown, type Surface } from '../../plugin/wayland/surface.js';
import { createShmGlobal } from '../../plugin/wayland/shm.js';
import { createSubcompositorGlobal } from '../../plugin/wayland/subsurface.js';
import { createXdgShellGlobal } from '../../plugin/wayland/xdg-shell.js';
import { Seat } from '../../plugin/wayland/seat.js';
import { SeatInput } from '../../plugin/wayland/seat-input.js';
import { buildWaylandClient, startClient, useRuntimeDir } from '../integration/helpers/wayland-client.js';
import { useServedSeat } from './served-seat.js';

let n = 0;
const runtimeDir = useRuntimeDir('gp-seat-');
const served = useServedSeat();

/** A display with a seat whose scene is the newest toplevel, shown with fit on 1024x768. */
function serve(): { socket: string; input: SeatInput } {
  const d = Display.create();
  const socket = `gp-seat-${process.pid}-${++n}`;
  d.addSocket(socket);
  createCompositorGlobal(d, () => {});
  createShmGlobal(d);
  createSubcompositorGlobal(d, { onSubsurface: () => {} });
  let root: Surface | null = null;
  const seat = new Seat(d, { keymap: { layout: 'us' } });
  served.serving(d, seat);
  const input = new SeatInput(seat, { output: () => ({ w: 1024, h: 768 }), fit: () => 'fit', root: () => (root?.size && !root.resource.destroyed ? root : null) });
  createXdgShellGlobal(d, {
    size: () => ({ width: 1024, height: 768 }),
    onToplevel: (t) => {
      root = t.surface;
      // As the compositor: a commit may map or resize what the pointer is over. Its frame is
      // done at once (there is no output here).
      t.surface.on('commit', (c) => {
        finishUnshown(c);
        queueMicrotask(() => input.refresh());
      });
    },
    onToplevelDestroyed: () => {
      root = null;
      input.refresh();
    },
  });
  d.start({ onError: () => {} });
  return { socket, input };
}

function client(socket: string, extra: NodeJS.ProcessEnv = {}) {
  const c = startClient(buildWaylandClient(), ['input', '512', '256'], { runtimeDir: runtimeDir(), socket, extra });
  served.onCleanup(() => c.kill());
  return c;
}

/** The lines after `from` once `last` has come (then a round trip for stragglers). */
async function linesUntil(c: ReturnType<typeof client>, from: number, last: RegExp): Promise<string[]> {
  await new Promise<void>((resolve, reject) => {
    const end = Date.now() + 20_000;
    const t = setInterval(() => {
      if (c.lines.slice(from).some((l) => last.test(l))) (clearInterval(t), resolve());
      else if (Date.now() > end) (clearInterval(t), reject(new Error(`no ${last} after line ${from}: ${c.lines.slice(from).join(' | ')}`)));
    }, 5);
  });
  const synced = c.lines.filter((l) => l === 'SYNCED').length;
  c.child.stdin!.write('sync\n');
  await new Promise<void>((r) => {
    const t = setInterval(() => c.lines.filter((l) => l === 'SYNCED').length > synced && (clearInterval(t), r()), 5);
  });
  return c.lines.slice(from).filter((l) => l !== 'SYNCED').map((l) => l.replace(/ serial=\d+/, ' serial=S'));
}

const pointer = { sysname: 'event1', name: 'test pointer', capabilities: { keyboard: false, pointer: true, touch: false } };

describe('wl_seat by version', { timeout: 30_000 }, () => {
  it('a wl_pointer kept after its capability went gets nothing, ever; the new one gets the events', async () => {
    const { socket, input } = serve();
    input.deviceAdded(pointer);
    const c = client(socket, { GP_KEEP_DEVICES: '1' });
    await c.waitFor(/^PTR_ENTER serial=\d+ surface=toplevel x=256.00000000 y=128.00000000$/);
    input.deviceRemoved(pointer);
    await c.waitFor(/^CAPS pointer=0/);
    input.handle({ kind: 'absolute', x: 300 / 1024, y: 200 / 768 });
    input.deviceAdded(pointer);
    const from = c.lines.length;
    // (Once the client has its new wl_pointer: its enter says so.)
    await c.waitFor(/^PTR_ENTER serial=\d+ surface=toplevel x=150/);
    input.handle({ kind: 'button', button: 0x110, pressed: true });
    input.handle({ kind: 'button', button: 0x110, pressed: false });
    const got = await linesUntil(c, from, /^BUTTON serial=\d+ button=272 state=0$/);
    // The new object is told where the pointer is now (it moved while there was none).
    expect(got).toEqual([
      'CAPS pointer=1 keyboard=0 touch=0',
      'PTR_ENTER serial=S surface=toplevel x=150.00000000 y=36.00000000',
      'FRAME',
      'BUTTON serial=S button=272 state=1',
      'FRAME',
      'BUTTON serial=S button=272 state=0',
      'FRAME',
    ]);
    expect(c.lines.filter((l) => l.startsWith('STALE'))).toEqual([]);
  });

  it('wheel: v8 value120, v7 axis_discrete, v4 only the axis (no source, no frame)', async () => {
    const { socket, input } = serve();
    input.deviceAdded(pointer);
    const want: Record<string, string[]> = {
      '8': ['AXIS_SOURCE 0', 'AXIS_VALUE120 axis=0 v=120', 'AXIS axis=0 value=15.00000000', 'FRAME', 'AXIS_SOURCE 0', 'AXIS_VALUE120 axis=1 v=-60', 'AXIS axis=1 value=-7.50000000', 'FRAME'],
      '7': ['AXIS_SOURCE 0', 'AXIS_DISCRETE axis=0 n=1', 'AXIS axis=0 value=15.00000000', 'FRAME', 'AXIS_SOURCE 0', 'AXIS axis=1 value=-7.50000000', 'FRAME'],
      '4': ['AXIS axis=0 value=15.00000000', 'AXIS axis=1 value=-7.50000000'],
    };
    for (const [version, lines] of Object.entries(want)) {
      const c = client(socket, { GP_SEAT_VERSION: version });
      await linesUntil(c, 0, /^PTR_ENTER/);
      const from = c.lines.length;
      input.handle({ kind: 'scroll', axis: 'vertical', v120: 120 });
      // Half a detent of a high-resolution wheel, to the left.
      input.handle({ kind: 'scroll', axis: 'horizontal', v120: -60 });
      const got = await linesUntil(c, from, /^AXIS axis=1/);
      expect(got, `seat version ${version}`).toEqual(lines);
      await c.kill();
    }
  });

  it('wl_keyboard v3 gets no repeat_info; the keymap memfd is sealed; enter carries the keys held', async () => {
    const { socket, input } = serve();
    input.deviceAdded({ sysname: 'event2', name: 'test keyboard', capabilities: { keyboard: true, pointer: false, touch: false } });
    input.handle({ kind: 'key', code: 30, pressed: true }); // held before the client comes
    input.handle({ kind: 'key', code: 42, pressed: true });
    const c = client(socket, { GP_SEAT_VERSION: '3' });
    const got = await linesUntil(c, 0, /^MODS/);
    expect(got.filter((l) => !/^CONFIGURE|^MAPPED/.test(l))).toEqual([
      'SEAT version=3',
      'CAPS pointer=0 keyboard=1 touch=0',
      'SEAT_NAME seat0',
      expect.stringMatching(/^KEYMAP format=1 size=\d+ keys=\d+ layouts=1 seals=0xf$/),
      'KB_ENTER serial=S surface=toplevel keys=30,42',
      'MODS serial=S depressed=1 latched=0 locked=0 group=0 active=Shift',
    ]);
  });

  it('focus follows the toplevel: leave on unmap (keys then go nowhere), enter again on map', async () => {
    const { socket, input } = serve();
    input.deviceAdded({ sysname: 'event3', name: 'test keyboard+pointer', capabilities: { keyboard: true, pointer: true, touch: false } });
    const c = client(socket);
    await linesUntil(c, 0, /^PTR_ENTER/);
    await c.waitFor(/^MODS/);
    let from = c.lines.length;
    c.child.stdin!.write('unmap\n');
    expect(await linesUntil(c, from, /^PTR_LEAVE/)).toEqual(['KB_LEAVE serial=S surface=toplevel', 'PTR_LEAVE serial=S surface=toplevel', 'FRAME']);
    from = c.lines.length;
    input.handle({ kind: 'key', code: 48, pressed: true });
    input.handle({ kind: 'key', code: 48, pressed: false });
    input.handle({ kind: 'absolute', x: 300 / 1024, y: 200 / 768 });
    c.child.stdin!.write('map\n');
    expect(await linesUntil(c, from, /^PTR_ENTER/)).toEqual([
      'KB_ENTER serial=S surface=toplevel keys=',
      'MODS serial=S depressed=0 latched=0 locked=0 group=0 active=',
      'PTR_ENTER serial=S surface=toplevel x=150.00000000 y=36.00000000',
      'FRAME',
    ]);
  });

  it("a sub-surface's input region decides where it takes the pointer; elsewhere the surface under it does", async () => {
    // The client's cover sub-surface hides all of its 512x256 toplevel (shown x2 from (0,128))
    // but takes input on its right half only; Firefox's content sub-surface takes none.
    const { socket, input } = serve();
    input.deviceAdded(pointer);
    const c = client(socket, { GP_INPUT_COVER: '1' });
    // It enters the cover at the output's centre (surface x 256, the right half's first column).
    expect(await linesUntil(c, 0, /^PTR_ENTER/)).toContain('PTR_ENTER serial=S surface=cover x=256.00000000 y=128.00000000');
    let from = c.lines.length;
    input.handle({ kind: 'absolute', x: 200 / 1024, y: 384 / 768 });
    expect(await linesUntil(c, from, /^FRAME/)).toEqual(['PTR_LEAVE serial=S surface=cover', 'FRAME', 'PTR_ENTER serial=S surface=toplevel x=100.00000000 y=128.00000000', 'FRAME']);
    from = c.lines.length;
    input.handle({ kind: 'absolute', x: 800 / 1024, y: 384 / 768 });
    expect(await linesUntil(c, from, /^PTR_ENTER/)).toEqual(['PTR_LEAVE serial=S surface=toplevel', 'FRAME', 'PTR_ENTER serial=S surface=cover x=400.00000000 y=128.00000000', 'FRAME']);
  });
});
