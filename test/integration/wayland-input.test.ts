// Issue 14 item 4: input in the kiosk Wayland compositor, all real parts. Virtual devices
// made with /dev/uinput (a keyboard, a relative mouse, an absolute pointer, a multi-touch
// screen), tagged by the real udevd, read by libinput on seat0 inside the compositor, and
// seen by a real libwayland client (gp-wayland-client input) that compiles the keymap it
// is sent with xkbcommon. The client shows a 512x256 buffer on the 1024x768 output with
// fit: scaled by 2 into (0, 128)–(1024, 640), so every coordinate below is the inverse of
// that placement, worked out by hand: output (X, Y) → surface ((X − 0) / 2, (Y − 128) / 2).
import { describe, it, expect, beforeAll } from 'vitest';
import { existsSync, rmSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { KioskCompositor } from '../../plugin/modes/compositor.js';
import { findCardByDriver } from '../../plugin/kms/device.js';
import { BTN_LEFT } from '../../ffi/uinput.js';
import { cleanupAfterEach } from './helpers/cleanup.js';
import { waitFor } from './helpers/faults.js';
import { readState } from './helpers/debugfs.js';
import { keyboard, mouse, startUdevd, tablet, TouchScreen, udevSettle, uinputMissing, type VirtualDevice } from './helpers/uinput.js';
import { buildWaylandClient, nextToplevelShown, runClient, startClient, useRuntimeDir } from './helpers/wayland-client.js';

const cleanup = cleanupAfterEach();
const missing = uinputMissing();
if (missing) console.log(`wayland-input: skipped: ${missing}`);

const runtimeDir = useRuntimeDir('gp-input-');
let client = '';
beforeAll(() => {
  if (missing) return;
  client = buildWaylandClient();
  startUdevd();
});

const KEY_A = 30;
const KEY_B = 48;
const KEY_LEFTSHIFT = 42;
const KEY_CAPSLOCK = 58;
const KEY_LEFTCTRL = 29;
const KEY_Q = 16;
const BTN = BTN_LEFT; // 272

type Client = ReturnType<typeof startClient>;

/**
 * Reads a client's event lines step by step. `expect(want)` waits for that many new lines,
 * then makes a round trip (so anything the compositor sent meanwhile has arrived) and
 * checks the lines are exactly `want`, serials written as S (their order is checked apart).
 */
class Events {
  #mark = 0;
  readonly serials: number[] = [];
  constructor(readonly c: Client) {}

  async expect(want: string[], what: string, timeoutMs = 15_000): Promise<string[]> {
    const { c } = this;
    const since = () => c.lines.slice(this.#mark).filter((l) => l !== 'SYNCED');
    await waitFor(() => since().length >= want.length, what, timeoutMs).catch((e: Error) => {
      throw new Error(`${e.message}; got:\n${since().join('\n')}\nwanted:\n${want.join('\n')}\nstderr: ${c.stderr()}`);
    });
    await this.#roundtrip(what);
    const got = since();
    this.#mark = c.lines.length;
    for (const l of got) {
      const m = / serial=(\d+)/.exec(l);
      if (m) this.serials.push(Number(m[1]));
    }
    expect(
      got.map((l) => l.replace(/ serial=\d+/, ' serial=S')),
      `${what}; got:\n${got.join('\n')}`,
    ).toEqual(want);
    return got;
  }

  async #roundtrip(what: string): Promise<void> {
    const { c } = this;
    const synced = c.lines.filter((l) => l === 'SYNCED').length;
    c.child.stdin!.write('sync\n');
    await waitFor(() => c.lines.filter((l) => l === 'SYNCED').length > synced, `${what}: the round trip`, 10_000);
  }

  /** Skips what came so far, up to a round trip (set-up lines checked elsewhere). */
  async skip(): Promise<void> {
    await this.#roundtrip('skip');
    this.#mark = this.c.lines.length;
  }
}

function plug<T extends VirtualDevice>(d: T): T {
  cleanup.push(() => d.close());
  return d;
}

async function startCompositor(log: string[], opts: { input?: false } = {}): Promise<{ kiosk: KioskCompositor; socket: string }> {
  const card = findCardByDriver('vkms');
  if (!card) throw new Error('no vkms card in the rig');
  const socket = `gp-input-${process.hrtime.bigint()}`;
  const kiosk = KioskCompositor.start({ device: card, connector: 'Virtual-1', socket, fit: 'fit', mode: { width: 1024, height: 768 }, log: (l) => log.push(l), ...opts });
  cleanup.push(() => kiosk.close());
  return { kiosk, socket };
}

describe('kiosk compositor input (uinput, udevd, libinput, a real Wayland client)', () => {
  it.skipIf(missing)('keys with keysyms and modifiers, pointer mapped through fit, buttons, wheel, touch; hot-add and unplug', async () => {
    const kbd = plug(keyboard());
    const rat = plug(mouse());
    const pen = plug(tablet(1024, 768));
    udevSettle();
    const log: string[] = [];
    const { kiosk, socket } = await startCompositor(log);
    expect([kiosk.output.width, kiosk.output.height]).toEqual([1024, 768]);
    const names = ['guestplane test keyboard', 'guestplane test mouse', 'guestplane test tablet'];
    await waitFor(() => names.every((n) => log.some((l) => l.includes(`(${n})`))), 'libinput to add the devices', 15_000).catch((e: Error) => {
      throw new Error(`${e.message}; log: ${log.join(' | ')}`);
    });
    expect(log.find((l) => l.includes('(guestplane test keyboard)'))).toMatch(/: keyboard$/);
    expect(log.find((l) => l.includes('(guestplane test tablet)'))).toMatch(/: pointer$/);

    const c = startClient(client, ['input', '512', '256'], { runtimeDir: runtimeDir(), socket });
    cleanup.push(() => c.kill());
    const ev = new Events(c);
    await c.waitFor(/^MAPPED 512x256$/);
    // Set-up: the seat, its devices, and the focus on map. The host pointer starts in the
    // middle of the output, (512, 384): surface (256, 128).
    const setup = c.lines.filter((l) => !/^CONFIGURE|^MAPPED/.test(l));
    expect(setup.slice(0, 3)).toEqual(['SEAT version=8', 'CAPS pointer=1 keyboard=1 touch=0', 'SEAT_NAME seat0']);
    expect(setup).toContainEqual(expect.stringMatching(/^KEYMAP format=1 size=\d+ keys=\d+ layouts=1 seals=0xf$/));
    expect(setup).toContain('REPEAT rate=25 delay=600');
    await c.waitFor(/^PTR_ENTER/);
    await c.waitFor(/^MODS/);
    const all = c.lines.join('\n');
    expect(all).toMatch(/KB_ENTER serial=\d+ surface=toplevel keys=\n/);
    expect(all).toMatch(/MODS serial=\d+ depressed=0 latched=0 locked=0 group=0 active=\n/);
    expect(all).toMatch(/PTR_ENTER serial=\d+ surface=toplevel x=256.00000000 y=128.00000000\nFRAME/);
    await ev.skip();

    // ---- keyboard: shift+a is 'A', the modifiers come from the compositor's xkb state
    kbd.key(KEY_LEFTSHIFT, true);
    kbd.key(KEY_A, true);
    kbd.key(KEY_A, false);
    kbd.key(KEY_LEFTSHIFT, false);
    kbd.key(KEY_A, true);
    kbd.key(KEY_A, false);
    await ev.expect(
      [
        'KEY serial=S key=42 state=1 sym=Shift_L utf8=',
        'MODS serial=S depressed=1 latched=0 locked=0 group=0 active=Shift',
        'KEY serial=S key=30 state=1 sym=A utf8=A',
        'KEY serial=S key=30 state=0 sym=A utf8=A',
        'KEY serial=S key=42 state=0 sym=Shift_L utf8=',
        'MODS serial=S depressed=0 latched=0 locked=0 group=0 active=',
        'KEY serial=S key=30 state=1 sym=a utf8=a',
        'KEY serial=S key=30 state=0 sym=a utf8=a',
      ],
      'shift+a, then a',
    );
    // Caps Lock locks (xkb's Lock = 2).
    kbd.key(KEY_CAPSLOCK, true);
    kbd.key(KEY_CAPSLOCK, false);
    kbd.key(KEY_B, true);
    kbd.key(KEY_B, false);
    kbd.key(KEY_CAPSLOCK, true);
    kbd.key(KEY_CAPSLOCK, false);
    await ev.expect(
      [
        'KEY serial=S key=58 state=1 sym=Caps_Lock utf8=',
        'MODS serial=S depressed=2 latched=0 locked=2 group=0 active=Lock',
        'KEY serial=S key=58 state=0 sym=Caps_Lock utf8=',
        'MODS serial=S depressed=0 latched=0 locked=2 group=0 active=Lock',
        'KEY serial=S key=48 state=1 sym=B utf8=B',
        'KEY serial=S key=48 state=0 sym=B utf8=B',
        // xkb's LockMods: the second press keeps the lock, its release takes it off.
        'KEY serial=S key=58 state=1 sym=Caps_Lock utf8=',
        'MODS serial=S depressed=2 latched=0 locked=2 group=0 active=Lock',
        'KEY serial=S key=58 state=0 sym=Caps_Lock utf8=',
        'MODS serial=S depressed=0 latched=0 locked=0 group=0 active=',
      ],
      'caps lock',
    );

    // ---- pointer: absolute positions through the fit placement, buttons, wheel
    pen.absTo(300, 200);
    await ev.expect(['MOTION x=150.00000000 y=36.00000000', 'FRAME'], 'motion to output (300, 200)');
    pen.key(BTN, true);
    pen.key(BTN, false);
    await ev.expect(['BUTTON serial=S button=272 state=1', 'FRAME', 'BUTTON serial=S button=272 state=0', 'FRAME'], 'a click');
    pen.wheel(-1); // towards the user: scrolling down, +120
    pen.wheel(2);
    await ev.expect(
      ['AXIS_SOURCE 0', 'AXIS_VALUE120 axis=0 v=120', 'AXIS axis=0 value=15.00000000', 'FRAME', 'AXIS_SOURCE 0', 'AXIS_VALUE120 axis=0 v=-240', 'AXIS axis=0 value=-30.00000000', 'FRAME'],
      'the wheel',
    );
    // Into the letterbox above the picture: leave; back in at the far corner of the picture.
    pen.absTo(300, 50);
    pen.absTo(1023, 639);
    await ev.expect(['PTR_LEAVE serial=S surface=toplevel', 'FRAME', 'PTR_ENTER serial=S surface=toplevel x=511.50000000 y=255.50000000', 'FRAME'], 'leave and enter');
    // A held button keeps the surface (implicit grab), with positions off it; release: leave.
    pen.key(BTN, true);
    pen.absTo(1023, 700);
    pen.key(BTN, false);
    await ev.expect(
      ['BUTTON serial=S button=272 state=1', 'FRAME', 'MOTION x=511.50000000 y=286.00000000', 'FRAME', 'BUTTON serial=S button=272 state=0', 'FRAME', 'PTR_LEAVE serial=S surface=toplevel', 'FRAME'],
      'the implicit grab',
    );
    // A relative mouse moves the same pointer (accelerated by libinput: x grows, y stays).
    pen.absTo(300, 200);
    await ev.expect(['PTR_ENTER serial=S surface=toplevel x=150.00000000 y=36.00000000', 'FRAME'], 'back in');
    rat.move(10, 0);
    const [moved] = await ev.expect([expect.stringMatching(/^MOTION x=\d+\.\d+ y=36\.00000000$/) as unknown as string, 'FRAME'], 'relative motion');
    const x = Number(/x=([\d.]+)/.exec(moved!)![1]);
    expect(x).toBeGreaterThan(150);
    expect(x * 2).toBeCloseTo(kiosk.seatInput.pointer.x, 1);

    // ---- hot-add: a touchscreen; the seat gains touch, the client gets a wl_touch
    const touch = plug(new TouchScreen(1024, 768));
    await ev.expect(['CAPS pointer=1 keyboard=1 touch=1'], 'the touch capability');
    touch.down(0, 400, 300);
    touch.sync();
    touch.down(1, 600, 400);
    touch.sync();
    touch.slide(0, 410, 310);
    touch.sync();
    touch.up(0);
    touch.up(1);
    touch.sync();
    await ev.expect(
      [
        'TOUCH_DOWN serial=S surface=toplevel id=0 x=200.00000000 y=86.00000000',
        'TOUCH_FRAME',
        'TOUCH_DOWN serial=S surface=toplevel id=1 x=300.00000000 y=136.00000000',
        'TOUCH_FRAME',
        'TOUCH_MOTION id=0 x=205.00000000 y=91.00000000',
        'TOUCH_FRAME',
        'TOUCH_UP serial=S id=0',
        'TOUCH_UP serial=S id=1',
        'TOUCH_FRAME',
      ],
      'two fingers',
    );
    // A finger down on the letterbox touches no surface: nothing reaches the client.
    touch.down(0, 400, 20);
    touch.sync();
    touch.slide(0, 400, 300);
    touch.sync();
    touch.up(0);
    touch.sync();
    pen.absTo(302, 200);
    await ev.expect(['MOTION x=151.00000000 y=36.00000000', 'FRAME'], 'only the pointer after a touch beside the picture');

    // ---- unplug mid-stream: a key held and a finger down when their devices go
    kbd.key(KEY_B, true);
    touch.down(0, 100, 200);
    touch.sync();
    await ev.expect(['KEY serial=S key=48 state=1 sym=b utf8=b', 'TOUCH_DOWN serial=S surface=toplevel id=0 x=50.00000000 y=36.00000000', 'TOUCH_FRAME'], 'held key and finger');
    kbd.close();
    await ev.expect(['KEY serial=S key=48 state=0 sym=b utf8=b', 'CAPS pointer=1 keyboard=0 touch=1'], 'the unplugged keyboard lets go of its key', 20_000);
    touch.close();
    // libinput cancels the touch session of a device that goes (wl_touch.cancel needs no frame).
    await ev.expect(['TOUCH_CANCEL', 'CAPS pointer=1 keyboard=0 touch=0'], 'the unplugged touchscreen cancels its finger', 20_000);
    // The rest keeps working.
    pen.absTo(304, 200);
    pen.key(BTN, true);
    pen.key(BTN, false);
    await ev.expect(['MOTION x=152.00000000 y=36.00000000', 'FRAME', 'BUTTON serial=S button=272 state=1', 'FRAME', 'BUTTON serial=S button=272 state=0', 'FRAME'], 'the pointer after the unplug');
    // A new keyboard: the client gets a new wl_keyboard, keymap, focus, keys.
    const kbd2 = plug(keyboard('guestplane test keyboard 2'));
    await ev.expect(
      [
        'CAPS pointer=1 keyboard=1 touch=0',
        expect.stringMatching(/^KEYMAP format=1 size=\d+ keys=\d+ layouts=1 seals=0xf$/) as unknown as string,
        'REPEAT rate=25 delay=600',
        'KB_ENTER serial=S surface=toplevel keys=',
        'MODS serial=S depressed=0 latched=0 locked=0 group=0 active=',
      ],
      'a keyboard plugged in later',
      20_000,
    );
    // (Keys written before libinput opened the new node would be lost: only now.)
    kbd2.key(KEY_A, true);
    kbd2.key(KEY_A, false);
    await ev.expect(
      [
        'KEY serial=S key=30 state=1 sym=a utf8=a',
        'KEY serial=S key=30 state=0 sym=a utf8=a',
      ],
      'keys from the new keyboard',
      20_000,
    );

    // Serials only grow.
    for (let i = 1; i < ev.serials.length; i++) expect(ev.serials[i]!).toBeGreaterThan(ev.serials[i - 1]!);
    c.child.stdin!.write('quit\n');
    await c.waitFor(/^NO_ERROR/);
    expect(log.filter((l) => /client request failed|input/i.test(l) && !/^input device /.test(l)), log.join(' | ')).toEqual([]);
  });

  it.skipIf(missing)('a client that goes away leaves nothing behind: the next one gets the focus and the keys', async () => {
    const kbd = plug(keyboard());
    plug(tablet(1024, 768));
    udevSettle();
    const log: string[] = [];
    const { socket } = await startCompositor(log);
    await waitFor(() => log.some((l) => l.includes('(guestplane test tablet)')) && log.some((l) => l.includes('(guestplane test keyboard)')), 'the devices', 15_000);
    const first = startClient(client, ['input', '512', '256'], { runtimeDir: runtimeDir(), socket });
    await first.waitFor(/^KB_ENTER/);
    kbd.key(KEY_A, true); // held while its client dies
    await first.waitFor(/^KEY serial=\d+ key=30 state=1/);
    await first.kill();
    kbd.key(KEY_A, false);
    const second = startClient(client, ['input', '256', '256'], { runtimeDir: runtimeDir(), socket });
    cleanup.push(() => second.kill());
    await second.waitFor(/^KB_ENTER serial=\d+ surface=toplevel keys=$/);
    // 256x256 fit into 1024x768: scale 3, at (128, 0); the pointer in the middle is (128, 128).
    await second.waitFor(/^PTR_ENTER serial=\d+ surface=toplevel x=128.00000000 y=128.00000000$/);
    const ev = new Events(second);
    await ev.skip();
    kbd.key(KEY_B, true);
    kbd.key(KEY_B, false);
    await ev.expect(['KEY serial=S key=48 state=1 sym=b utf8=b', 'KEY serial=S key=48 state=0 sym=b utf8=b'], 'keys at the second client');
    expect(log.filter((l) => /client request failed|input/i.test(l) && !/^input device /.test(l)), log.join(' | ')).toEqual([]);
  });

  it.skipIf(missing)('set_cursor: the client image on the cursor plane, its hotspot under the pointer; hidden beside the picture', async () => {
    const pen = plug(tablet(1024, 768));
    udevSettle();
    const log: string[] = [];
    const { kiosk, socket } = await startCompositor(log);
    await waitFor(() => log.some((l) => l.includes('(guestplane test tablet)')), 'the tablet', 15_000);
    const c = startClient(client, ['input', '512', '256'], { runtimeDir: runtimeDir(), socket, extra: { GP_SET_CURSOR: '1' } });
    cleanup.push(() => c.kill());
    await c.waitFor(/^SET_CURSOR serial=\d+ hotspot=3,5$/);
    const card = findCardByDriver('vkms')!;
    const cursorPlane = kiosk.output.dev.planesFor(kiosk.output.crtc, 'cursor')[0]!;
    // Output (300, 200) is surface (150, 36); the 16x16 image hangs from its hotspot (3, 5) there.
    for (const [x, y] of [
      [300, 200],
      [302, 210],
    ] as const) {
      pen.absTo(x, y);
      await waitFor(() => readState(card).planes.find((p) => p.id === cursorPlane.id)?.fields['crtc-pos'] === `16x16+${x - 3}+${y - 5}`, `the cursor plane at ${x - 3},${y - 5}`, 10_000).catch((e: Error) => {
        throw new Error(`${e.message}: ${JSON.stringify(readState(card).planes.find((p) => p.id === cursorPlane.id))}; log: ${log.join(' | ')}`);
      });
    }
    const cap = await kiosk.output.captureNext();
    expect(cap.content?.layers?.find((l) => l.id === 'cursor')).toMatchObject({ how: 'plane', planeId: cursorPlane.id });
    const px = (x: number, y: number) => new Uint32Array(cap.pixels.buffer, cap.pixels.byteOffset, cap.pixels.byteLength / 4)[(y * cap.stride) / 4 + x]! & 0xffffff;
    expect([px(299, 205), px(302, 210), px(314, 220)]).toEqual([0xff00ff, 0xff00ff, 0xff00ff]);
    expect([px(298, 205), px(315, 210), px(302, 221)]).toEqual([0x406080, 0x406080, 0x406080]);
    // Over the letterbox the pointer is over no surface: no client image, the plane is off.
    pen.absTo(300, 50);
    await waitFor(() => !(readState(card).planes.find((p) => p.id === cursorPlane.id)?.fb ?? 0), 'the cursor plane off', 10_000);
    expect(log.filter((l) => /client request failed|^cursor of/.test(l)), log.join(' | ')).toEqual([]);
  });

  it.skipIf(missing || !existsSync('/usr/bin/foot'))('foot: keys typed on a uinput keyboard (shift included) run a command in its shell', async () => {
    const kbd = plug(keyboard());
    udevSettle();
    const log: string[] = [];
    const { kiosk, socket } = await startCompositor(log);
    await waitFor(() => log.some((l) => l.includes('(guestplane test keyboard)')), 'the keyboard', 15_000);
    const target = '/tmp/gpFOOT';
    rmSync(target, { force: true });
    const mapped = new Promise<void>((resolve) => kiosk.once('toplevel', (t) => t.surface.once('commit', () => resolve())));
    const foot = spawn('foot', ['sh'], { env: { ...process.env, XDG_RUNTIME_DIR: runtimeDir(), WAYLAND_DISPLAY: socket }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    foot.stdout.on('data', (d) => (out += d));
    foot.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => foot.on('exit', (code) => r(code)));
    cleanup.push(() => foot.kill('SIGKILL'));
    await mapped;
    await waitFor(() => kiosk.seat.keyboard?.focus !== null, "foot's keyboard focus", 15_000);
    // "touch /tmp/gpFOOT" (the capitals with shift), Enter, then "exit", Enter.
    const KEYS: Record<string, number> = { t: 20, o: 24, u: 22, c: 46, h: 35, ' ': 57, '/': 53, m: 50, p: 25, g: 34, f: 33, e: 18, x: 45, i: 23, '\n': 28 };
    // One character at a time, each once the compositor has read it: a burst larger than
    // evdev's buffer (64 events for this device) overflows it (SYN_DROPPED) and libinput
    // then drops the lot, as it would for a real keyboard on a stalled compositor.
    let keysSeen = 0;
    kiosk.input!.on('input', (e) => e.kind === 'key' && keysSeen++);
    const type = async (text: string) => {
      for (const ch of text) {
        const shift = ch !== ch.toLowerCase();
        const before = keysSeen;
        if (shift) kbd.key(KEY_LEFTSHIFT, true);
        kbd.key(KEYS[ch.toLowerCase()]!, true);
        kbd.key(KEYS[ch.toLowerCase()]!, false);
        if (shift) kbd.key(KEY_LEFTSHIFT, false);
        await waitFor(() => keysSeen >= before + (shift ? 4 : 2), `the compositor reading '${ch}'`, 10_000);
      }
    };
    await type('touch /tmp/gpFOOT\n');
    await waitFor(() => existsSync(target), `${target} made by foot's shell`, 20_000).catch((e: Error) => {
      throw new Error(`${e.message}; foot: ${out}; log: ${log.join(' | ')}`);
    });
    await type('exit\n');
    expect(await exited).toBe(0);
    rmSync(target, { force: true });
  });

  // GTK's widget factories quit on Ctrl+Q (an application accelerator): the keymap, the
  // keyboard focus and the modifiers all have to be right for GTK to see it.
  for (const app of ['gtk3-widget-factory', 'gtk4-widget-factory']) {
    it.skipIf(missing || !existsSync(`/usr/bin/${app}`))(`${app}: Ctrl+Q typed on a uinput keyboard quits it`, async () => {
      const kbd = plug(keyboard());
      udevSettle();
      const log: string[] = [];
      const { kiosk, socket } = await startCompositor(log);
      await waitFor(() => log.some((l) => l.includes('(guestplane test keyboard)')), 'the keyboard', 15_000);
      // Its first frame on screen: GTK has mapped the window and reads input (20-40 s under TCG).
      const shown = nextToplevelShown(kiosk);
      const child = spawn(app, [], { env: { ...process.env, XDG_RUNTIME_DIR: runtimeDir(), WAYLAND_DISPLAY: socket, GDK_BACKEND: 'wayland', GSETTINGS_BACKEND: 'memory', NO_AT_BRIDGE: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      const exited = new Promise<number | string | null>((r) => child.on('exit', (code, signal) => r(signal ?? code)));
      cleanup.push(() => child.kill('SIGKILL'));
      const early = exited.then((c) => Promise.reject(new Error(`${app} ended before its first frame (${c}): ${out.slice(-2000)}`)));
      early.catch(() => {});
      await Promise.race([shown, early]);
      await waitFor(() => kiosk.seat.keyboard?.focus !== null, `${app}'s keyboard focus`, 15_000);
      kbd.key(KEY_LEFTCTRL, true);
      kbd.key(KEY_Q, true);
      kbd.key(KEY_Q, false);
      kbd.key(KEY_LEFTCTRL, false);
      const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('still running 30 s after Ctrl+Q'), 30_000))]);
      expect(code, `${out.slice(-2000)}; log: ${log.join(' | ')}`).toBe(0);
    }, 240_000);
  }

  it.skipIf(missing)('wl_seat errors only where the protocol says: never-had capability, cursor role; a had-once one is no error', async () => {
    const log: string[] = [];
    const { kiosk, socket } = await startCompositor(log, { input: false });
    const env = { runtimeDir: runtimeDir(), socket };
    for (const what of ['keyboard', 'pointer', 'touch']) {
      const r = await runClient(client, ['seat-request', what], env);
      expect(r.stdout, `${what}: ${r.stderr}`).toBe('SEAT_NAME seat0\nCAPS_ANNOUNCED 0\nPROTOCOL_ERROR interface=wl_seat code=0\n');
    }
    await kiosk.close(); // one compositor at a time on the card
    // With a pointer: set_cursor with a surface that has another role is wl_pointer.error.role.
    const { socket: s2 } = await startCompositor(log);
    plug(tablet(1024, 768));
    const touch = plug(new TouchScreen(1024, 768));
    await waitFor(() => ['tablet', 'touchscreen'].every((n) => log.some((l) => l.includes(`(guestplane test ${n})`))), 'the tablet and touchscreen', 15_000);
    const env2 = { runtimeDir: runtimeDir(), socket: s2 };
    const role = await runClient(client, ['seat-request', 'cursor-role'], env2);
    expect(role.stdout, role.stderr).toMatch(/^SEAT_NAME seat0\nCAPS_ANNOUNCED 5\n(CONFIGURE .*\n)*ENTERED\nPROTOCOL_ERROR interface=wl_pointer code=0\n$/);
    // The touchscreen goes: touch is a capability the seat had, get_touch is no error now.
    touch.close();
    await waitFor(() => log.some((l) => l.includes('(guestplane test touchscreen) removed')), 'the touchscreen to go', 15_000);
    const had = await runClient(client, ['seat-request', 'touch'], env2);
    expect(had.stdout, had.stderr).toMatch(/^SEAT_NAME seat0\nCAPS_ANNOUNCED 1\nNO_ERROR err=0\n$/);
  });
});
