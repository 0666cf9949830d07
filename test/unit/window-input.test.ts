// Window mode's input (plugin/window/input.ts, keymap.ts, cursor.ts) against our own
// compositor in the same process (plugin/wayland: seat, xdg-shell, sub-surfaces, viewporter,
// wl_shm), real libwayland on both ends. The compositor's seat is fed InputStack events
// directly (as seat.test does; the rig's window-compositor test types on uinput devices).
// The guest end is a recorder of InputTarget calls, the one thing faked here: what QEMU
// makes of them is the rig test's (a real QEMU's input side observed there).
import { describe, it, expect, afterEach } from 'vitest';
import { EventEmitter } from 'node:events';
import { existsSync, readdirSync } from 'node:fs';
import { Display } from '../../protocols/runtime.js';
import { createCompositorGlobal, finishUnshown, type Surface } from '../../plugin/wayland/surface.js';
import { createShmGlobal } from '../../plugin/wayland/shm.js';
import { createXdgShellGlobal } from '../../plugin/wayland/xdg-shell.js';
import { createSubcompositorGlobal } from '../../plugin/wayland/subsurface.js';
import { createViewporterGlobal } from '../../plugin/wayland/viewporter.js';
import { Seat } from '../../plugin/wayland/seat.js';
import { SeatInput } from '../../plugin/wayland/seat-input.js';
import { PointerConstraints } from '../../plugin/wayland/pointer-constraints.js';
import { copyCursorPixels } from '../../plugin/wayland/cursor-image.js';
import { Keymap } from '../../plugin/input/keymap.js';
import { startClient, useRuntimeDir } from '../integration/helpers/wayland-client.js';
import { roundtrip } from '../../protocols/client.js';
import { Desktop } from '../../plugin/window/connection.js';
import { WindowOutput } from '../../plugin/window/window-output.js';
import { WindowInput, type WindowInputOptions } from '../../plugin/window/input.js';
import { DesktopKeymap } from '../../plugin/window/keymap.js';
import type { InputTarget } from '../../plugin/input/guest-port.js';
import type { CloseReason } from '../../protocols/client-runtime.js';
import { ZwpPointerConstraintsV1Lifetime } from '../../protocols/generated/client/pointer_constraints_unstable_v1.js';
import type { QemuButton, TouchKind } from '../../plugin/sources/qemu-dbus.js';
import { MultiTouchRefused } from '../../plugin/sources/qemu-dbus-protocol.js';
import type { CpuView, GuestPlaneInfo, GuestSource, GuestSourceEvents, PlaneQuery } from '../../plugin/sources/source.js';

const runtimeDir = useRuntimeDir('gp-wininput-');
const fds = () => readdirSync('/proc/self/fd').length;
let n = 0;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const k of cleanups.splice(0).reverse()) await k();
});

/** Our compositor on a 1024x768 output, showing the newest toplevel with fit; its seat fed directly. */
function compositor(): { socket: string; input: SeatInput; seat: Seat; root: () => Surface | null } {
  const d = Display.create();
  const socket = `gp-wininput-${process.pid}-${++n}`;
  d.addSocket(socket);
  createCompositorGlobal(d, (s) => s.on('commit', (c) => finishUnshown(c)));
  createShmGlobal(d);
  createSubcompositorGlobal(d);
  createViewporterGlobal(d);
  let root: Surface | null = null;
  const seat = new Seat(d, { keymap: { layout: 'us' } });
  const input = new SeatInput(seat, { output: () => ({ w: 1024, h: 768 }), fit: () => 'fit', root: () => (root?.size && !root.resource.destroyed ? root : null) });
  input.constraints = new PointerConstraints(d, seat);
  createXdgShellGlobal(d, {
    size: () => ({ width: 1024, height: 768 }),
    onToplevel: (t) => {
      root = t.surface;
      t.surface.on('commit', () => queueMicrotask(() => input.refresh()));
    },
    onToplevelDestroyed: () => {
      root = null;
      input.refresh();
    },
  });
  d.start({ onError: () => {} });
  cleanups.push(async () => {
    await d.stop();
    d.destroy();
    seat.close();
  });
  return { socket, input, seat, root: () => root };
}

/** A QEMU-like guest: a 320x200 picture the CPU reads, and a cursor image (CursorDefine) when given. */
class Guest extends EventEmitter<GuestSourceEvents> implements GuestSource {
  readonly name = 'input test guest';
  readonly changeEvents = true;
  readonly bytes = new Uint8Array(320 * 200 * 4);
  cursor: { id: number; width: number; height: number; hotX: number; hotY: number; pixels: Uint8Array } | null = null;
  frame = 1;
  query(kind: 'primary' | 'cursor'): PlaneQuery {
    const base = { transport: 'region' as const, format: 0x34325241, modifier: 0n, offset: 0, generation: 0, x: 0, y: 0 };
    if (kind === 'cursor') {
      const c = this.cursor;
      if (!c) return { state: 'disabled' };
      return { state: 'ok', plane: { ...base, kind, bufferId: c.id, width: c.width, height: c.height, stride: c.width * 4, size: c.pixels.length, hotX: c.hotX, hotY: c.hotY } };
    }
    const plane: GuestPlaneInfo = { ...base, kind, format: 0x34325258, bufferId: 0, width: 320, height: 200, stride: 1280, size: this.bytes.length, hotX: -1, hotY: -1, frame: this.frame };
    return { state: 'ok', plane };
  }
  exportDmabuf(): number {
    throw new Error('no dma-buf');
  }
  cpuView(p: GuestPlaneInfo): CpuView {
    return { bytes: p.kind === 'cursor' ? this.cursor!.pixels : this.bytes, offset: 0 };
  }
  frameShown(): void {}
  close(): void {}
}

/** What QEMU's Keyboard and Mouse would be sent, as lines. */
class Recorder implements InputTarget {
  readonly calls: string[] = [];
  async key(code: number, down: boolean): Promise<void> {
    this.calls.push(`key ${code} ${down ? 'down' : 'up'}`);
  }
  async button(b: QemuButton, down: boolean): Promise<void> {
    this.calls.push(`button ${b} ${down ? 'down' : 'up'}`);
  }
  async pointerTo(x: number, y: number, _from?: unknown, rel?: { dx: number; dy: number }): Promise<void> {
    this.calls.push(`pointer ${x},${y}${rel ? ` rel ${rel.dx},${rel.dy}` : ''}`);
  }
}

/** …and QEMU's MultiTouch (8.1+), or its refusal (7.x has none). */
class TouchRecorder extends Recorder {
  constructor(private readonly refuse = false) {
    super();
  }
  async touch(kind: TouchKind, slot: number, x: number, y: number): Promise<void> {
    if (this.refuse) throw new MultiTouchRefused('org.freedesktop.DBus.Error.UnknownMethod: No such interface “org.qemu.Display1.MultiTouch”');
    this.calls.push(`touch ${kind} ${slot} ${x},${y}`);
  }
}

async function until(what: string, ok: () => boolean): Promise<void> {
  const end = Date.now() + 10_000;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The window on our compositor with input into `rec`; waits for the guest to be shown and the seat to have focused it. */
async function window(opts: { keyboard?: boolean; pointer?: boolean; absolute?: boolean; touch?: WindowInputOptions['touch']; rec?: Recorder; offersMultiTouch?: boolean } = {}) {
  const { socket, input, seat } = compositor();
  input.deviceAdded({ sysname: 'event1', name: 'test kbd+ptr', capabilities: { keyboard: opts.keyboard ?? true, pointer: opts.pointer ?? true, touch: false } });
  if (opts.touch) input.deviceAdded({ sysname: 'event2', name: 'test touchscreen', capabilities: { keyboard: false, pointer: false, touch: true } });
  const log: string[] = [];
  const desktop = await Desktop.connect({ display: socket, log: (l) => log.push(l) });
  const out = new WindowOutput(desktop, { title: 'gp input', fit: 'fit' });
  const guest = new Guest();
  const rec = opts.rec ?? new Recorder();
  const captures: boolean[] = [];
  const touch = opts.touch ? { touch: opts.touch, offersMultiTouch: () => opts.offersMultiTouch ?? false } : {};
  const win = new WindowInput(desktop, out, rec, { cursorSource: guest, log: (l) => log.push(l), onCapture: (on) => captures.push(on), ...(opts.absolute === false ? { isAbsolute: async () => false } : {}), ...touch });
  cleanups.push(async () => {
    win.close();
    await out.close();
    desktop.close();
  });
  out.attach(guest);
  await until('the guest shown', () => out.statsSnapshot().framesPresented > 0);
  input.refresh();
  return { input, seat, out, win, rec, guest, log, desktop, captures };
}

describe('window input on our compositor', { timeout: 30_000 }, () => {
  it('keys typed on the compositor reach the guest as evdev codes, only while the window has the focus; held keys are released when the focus leaves', async () => {
    const w = await window();
    await until('keyboard focus', () => w.win.focused);
    w.input.handle({ kind: 'key', code: 30, pressed: true }); // KEY_A
    w.input.handle({ kind: 'key', code: 30, pressed: false });
    w.input.handle({ kind: 'key', code: 29, pressed: true }); // KEY_LEFTCTRL, held
    w.input.handle({ kind: 'key', code: 46, pressed: true }); // KEY_C, held
    await until('four keys', () => w.rec.calls.filter((c) => c.startsWith('key')).length === 4);
    expect(w.rec.calls.filter((c) => c.startsWith('key'))).toEqual(['key 30 down', 'key 30 up', 'key 29 down', 'key 46 down']);
    // The keyboard capability goes (the desktop's keyboard unplugged): its focus leaves with it.
    w.input.deviceRemoved({ sysname: 'event1', name: 'test kbd+ptr' });
    await until('released', () => w.rec.calls.filter((c) => c.startsWith('key')).length === 6);
    expect(w.rec.calls.filter((c) => c.startsWith('key')).slice(4).sort()).toEqual(['key 29 up', 'key 46 up']);
    expect(w.win.focused).toBe(false);
    // The release of a key whose press the guest never saw is not sent.
    w.input.deviceAdded({ sysname: 'event1', name: 'test kbd+ptr', capabilities: { keyboard: true, pointer: true, touch: false } });
    w.input.refresh();
    await until('focus again', () => w.win.focused);
    w.input.handle({ kind: 'key', code: 46, pressed: false });
    w.input.handle({ kind: 'key', code: 48, pressed: true });
    await until('key 48', () => w.rec.calls.includes('key 48 down'));
    expect(w.rec.calls.filter((c) => c.startsWith('key')).slice(6)).toEqual(['key 48 down']);
  });

  it('the pointer lands on the guest pixel under it, through the letterbox (320x200 fit into 1024x768: 3.2x, 64 px bands); buttons and the wheel', async () => {
    const w = await window({ keyboard: false });
    const abs = (x: number, y: number) => w.input.handle({ kind: 'absolute', x: x / 1024, y: y / 768 });
    const pointers = () => w.rec.calls.filter((c) => c.startsWith('pointer'));
    abs(512, 384); // the middle: over the guest subsurface
    await until('a move', () => pointers().includes('pointer 160,100'));
    abs(32, 64 + 32); // guest (10, 10)
    abs(1023, 767); // the bottom band, right: clamped onto the picture's last row
    abs(100, 10); // the top band (the black parent): the top row
    await until('three moves', () => pointers().length >= 4);
    expect(pointers().slice(-3)).toEqual(['pointer 10,10', 'pointer 319,199', 'pointer 31,0']);
    w.input.handle({ kind: 'button', button: 0x110, pressed: true });
    w.input.handle({ kind: 'button', button: 0x110, pressed: false });
    w.input.handle({ kind: 'button', button: 0x111, pressed: true }); // held as the pointer leaves
    w.input.handle({ kind: 'scroll', axis: 'vertical', v120: 240 });
    w.input.handle({ kind: 'scroll', axis: 'vertical', v120: 60 }); // half a detent: kept
    w.input.handle({ kind: 'scroll', axis: 'vertical', v120: -180 }); // back over it: one up
    await until('the wheel', () => w.rec.calls.filter((c) => c.startsWith('button wheel')).length === 6);
    expect(w.rec.calls.filter((c) => c.startsWith('button'))).toEqual([
      'button left down', 'button left up', 'button right down',
      'button wheel-down down', 'button wheel-down up', 'button wheel-down down', 'button wheel-down up',
      'button wheel-up down', 'button wheel-up up',
    ]);
  });

  it("the guest's cursor image is the desktop's pointer image, with its hotspot, scaled as the guest; a new image replaces it, none hides the pointer", async () => {
    const w = await window({ keyboard: false });
    const red = new Uint8Array(16 * 16 * 4).fill(0xff);
    w.guest.cursor = { id: 1, width: 16, height: 16, hotX: 2, hotY: 3, pixels: red };
    w.guest.emit('changed');
    w.input.handle({ kind: 'absolute', x: 0.5, y: 0.5 });
    await until('set_cursor', () => !!w.seat.pointer.cursor?.surface?.buffer);
    const c = w.seat.pointer.cursor!;
    expect([c.hotX, c.hotY]).toEqual([Math.round(2 * 3.2), Math.round(3 * 3.2)]);
    expect(c.surface!.size).toEqual({ w: Math.round(16 * 3.2), h: Math.round(16 * 3.2) });
    const pic = copyCursorPixels(c.surface!.buffer);
    expect(pic && 'bytes' in pic ? [pic.width, pic.height, pic.bytes[0]] : pic).toEqual([16, 16, 0xff]);
    // A new image (CursorDefine): the desktop gets it without the pointer moving.
    w.guest.cursor = { id: 2, width: 8, height: 8, hotX: 0, hotY: 0, pixels: new Uint8Array(8 * 8 * 4).fill(0x40) };
    w.guest.emit('changed');
    await until('the new image', () => {
      const b = w.seat.pointer.cursor?.surface?.buffer;
      const p = b ? copyCursorPixels(b) : null;
      return !!p && 'bytes' in p && p.width === 8;
    });
    expect(w.win.cursor!.images).toBe(2);
    // MouseSet hid it: the desktop hides its pointer over the window.
    w.guest.cursor = null;
    w.guest.emit('changed');
    await until('hidden', () => w.seat.pointer.cursor?.surface === null);
  });

  it('closing lets go of what the guest holds and leaves no fd', async () => {
    const before = fds();
    const w = await window();
    await until('keyboard focus', () => w.win.focused);
    w.input.handle({ kind: 'key', code: 42, pressed: true });
    w.input.handle({ kind: 'absolute', x: 0.5, y: 0.5 });
    w.input.handle({ kind: 'button', button: 0x112, pressed: true });
    await until('held', () => w.rec.calls.includes('button middle down'));
    w.win.close();
    expect(w.rec.calls.slice(-2)).toEqual(['key 42 up', 'button middle up']);
    for (const k of cleanups.splice(0).reverse()) await k();
    expect(fds()).toBe(before);
  });
});

// Touch on our compositor (SeatInput → wl_touch, as libinput's touchscreen would) into the
// window: the 320x200 guest fit into 1024x768 (3.2x, 64 px bands top and bottom).
describe('window touch on our compositor', { timeout: 30_000 }, () => {
  const touch = (w: { input: SeatInput }, phase: 'down' | 'motion' | 'up' | 'cancel', slot: number, x = 0, y = 0) => w.input.handle({ kind: 'touch', phase, slot, x: x / 1024, y: y / 768 });
  const frame = (w: { input: SeatInput }) => w.input.handle({ kind: 'touch-frame' });
  const touches = (rec: Recorder) => rec.calls.filter((c) => c.startsWith('touch'));

  it('--touch multitouch: two fingers are two MultiTouch slots at their guest pixels (begin, update, end); a finger in the letterbox is not the guest\'s; touch ids take free slots', async () => {
    const rec = new TouchRecorder();
    const w = await window({ keyboard: false, pointer: false, touch: 'multitouch', rec });
    await until('the window has wl_touch', () => !!w.win.touch);
    touch(w, 'down', 5, 512, 384); // the middle: guest (160, 100), on the guest sub-surface
    touch(w, 'down', 9, 32, 64 + 32); // guest (10, 10)
    frame(w);
    touch(w, 'down', 2, 100, 10); // the top band (the black parent): nobody's in the guest
    frame(w);
    touch(w, 'motion', 5, 512 + 32, 384 + 16); // guest (170, 105)
    touch(w, 'motion', 9, 1023, 767); // slid off into the band: kept on the picture's edge
    frame(w);
    touch(w, 'up', 5);
    touch(w, 'up', 2);
    frame(w);
    touch(w, 'down', 7, 64, 128); // takes slot 0, free again: guest (20, 20)
    touch(w, 'up', 9);
    touch(w, 'up', 7);
    frame(w);
    await until('the touches', () => touches(rec).length === 8);
    expect(touches(rec)).toEqual([
      'touch begin 0 160,100', 'touch begin 1 10,10',
      'touch update 0 170,105', 'touch update 1 319,199',
      'touch end 0 170,105',
      'touch begin 0 20,20', 'touch end 1 319,199', 'touch end 0 20,20',
    ]);
    expect(rec.calls.filter((c) => !c.startsWith('touch')), 'no pointer or button from a touch').toEqual([]);
    expect(w.win.touch!.counts).toEqual({ downs: 3, motions: 2, ups: 3, cancels: 0 });
  });

  it('wl_touch.cancel, and the seat losing touch, end the fingers down in the guest (MultiTouch end: QEMU\'s cancel would leave them down)', async () => {
    const rec = new TouchRecorder();
    const w = await window({ keyboard: false, pointer: false, touch: 'multitouch', rec });
    await until('the window has wl_touch', () => !!w.win.touch);
    touch(w, 'down', 0, 512, 384);
    touch(w, 'down', 1, 32, 96);
    frame(w);
    touch(w, 'cancel', -1); // libinput's cancel: our compositor sends wl_touch.cancel
    await until('ended', () => touches(rec).length === 4);
    expect(touches(rec).slice(2).sort()).toEqual(['touch end 0 160,100', 'touch end 1 10,10']);
    touch(w, 'down', 3, 512, 384);
    frame(w);
    await until('down again', () => touches(rec).length === 5);
    // The touchscreen unplugged: the seat's touch capability goes, the window lets go of its wl_touch.
    w.input.deviceRemoved({ sysname: 'event2', name: 'test touchscreen' });
    await until('ended with the capability', () => touches(rec).length === 6 && w.win.touch === null);
    expect(touches(rec)).toEqual(['touch begin 0 160,100', 'touch begin 1 10,10', ...touches(rec).slice(2, 4), 'touch begin 0 160,100', 'touch end 0 160,100']);
  });

  it('by default a finger is the guest\'s pointer and left button (any guest takes it), said once where QEMU offers MultiTouch; where QEMU refuses MultiTouch, touch falls back to the pointer', async () => {
    const rec = new TouchRecorder();
    const w = await window({ keyboard: false, pointer: false, touch: 'pointer', rec, offersMultiTouch: true });
    await until('the window has wl_touch', () => !!w.win.touch);
    touch(w, 'down', 0, 512, 384);
    touch(w, 'down', 1, 32, 96); // a second finger moves the pointer, no second press
    touch(w, 'motion', 0, 544, 400);
    touch(w, 'up', 0);
    touch(w, 'up', 1);
    frame(w);
    await until('released', () => rec.calls.includes('button left up'));
    expect(rec.calls).toEqual(['pointer 160,100', 'button left down', 'pointer 10,10', 'pointer 170,105', 'button left up']);
    touch(w, 'down', 0, 512, 384);
    touch(w, 'up', 0);
    await until('twice', () => rec.calls.filter((c) => c === 'button left up').length === 2);
    expect(w.log.filter((l) => l.includes('--touch multitouch'))).toHaveLength(1);

    const refusing = new TouchRecorder(true);
    const v = await window({ keyboard: false, pointer: false, touch: 'multitouch', rec: refusing });
    await until('the window has wl_touch', () => !!v.win.touch);
    touch(v, 'down', 0, 512, 384);
    touch(v, 'up', 0);
    frame(v);
    await until('refused', () => v.win.touch?.multiTouch === false);
    touch(v, 'down', 0, 32, 96);
    touch(v, 'up', 0);
    frame(v);
    await until('as the pointer', () => refusing.calls.includes('button left up'));
    expect(refusing.calls).toEqual(['pointer 10,10', 'button left down', 'button left up']);
    expect(v.log.filter((l) => l.includes('MultiTouch refused'))).toEqual([expect.stringContaining('touch goes to the guest as its pointer from now on')]);
  });
});

describe('pointer capture for a relative guest (our compositor serves relative pointer, pointer constraints, shortcuts inhibit)', { timeout: 30_000 }, () => {
  it('a click captures (the click is not the guest\'s), unaccelerated motion goes to the guest while the host pointer stays; Ctrl+Alt+G releases', async () => {
    const w = await window({ absolute: false });
    expect(w.log.filter((l) => /no (relative pointer|pointer constraints|keyboard shortcuts)/.test(l))).toEqual([]);
    await until('keyboard focus', () => w.win.focused);
    w.input.handle({ kind: 'absolute', x: 0.5, y: 0.5 });
    await until('the guest mouse known relative', () => w.log.some((l) => /mouse is relative: click in the window/.test(l)));
    w.input.handle({ kind: 'button', button: 0x110, pressed: true });
    w.input.handle({ kind: 'button', button: 0x110, pressed: false });
    await until('captured', () => w.win.captured);
    expect(w.captures).toEqual([true]);
    expect(w.input.constraints!.locked).toBe(true);
    await until('shortcuts inhibited', () => w.input.constraints!.shortcutsInhibited);
    const host = w.input.pointer;
    const from = w.rec.calls.length;
    w.input.handle({ kind: 'motion', dx: 7.5, dy: 7.5, dxRaw: 3, dyRaw: -2 });
    w.input.handle({ kind: 'absolute', x: 0.1, y: 0.1 }); // an absolute device cannot move a locked pointer
    w.input.handle({ kind: 'motion', dx: 2.5, dy: 0, dxRaw: 1, dyRaw: 0 });
    await until('two moves', () => w.rec.calls.slice(from).filter((c) => c.startsWith('pointer')).length === 2);
    expect(w.input.pointer).toEqual(host);
    // From where the guest's pointer was (160, 100), by the raw counts.
    expect(w.rec.calls.slice(from)).toEqual(['pointer 163,98 rel 3,-2', 'pointer 164,98 rel 1,0']);
    expect(w.rec.calls.filter((c) => c.startsWith('button'))).toEqual([]); // the capturing click
    // Ctrl+Alt+G: released; Ctrl and Alt are the guest's keys, G is not.
    for (const [code, down] of [[29, true], [56, true], [34, true], [34, false], [56, false], [29, false]] as const) w.input.handle({ kind: 'key', code, pressed: down });
    await until('released', () => !w.win.captured);
    await until('the keys', () => w.rec.calls.filter((c) => c.startsWith('key')).length === 4);
    expect(w.rec.calls.filter((c) => c.startsWith('key'))).toEqual(['key 29 down', 'key 56 down', 'key 56 up', 'key 29 up']);
    expect(w.captures).toEqual([true, false]);
    await until('the lock gone on the server', () => !w.input.constraints!.locked && !w.input.constraints!.shortcutsInhibited);
    w.input.handle({ kind: 'motion', dx: 10, dy: 0, dxRaw: 4, dyRaw: 0 });
    expect(w.input.pointer.x).toBe(host.x + 10);
  });
});

describe('our compositor\'s pointer constraints and shortcuts inhibit (server side)', { timeout: 30_000 }, () => {
  it('a second lock on the same surface is the protocol error already_constrained; a second inhibitor already_inhibited', async () => {
    for (const which of ['lock', 'inhibit'] as const) {
      const w = await window({ keyboard: false });
      const g = w.desktop.globals;
      const closed = new Promise<CloseReason>((r) => w.desktop.connection.once('closed', r));
      const pointer = g.seat!.getPointer();
      if (which === 'lock') for (let i = 0; i < 2; i++) g.pointerConstraints!.lockPointer(w.out.parent, pointer, null, ZwpPointerConstraintsV1Lifetime.ONESHOT);
      else for (let i = 0; i < 2; i++) g.shortcutsInhibit!.inhibitShortcuts(w.out.parent, g.seat!);
      expect(await closed).toMatchObject(which === 'lock' ? { kind: 'protocol-error', interface: 'zwp_pointer_constraints_v1', code: 1 } : { kind: 'protocol-error', interface: 'zwp_keyboard_shortcuts_inhibit_manager_v1', code: 0 });
      for (const k of cleanups.splice(0).reverse()) await k();
    }
  });
});

// zwp_pointer_constraints_v1.confine_pointer on our compositor: with our own client bindings
// (regions, lifetimes, set_region), and Debian's weston-confine (a real client: a left click
// toggles confinement to its drawing area).
describe('our compositor confines the pointer (confine_pointer)', { timeout: 30_000 }, () => {
  it('activates where the pointer enters the region, keeps every move in it (sliding along its edge), set_region on commit; oneshot is spent once unconfined, persistent comes back', async () => {
    const w = await window({ keyboard: false });
    const g = w.desktop.globals;
    const pointer = g.seat!.getPointer();
    // The guest sub-surface (1024x640 at y 64 of the 1024x768 output): a region 200x100 at (100, 100) of it.
    const region = (x: number, y: number, width: number, height: number) => {
      const r = g.compositor.createRegion();
      r.add(x, y, width, height);
      return r;
    };
    const events: string[] = [];
    const abs = (x: number, y: number) => w.input.handle({ kind: 'absolute', x: x / 1024, y: y / 768 });
    const rel = (dx: number, dy: number) => w.input.handle({ kind: 'motion', dx, dy, dxRaw: dx, dyRaw: dy });
    abs(50, 150); // on the sub-surface, outside the region
    const r1 = region(100, 100, 200, 100);
    const oneshot = g.pointerConstraints!.confinePointer(w.out.guestSurface, pointer, r1, ZwpPointerConstraintsV1Lifetime.ONESHOT);
    r1.destroy(); // the region is copied at the request
    oneshot.on({ confined: () => events.push('confined'), unconfined: () => events.push('unconfined') });
    await roundtrip(w.desktop.connection);
    expect(w.input.constraints!.confinement).toBeNull();
    rel(500, 0); // not confined yet: free
    expect(w.input.pointer).toEqual({ x: 550, y: 150 });
    abs(150, 214); // into the region (local 150, 150): confined
    await until('confined', () => events.length === 1);
    // The region is output (100, 164) to (300, 264).
    rel(500, 0); // to the right edge: as far as stays inside
    expect(w.input.pointer.x).toBeGreaterThan(299.9);
    expect(w.input.pointer.x).toBeLessThan(300);
    expect(w.input.pointer.y).toBe(214);
    rel(10, 500); // diagonal into the corner: slides down the edge
    expect(w.input.pointer.x).toBeGreaterThan(299.9);
    expect(w.input.pointer.y).toBeGreaterThan(263.9);
    expect(w.input.pointer.y).toBeLessThan(264);
    abs(1000, 700); // an absolute device is kept in too
    expect(w.input.pointer.x).toBeLessThan(300);
    expect(w.input.pointer.y).toBeLessThan(264);
    // set_region applies with the commit; the pointer now outside it: unconfined, and a oneshot is spent.
    const r2 = region(0, 0, 50, 50);
    oneshot.setRegion(r2);
    r2.destroy();
    await roundtrip(w.desktop.connection);
    expect(w.input.constraints!.confinement, 'not before the commit').not.toBeNull();
    w.out.guestSurface.commit();
    w.out.parent.commit();
    await until('unconfined', () => events.length === 2);
    abs(20, 84); // into the new region: a spent oneshot stays inert
    await roundtrip(w.desktop.connection);
    expect(events).toEqual(['confined', 'unconfined']);
    expect(w.input.constraints!.confinement).toBeNull();
    oneshot.destroy();
    // Persistent, no region (the whole sub-surface): confined at once; away and back with set_region.
    const persistent = g.pointerConstraints!.confinePointer(w.out.guestSurface, pointer, null, ZwpPointerConstraintsV1Lifetime.PERSISTENT);
    persistent.on({ confined: () => events.push('confined'), unconfined: () => events.push('unconfined') });
    await until('confined again', () => events.length === 3);
    rel(0, -500); // up to the sub-surface's top edge, not into the band above it (the parent)
    expect(w.input.pointer.y).toBeGreaterThan(63.9);
    expect(w.input.pointer.y).toBeLessThan(64.1);
    const away = region(500, 500, 10, 10);
    persistent.setRegion(away);
    w.out.guestSurface.commit();
    w.out.parent.commit();
    await until('unconfined (persistent)', () => events.length === 4);
    abs(505, 564 + 5); // into the new region: a persistent confinement comes back
    await until('confined (persistent)', () => events.length === 5);
    expect(events).toEqual(['confined', 'unconfined', 'confined', 'unconfined', 'confined']);
    // One constraint per surface: a lock there too is already_constrained.
    const closed = new Promise<CloseReason>((r) => w.desktop.connection.once('closed', r));
    g.pointerConstraints!.lockPointer(w.out.guestSurface, pointer, null, ZwpPointerConstraintsV1Lifetime.ONESHOT);
    expect(await closed).toMatchObject({ kind: 'protocol-error', interface: 'zwp_pointer_constraints_v1', code: 1 });
  });

  it.skipIf(!existsSync('/usr/bin/weston-confine'))('weston-confine --complex-confine-region: a click confines the pointer to its region (the move ends on its edge), a second click lets it go', async () => {
    const c = compositor();
    c.input.deviceAdded({ sysname: 'event1', name: 'test mouse', capabilities: { keyboard: false, pointer: true, touch: false } });
    // Its complex region: rectangles from 5% to 95% of its drawing area's width, narrowing to a 2% neck in the middle.
    const client = startClient('weston-confine', ['--complex-confine-region'], { runtimeDir: runtimeDir(), socket: c.socket });
    cleanups.push(() => client.kill());
    await until('weston-confine mapped', () => !!c.root()?.size).catch((e: Error) => {
      throw new Error(`${e.message}; weston-confine: ${client.stderr()}`);
    });
    const click = () => {
      c.input.handle({ kind: 'button', button: 0x110, pressed: true });
      c.input.handle({ kind: 'button', button: 0x110, pressed: false });
    };
    c.input.handle({ kind: 'absolute', x: 0.25, y: 0.5 }); // in its region's left part
    click();
    await until('confined', () => c.input.constraints!.confinement !== null).catch((e: Error) => {
      throw new Error(`${e.message}; weston-confine: ${client.stderr()}`);
    });
    const at = c.input.pointer;
    c.input.handle({ kind: 'motion', dx: 5000, dy: 0, dxRaw: 5000, dyRaw: 0 });
    const edge = c.input.pointer;
    expect(edge.y).toBe(at.y);
    expect(edge.x).toBeGreaterThan(at.x);
    expect(edge.x, 'stopped at the region\'s edge, not the output\'s').toBeLessThan(1000);
    // On the edge of its area: the focus is still weston-confine's surface, a step further would leave the area.
    const f = c.seat.pointer.focus!;
    const conf = c.input.constraints!.confinement!;
    expect(f.surface).toBe(conf.surface);
    expect(conf.contains({ x: f.x, y: f.y })).toBe(true);
    expect(conf.contains({ x: f.x + 1, y: f.y })).toBe(false);
    click(); // weston-confine destroys its confinement
    await until('unconfined', () => c.input.constraints!.confinement === null);
    c.input.handle({ kind: 'motion', dx: 5000, dy: 0, dxRaw: 5000, dyRaw: 0 });
    expect(c.input.pointer.x).toBe(1023);
  });
});

describe('the desktop keymap', () => {
  it('an evdev keymap maps each key to itself; keys of other keycodes by their names', () => {
    const us = new Keymap({ layout: 'de' });
    const evdev = new DesktopKeymap(us.text);
    expect([30, 1, 125, 183].map((k) => evdev.evdevCode(k))).toEqual([30, 1, 125, 183]);
    evdev.close();
    // The same keymap with <AC01> (A) and <ESC> at swapped codes: still A and Esc.
    const swapped = us.text.replace(/<AC01>\s*=\s*38;/, '<AC01> = 9;').replace(/<ESC>\s*=\s*9;/, '<ESC> = 38;');
    expect(swapped).not.toBe(us.text);
    const other = new DesktopKeymap(swapped);
    expect([other.evdevCode(1), other.evdevCode(30), other.evdevCode(31)]).toEqual([30, 1, 31]);
    other.close();
    us.close();
    expect(() => new DesktopKeymap('xkb_keymap { nonsense')).toThrow(/could not compile the desktop's keymap/);
  });
});
