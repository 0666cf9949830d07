// Issue 29: menus of real applications on the kiosk compositor, through the input path
// (uinput keyboard and absolute pointer → libinput → the seat), one compositor per
// application and every case in that one run (the rig is emulated: applications start
// slowly). GTK 3's widget factory: Shift+F10 on the focused entry opens its context menu
// (a GtkMenu: an xdg_popup with a grab quoting the key's serial); its client trace
// (WAYLAND_DEBUG) shows the popup configured and its frames drawn; the writeback capture
// shows the menu's pixels where the compositor placed it; it stays open until the user
// acts: Escape goes to the client, which closes it (no popup_done); a click outside
// dismisses it (popup_done) and is not delivered; a right-click opens the context menu at
// the pointer; a click opens a combo box's list; resting the pointer on the link button
// shows its tooltip (a popup without a grab); the entry's selected text dragged onto
// another entry is dropped and finished (wl_data_device).
// GTK 3's menu bar (gtk3-demo's Menus demo: the widget factory's menu bar is on a page only
// its header bar reaches, hidden when fullscreen): F10 opens the first menu, Down its first
// item's submenu (a popup of the popup); a click outside dismisses the chain with popup_done,
// the submenu first; F10 then Escape; a click on a menu bar item.
// Qt 5 (qtwayland5, the `menus` example of qtbase5-examples): a menu bar menu with a
// submenu from the keyboard, closed by Escape, then dismissed by a click outside (the
// submenu's popup_done first), and the right-click context menu.
// For the chains, the client trace shows each popup configured, with a grab, its parent the
// popup below it, and frame callbacks on its surface answered (tracedPopups).
// Firefox ESR (software rendering, a prepared profile): its local page drawn, and a right-click
// on it opens the page's context menu. Firefox covers its window with a content sub-surface
// whose input region is empty; the pointer must reach the GTK window under it.
// Window geometry (item 2): a client drawing an uneven client-side "shadow" around its
// window sets its window geometry; the geometry, not the buffer, fills the output. A
// client larger than the output without geometry is shown from its top-left corner.
import { describe, it, expect, beforeAll } from 'vitest';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { KioskCompositor } from '../../plugin/modes/compositor.js';
import { findCardByDriver } from '../../plugin/kms/device.js';
import { BTN_LEFT, BTN_RIGHT } from '../../ffi/uinput.js';
import { cleanupAfterEach } from './helpers/cleanup.js';
import { waitFor } from './helpers/faults.js';
import { buildWaylandClient, nextToplevelShown, startClient, useRuntimeDir } from './helpers/wayland-client.js';
import { keyboard, startUdevd, tablet, udevSettle, uinputMissing, type VirtualDevice } from './helpers/uinput.js';
import { clientTraceViolations } from './helpers/wayland-trace.js';
import { commonColour, covered, firefoxProfile, nearColour, popupOnOutput, rootToOutput, sleep, startTraced, tracedPopups, type TracedApp, type TracedPopup } from './helpers/app-menus.js';
import type { CaptureResult as Capture } from '../../plugin/output/capture.js';
import type { Toplevel } from '../../plugin/wayland/xdg-shell.js';
import type { Rect } from '../../plugin/geometry.js';
import { join } from 'node:path';
import { resultsDir, writePng } from './helpers/png.js';

const cleanup = cleanupAfterEach();
const noUinput = uinputMissing();
const missingGtk = noUinput ?? (existsSync('/usr/bin/gtk3-widget-factory') ? null : 'no gtk3-widget-factory');
const QT_MENUS = '/usr/lib/x86_64-linux-gnu/qt5/examples/widgets/mainwindows/menus/menus';
const missingQt = noUinput ?? (!existsSync(QT_MENUS) ? 'no Qt menus example (qtbase5-examples)' : !existsSync('/usr/lib/x86_64-linux-gnu/qt5/plugins/platforms/libqwayland-generic.so') ? 'no qtwayland5' : null);
const missingGtkDemo = noUinput ?? (existsSync('/usr/bin/gtk3-demo') ? null : 'no gtk3-demo');
const missingFirefox = noUinput ?? (existsSync('/usr/bin/firefox-esr') ? null : 'no firefox-esr');
for (const m of [missingGtk, missingGtkDemo, missingQt, missingFirefox]) if (m) console.log(`wayland-popups: skipped: ${m}`);
const runtimeDir = useRuntimeDir('gp-popups-');
beforeAll(() => {
  if (!noUinput) startUdevd();
});

const KEY_ESC = 1;
const KEY_E = 18;
const KEY_F = 33;
const KEY_LEFTSHIFT = 42;
const KEY_LEFTALT = 56;
const KEY_F10 = 68;
const KEY_DOWN = 108;
const W = 1024;
const H = 768;
/** Widgets of Debian 12's gtk3-widget-factory (1415x768, shown from its top-left corner) on the output. */
const LINK_BUTTON = { x: 470, y: 422 };
const COMBO = { x: 470, y: 202 };

function plug<T extends VirtualDevice>(d: T): T {
  cleanup.push(() => d.close());
  return d;
}

/** Presses `mods` (held) and `key`, then lets go in reverse. */
function chord(kbd: VirtualDevice, mods: number[], key: number): void {
  for (const m of mods) kbd.key(m, true);
  kbd.key(key, true);
  kbd.key(key, false);
  for (const m of [...mods].reverse()) kbd.key(m, false);
}

function click(pen: VirtualDevice, button: number): void {
  pen.key(button, true);
  pen.key(button, false);
}

/** A kiosk on vkms with the uinput keyboard and tablet in its seat; the app is started by the caller. */
async function kioskWithInput(name: string): Promise<{ kiosk: KioskCompositor; kbd: VirtualDevice; pen: VirtualDevice; socket: string; log: string[] }> {
  const kbd = plug(keyboard());
  const pen = plug(tablet(W, H));
  udevSettle();
  const card = findCardByDriver('vkms');
  if (!card) throw new Error('no vkms card in the rig');
  const log: string[] = [];
  const socket = `gp-${name}-${process.hrtime.bigint()}`;
  const kiosk = KioskCompositor.start({ device: card, connector: 'Virtual-1', socket, mode: { width: W, height: H }, log: (l) => log.push(l) });
  cleanup.push(() => kiosk.close());
  await waitFor(() => log.some((l) => l.includes('(guestplane test keyboard)')) && log.some((l) => l.includes('(guestplane test tablet)')), 'the uinput devices', 15_000);
  return { kiosk, kbd, pen, socket, log };
}

/** Starts the app and waits until its toplevel is on screen with the keyboard focus. */
async function launch(kiosk: KioskCompositor, cmd: string, args: string[], env: NodeJS.ProcessEnv, socket: string): Promise<{ app: TracedApp; top: () => Toplevel; startMs: number }> {
  const t0 = performance.now();
  const shown = nextToplevelShown(kiosk);
  const app = startTraced(cmd, args, { XDG_RUNTIME_DIR: runtimeDir(), WAYLAND_DISPLAY: socket, ...env });
  cleanup.push(() => app.kill());
  await Promise.race([shown, app.early]);
  const top = () => kiosk.toplevels.at(-1)!;
  await Promise.race([waitFor(() => kiosk.seat.keyboard?.focus === top().surface, 'the keyboard focus on the window', 30_000), app.early]);
  return { app, top, startMs: performance.now() - t0 };
}

/** Waits until the toplevel has `n` mapped popups (the app's exit fails the wait at once). */
async function popupsAre(app: TracedApp, top: () => Toplevel, n: number, what: string, ms = 60_000): Promise<void> {
  await Promise.race([waitFor(() => top().popups().length === n, what, ms), app.early]);
}

/**
 * The popup's window in a few captures until at least 90% of the background pixels
 * under it show something else (the menu is drawn where the compositor placed it): the
 * best fraction, its rectangle and the capture with the most of it.
 */
async function menuDrawn(kiosk: KioskCompositor, before: Capture, bg: number, p: ReturnType<Toplevel['popups']>[number], top: Toplevel): Promise<{ frac: number; bg: number; rect: Rect; cap: Capture }> {
  const rect = popupOnOutput(kiosk, top, p);
  let best = { frac: -1, bg: 0, rect, cap: before };
  for (let i = 0; i < 8 && best.frac < 0.9; i++) {
    const cap = await kiosk.output.captureNext();
    const c = covered(before, cap, rect, bg, W, H);
    if (c.frac > best.frac) best = { ...c, rect, cap };
  }
  return best;
}

function savePng(name: string, c: Capture): void {
  writePng(join(resultsDir('wayland-popups'), name), { width: W, height: H, stride: c.stride, pixels: c.pixels });
}

/**
 * The open chain's popups in the trace (the last `n` made, bottom first): each configured
 * with a grab, each submenu's parent the popup below it, and each drawn: a frame callback
 * on its wl_surface answered (done). `first`: the bottom one's index among the trace's popups.
 */
function chainInTrace(trace: string, n: number): { chain: TracedPopup[]; first: number } {
  const all = tracedPopups(trace);
  const chain = all.slice(-n);
  expect(chain).toHaveLength(n);
  for (const [i, p] of chain.entries()) {
    expect(p, JSON.stringify(chain)).toMatchObject({ configured: true, grab: true, destroyed: false, doneOrder: -1 });
    expect(p.framesDone, `popup ${i} frame callbacks: ${JSON.stringify(p)}`).toBeGreaterThan(0);
    if (i > 0) expect(p.parent).toBe(chain[i - 1]!.xdgSurface);
  }
  return { chain, first: all.length - n };
}

/** After a click outside: popup_done for each popup of the chain, the topmost first. */
function dismissedFromTheTop(trace: string, open: { chain: TracedPopup[]; first: number }): void {
  const after = tracedPopups(trace).slice(open.first, open.first + open.chain.length);
  expect(after.map((p) => p.popup)).toEqual(open.chain.map((p) => p.popup));
  const order = after.map((p) => p.doneOrder);
  expect(order.every((o) => o >= 0), JSON.stringify(after)).toBe(true);
  // Bottom first in `after`: the order of their popup_done events must fall.
  expect(order, JSON.stringify(after)).toEqual([...order].sort((a, b) => b - a));
}

const POPUP_DONE = /xdg_popup@\d+\.popup_done\(\)/;
const countDone = (t: string): number => t.match(/xdg_popup@\d+\.popup_done\(\)/g)?.length ?? 0;
const RIGHT_PRESS = /wl_pointer@\d+\.button\(\d+, \d+, 273, 1\)/;

/**
 * A click outside the open chain `open` (the pointer already placed there): the chain goes,
 * popup_done for each of its popups from the top and no other, and the press is not the app's.
 */
async function clickOutsideDismisses(app: TracedApp, top: () => Toplevel, pen: VirtualDevice, since: () => string, open: { chain: TracedPopup[]; first: number }): Promise<void> {
  click(pen, BTN_LEFT);
  await popupsAre(app, top, 0, 'the chain dismissed by the click outside', 30_000);
  await waitFor(() => countDone(since()) >= open.chain.length, `${open.chain.length} popup_done in the trace`, 10_000);
  dismissedFromTheTop(app.out(), open);
  expect(countDone(since())).toBe(open.chain.length);
  expect(since()).not.toMatch(/wl_pointer@\d+\.button\(\d+, \d+, 272, 1\)/);
}

describe('menus of real applications on the kiosk compositor', () => {
  it.skipIf(missingGtk)('gtk3-widget-factory: context menu (Shift+F10, Escape; a click outside dismisses it), a right-click menu, a combo box list, a tooltip', async () => {
    const { kiosk, kbd, pen, socket, log } = await kioskWithInput('gtk');
    // The entry's context menu gets its "Insert Unicode Control Character" submenu.
    const config = join(runtimeDir(), 'gtk-config');
    mkdirSync(join(config, 'gtk-3.0'), { recursive: true });
    writeFileSync(join(config, 'gtk-3.0', 'settings.ini'), '[Settings]\ngtk-show-unicode-menu=true\n');
    const { app, top, startMs } = await launch(kiosk, 'gtk3-widget-factory', [], { GDK_BACKEND: 'wayland', GSETTINGS_BACKEND: 'memory', NO_AT_BRIDGE: '1', XDG_CONFIG_HOME: config }, socket);
    // GTK gives its first entry the focus once it has the keyboard; let it draw that.
    await sleep(3000);
    const before = await kiosk.output.captureNext();
    savePng('gtk-before-menu.png', before);
    const bg = commonColour(before, W, H);
    const size = top().surface.size!;
    console.log(`wayland-popups: gtk3-widget-factory on screen after ${(startMs / 1000).toFixed(1)} s, ${size.w}x${size.h}, geometry ${JSON.stringify(top().geometry())}, background #${bg.toString(16)}`);

    // 1. Shift+F10: the entry's context menu.
    let mark = app.out().length;
    const since = () => app.out().slice(mark);
    chord(kbd, [KEY_LEFTSHIFT], KEY_F10);
    await popupsAre(app, top, 1, 'the context menu mapped');
    expect(since()).toMatch(/-> xdg_surface@\d+\.get_popup\(/);
    expect(since()).toMatch(/-> xdg_popup@\d+\.grab\(wl_seat@\d+, \d+\)/);
    expect(since()).toMatch(/xdg_popup@\d+\.configure\(-?\d+, -?\d+, \d+, \d+\)/);
    const anchor = /-> xdg_positioner@\d+\.set_anchor_rect\((-?\d+), (-?\d+), (\d+), (\d+)\)/.exec(since());
    const p = top().popups()[0]!;
    // The keyboard goes to the menu (the grab's topmost popup).
    expect(kiosk.seat.keyboard?.focus).toBe(p.surface);
    const drawn = await menuDrawn(kiosk, before, bg, p, top());
    savePng('gtk-menu-open.png', drawn.cap);
    console.log(`wayland-popups: context menu ${drawn.rect.width}x${drawn.rect.height} at ${drawn.rect.x},${drawn.rect.y}; ${(drawn.frac * 100).toFixed(1)}% of the ${drawn.bg} background pixels under it covered`);
    expect(drawn.rect.width * drawn.rect.height).toBeGreaterThan(1000);
    expect(drawn.bg, `menu at ${JSON.stringify(drawn.rect)}`).toBeGreaterThan(1000);
    // The menu's body is opaque: nearly every background pixel under it must change.
    expect(drawn.frac, `menu at ${JSON.stringify(drawn.rect)}`).toBeGreaterThan(0.9);
    // It stays open: nothing dismissed it while the user did nothing.
    await sleep(2000);
    expect(top().popups()).toHaveLength(1);
    expect(since()).not.toMatch(POPUP_DONE);

    // 2. Escape goes to the client, which closes its menu itself.
    chord(kbd, [], KEY_ESC);
    await popupsAre(app, top, 0, 'the menu closed on Escape', 30_000);
    expect(since()).toMatch(/-> xdg_popup@\d+\.destroy\(\)/);
    expect(since()).not.toMatch(POPUP_DONE);
    await waitFor(() => kiosk.seat.keyboard?.focus === top().surface, 'the keyboard back on the window', 15_000);

    // 3. Opened again; a click far from it (bottom-right corner) dismisses it: popup_done.
    mark = app.out().length;
    chord(kbd, [KEY_LEFTSHIFT], KEY_F10);
    await popupsAre(app, top, 1, 'the context menu mapped again');
    const spot = { x: W - 14, y: H - 18 };
    const r3 = popupOnOutput(kiosk, top(), top().popups()[0]!);
    expect(spot.x >= r3.x && spot.x < r3.x + r3.width && spot.y >= r3.y && spot.y < r3.y + r3.height).toBe(false);
    pen.absTo(spot.x, spot.y);
    await sleep(500);
    click(pen, BTN_LEFT);
    await popupsAre(app, top, 0, 'the menu dismissed by the click outside', 30_000);
    await waitFor(() => POPUP_DONE.test(since()), 'popup_done in the trace', 10_000);
    // The press was the dismissal's, not the window's.
    expect(since()).not.toMatch(/wl_pointer@\d+\.button\(\d+, \d+, 272, 1\)/);

    // 4. Drag-and-drop: the focused entry's text is selected; dragged from it onto the
    // empty entry below, GTK starts a drag with an icon, drops, and finishes.
    mark = app.out().length;
    pen.absTo(60, 27);
    await sleep(300);
    pen.key(BTN_LEFT, true);
    for (const [x, y] of [[70, 30], [100, 60], [150, 115], [160, 117]] as const) {
      await sleep(300);
      pen.absTo(x, y);
    }
    await Promise.race([waitFor(() => /-> wl_data_device@\d+\.start_drag\(/.test(since()), 'start_drag', 30_000), app.early]);
    await waitFor(() => kiosk.dataDevices.dragIcon !== null, 'the drag icon', 15_000).catch(() => {});
    const iconSeen = kiosk.dataDevices.dragIcon !== null;
    await waitFor(() => /wl_data_device@\d+\.enter\(/.test(since()) && /-> wl_data_offer@\d+\.accept\(\d+, "text\/plain/.test(since()), 'the target accepting text', 30_000);
    pen.key(BTN_LEFT, false);
    await Promise.race([waitFor(() => /wl_data_source@\d+\.dnd_finished\(\)/.test(since()), 'dnd_finished', 30_000), app.early]);
    const dnd = since();
    console.log(`wayland-popups: GTK drag: icon ${iconSeen ? 'shown' : 'none'}; ${(dnd.match(/wl_data_device@\d+\.motion\(/g) ?? []).length} motions`);
    expect(dnd).toMatch(/wl_data_device@\d+\.drop\(\)/);
    expect(dnd).toMatch(/wl_data_source@\d+\.dnd_drop_performed\(\)/);
    expect(dnd).toMatch(/-> wl_data_offer@\d+\.finish\(\)/);
    expect(dnd).not.toMatch(/wl_data_source@\d+\.cancelled\(\)/);
    expect(kiosk.dataDevices.dragging).toBeNull();

    // 5. A right-click on the entry (where the first menu was anchored) opens its menu at the pointer.
    expect(anchor, 'the context menu positioner had an anchor rectangle').not.toBeNull();
    const [ax, ay, aw, ah] = anchor!.slice(1).map(Number) as [number, number, number, number];
    // The anchor rectangle is in the window geometry's coordinates.
    const g = top().geometry() ?? { x: 0, y: 0 };
    const entryAt = rootToOutput(kiosk, top(), { x: g.x + ax + Math.floor(aw / 2), y: g.y + ay + Math.floor(ah / 2) });
    mark = app.out().length;
    pen.absTo(entryAt.x, entryAt.y);
    await sleep(500);
    click(pen, BTN_RIGHT);
    await popupsAre(app, top, 1, 'the right-click menu mapped', 30_000);
    expect(since()).toMatch(RIGHT_PRESS);
    expect(since()).toMatch(/-> xdg_popup@\d+\.grab\(wl_seat@\d+, \d+\)/);
    const rc = popupOnOutput(kiosk, top(), top().popups()[0]!);
    console.log(`wayland-popups: right-click at ${entryAt.x},${entryAt.y}: menu at ${rc.x},${rc.y} ${rc.width}x${rc.height}`);
    chord(kbd, [], KEY_ESC);
    await popupsAre(app, top, 0, 'the right-click menu closed on Escape', 30_000);

    // 6. A click on the "Andrea" combo box (a GtkComboBox): its list, drawn over the window.
    await waitFor(() => kiosk.seat.keyboard?.focus === top().surface, 'the keyboard back on the window', 15_000);
    mark = app.out().length;
    pen.absTo(COMBO.x, COMBO.y);
    await sleep(500);
    click(pen, BTN_LEFT);
    await popupsAre(app, top, 1, 'the combo box list mapped', 30_000);
    expect(since()).toMatch(/-> xdg_popup@\d+\.grab\(wl_seat@\d+, \d+\)/);
    const cb = await menuDrawn(kiosk, before, bg, top().popups()[0]!, top());
    console.log(`wayland-popups: combo list ${cb.rect.width}x${cb.rect.height} at ${cb.rect.x},${cb.rect.y}; ${(cb.frac * 100).toFixed(1)}% of ${cb.bg} covered`);
    savePng('gtk-combo-open.png', cb.cap);
    expect(cb.bg).toBeGreaterThan(500);
    expect(cb.frac).toBeGreaterThan(0.9);
    chord(kbd, [], KEY_ESC);
    await popupsAre(app, top, 0, 'the combo list closed on Escape', 30_000);

    // 7. A tooltip: the pointer resting on the link button (GtkLinkButton shows its URI) maps
    // a popup without a grab, drawn over the window; moving away takes it down.
    mark = app.out().length;
    pen.absTo(LINK_BUTTON.x, LINK_BUTTON.y);
    await sleep(300);
    pen.absTo(LINK_BUTTON.x + 2, LINK_BUTTON.y + 1);
    await popupsAre(app, top, 1, 'the tooltip mapped', 30_000);
    expect(since()).toMatch(/-> xdg_surface@\d+\.get_popup\(/);
    expect(since()).not.toMatch(/-> xdg_popup@\d+\.grab\(/);
    const tip = await menuDrawn(kiosk, before, bg, top().popups()[0]!, top());
    console.log(`wayland-popups: tooltip ${tip.rect.width}x${tip.rect.height} at ${tip.rect.x},${tip.rect.y}; ${(tip.frac * 100).toFixed(1)}% of ${tip.bg} covered`);
    savePng('gtk-tooltip.png', tip.cap);
    expect(tip.frac).toBeGreaterThan(0.5);
    pen.absTo(W - 14, H - 18);
    await popupsAre(app, top, 0, 'the tooltip gone', 30_000);

    expect(app.out()).not.toMatch(/protocol error|Lost connection|Error .* dispatching/i);
    expect(clientTraceViolations(app.out())).toEqual([]);
    top().resource.sendClose();
    const code = await Promise.race([app.exited, sleep(30_000).then(() => 'still running 30 s after close')]);
    expect(code, app.out().slice(-2000)).toBe(0);
    expect(log.filter((l) => /MaxListeners|client request failed/.test(l))).toEqual([]);
  }, 400_000);

  it.skipIf(missingGtkDemo)('GTK 3 menu bar (gtk3-demo Menus): F10 opens the first menu, Down its submenu (a popup of the popup); a click outside dismisses both, the submenu first; F10 and Escape; a click on a menu bar item', async () => {
    const { kiosk, kbd, pen, socket, log } = await kioskWithInput('gtkdemo');
    const { app, top, startMs } = await launch(kiosk, 'gtk3-demo', ['--run=menus'], { GDK_BACKEND: 'wayland', GSETTINGS_BACKEND: 'memory', NO_AT_BRIDGE: '1' }, socket);
    // gtk3-demo maps its main window, then the demo's: the kiosk shows the newest.
    await Promise.race([waitFor(() => top().title === 'Menus' && kiosk.seat.keyboard?.focus === top().surface, 'the Menus window with the keyboard', 30_000), app.early]);
    // The pointer rests on the window's empty lower part, where the clicks outside go.
    const outside = { x: 700, y: 600 };
    pen.absTo(outside.x, outside.y);
    await sleep(1500);
    const before = await kiosk.output.captureNext();
    savePng('gtkdemo-before-menu.png', before);
    const bg = commonColour(before, W, H);
    console.log(`wayland-popups: gtk3-demo Menus on screen after ${(startMs / 1000).toFixed(1)} s, ${JSON.stringify(top().surface.size)}, geometry ${JSON.stringify(top().geometry())}, background #${bg.toString(16)}`);

    // 1. F10: the menu bar's first menu.
    let mark = app.out().length;
    const since = () => app.out().slice(mark);
    chord(kbd, [], KEY_F10);
    await popupsAre(app, top, 1, 'the first menu of the menu bar mapped');
    const menu = await menuDrawn(kiosk, before, bg, top().popups()[0]!, top());
    console.log(`wayland-popups: GTK menu bar menu ${menu.rect.width}x${menu.rect.height} at ${menu.rect.x},${menu.rect.y}; ${(menu.frac * 100).toFixed(1)}% of ${menu.bg} covered`);
    expect(menu.bg).toBeGreaterThan(1000);
    expect(menu.frac).toBeGreaterThan(0.9);
    // 2. Down: its first item, whose submenu opens: a popup whose parent is the menu.
    chord(kbd, [], KEY_DOWN);
    await popupsAre(app, top, 2, 'the submenu mapped', 30_000);
    expect(kiosk.seat.keyboard?.focus).toBe(top().popups()[1]!.surface);
    const sub = await menuDrawn(kiosk, before, bg, top().popups()[1]!, top());
    savePng('gtkdemo-submenu-open.png', sub.cap);
    console.log(`wayland-popups: GTK submenu ${sub.rect.width}x${sub.rect.height} at ${sub.rect.x},${sub.rect.y}; ${(sub.frac * 100).toFixed(1)}% of ${sub.bg} covered`);
    expect(sub.bg).toBeGreaterThan(1000);
    expect(sub.frac).toBeGreaterThan(0.9);
    // Both stay open while the user does nothing; the trace shows them configured and drawn.
    await sleep(2000);
    expect(top().popups()).toHaveLength(2);
    const open = chainInTrace(app.out(), 2);
    console.log(`wayland-popups: GTK chain in the trace: ${JSON.stringify(open.chain)}`);
    // 3. A click outside: popup_done for the submenu, then the menu; the press is not delivered.
    await clickOutsideDismisses(app, top, pen, since, open);

    // 4. F10 again, then Escape: the client closes its menu (no popup_done).
    await waitFor(() => kiosk.seat.keyboard?.focus === top().surface, 'the keyboard back on the window', 15_000);
    mark = app.out().length;
    chord(kbd, [], KEY_F10);
    await popupsAre(app, top, 1, 'the menu mapped again', 30_000);
    chord(kbd, [], KEY_ESC);
    await popupsAre(app, top, 0, 'the menu closed on Escape', 30_000);
    expect(since()).toMatch(/-> xdg_popup@\d+\.destroy\(\)/);
    expect(since()).not.toMatch(POPUP_DONE);

    // 5. A click on the menu bar's "foo" item opens its menu (a grab quoting the button's
    // serial); a click outside dismisses it.
    mark = app.out().length;
    pen.absTo(70, 22);
    await sleep(500);
    click(pen, BTN_LEFT);
    await popupsAre(app, top, 1, 'the foo menu mapped on the click', 30_000);
    expect(since()).toMatch(/-> xdg_popup@\d+\.grab\(wl_seat@\d+, \d+\)/);
    pen.absTo(outside.x, outside.y);
    await sleep(500);
    click(pen, BTN_LEFT);
    await popupsAre(app, top, 0, 'the foo menu dismissed by the click outside', 30_000);
    await waitFor(() => POPUP_DONE.test(since()), 'popup_done in the trace', 10_000);

    expect(app.out()).not.toMatch(/protocol error|Lost connection|Error .* dispatching/i);
    expect(clientTraceViolations(app.out())).toEqual([]);
    expect(log.filter((l) => /MaxListeners|client request failed/.test(l))).toEqual([]);
  }, 300_000);

  it.skipIf(missingQt)('Qt 5 (qtwayland5, the menus example): Alt+E opens the Edit menu, F its Format submenu, Escape closes them; opened again, a click outside dismisses both, the submenu first; a right-click opens the context menu, a click outside dismisses it', async () => {
    const { kiosk, kbd, pen, socket, log } = await kioskWithInput('qt');
    const { app, top, startMs } = await launch(kiosk, QT_MENUS, [], { QT_QPA_PLATFORM: 'wayland', QT_WAYLAND_DISABLE_WINDOWDECORATION: '1', XDG_SESSION_TYPE: 'wayland' }, socket);
    await sleep(2000);
    const before = await kiosk.output.captureNext();
    savePng('qt-before-menu.png', before);
    const bg = commonColour(before, W, H);
    console.log(`wayland-popups: Qt menus on screen after ${(startMs / 1000).toFixed(1)} s, ${JSON.stringify(top().surface.size)}, geometry ${JSON.stringify(top().geometry())}, background #${bg.toString(16)}`);

    // 1. Alt+E: the Edit menu of the menu bar.
    let mark = app.out().length;
    const since = () => app.out().slice(mark);
    chord(kbd, [KEY_LEFTALT], KEY_E);
    await popupsAre(app, top, 1, 'the Edit menu mapped');
    expect(since()).toMatch(/-> xdg_surface@\d+\.get_popup\(/);
    expect(since()).toMatch(/-> xdg_popup@\d+\.grab\(wl_seat@\d+, \d+\)/);
    const edit = await menuDrawn(kiosk, before, bg, top().popups()[0]!, top());
    savePng('qt-menu-open.png', edit.cap);
    console.log(`wayland-popups: Qt Edit menu ${edit.rect.width}x${edit.rect.height} at ${edit.rect.x},${edit.rect.y}; ${(edit.frac * 100).toFixed(1)}% of ${edit.bg} covered`);
    expect(edit.bg).toBeGreaterThan(1000);
    expect(edit.frac).toBeGreaterThan(0.9);
    // 2. F: its Format submenu, a popup of the menu.
    chord(kbd, [], KEY_F);
    await popupsAre(app, top, 2, 'the Format submenu mapped', 30_000);
    const parents = [...since().matchAll(/-> xdg_surface@(\d+)\.get_popup\(new id xdg_popup@\d+, xdg_surface@(\d+)/g)];
    expect(parents.length).toBeGreaterThanOrEqual(2);
    expect(parents.at(-1)![2]).toBe(parents.at(-2)![1]);
    // 3. Escape twice: the submenu, then the menu (the client closes them: no popup_done).
    chord(kbd, [], KEY_ESC);
    await popupsAre(app, top, 1, 'the submenu closed on Escape', 30_000);
    chord(kbd, [], KEY_ESC);
    await popupsAre(app, top, 0, 'the menu closed on Escape', 30_000);
    expect(since()).not.toMatch(POPUP_DONE);

    // 3b. The menu and its submenu again, the pointer resting outside them (Qt closes its
    // menus by itself when the pointer moves over the window while they are open); a click
    // there dismisses the chain: popup_done for the submenu, then the menu.
    const outside = { x: 20, y: H - 20 };
    pen.absTo(outside.x, outside.y);
    await sleep(500);
    await waitFor(() => kiosk.seat.keyboard?.focus === top().surface, 'the keyboard back on the window', 15_000);
    mark = app.out().length;
    chord(kbd, [KEY_LEFTALT], KEY_E);
    await popupsAre(app, top, 1, 'the Edit menu mapped again', 30_000);
    chord(kbd, [], KEY_F);
    await popupsAre(app, top, 2, 'the Format submenu mapped again', 30_000);
    await sleep(1000);
    expect(top().popups()).toHaveLength(2);
    const open = chainInTrace(app.out(), 2);
    console.log(`wayland-popups: Qt chain in the trace: ${JSON.stringify(open.chain)}`);
    await clickOutsideDismisses(app, top, pen, since, open);

    // 4. A right-click in the window's middle: the context menu; a click outside dismisses it.
    mark = app.out().length;
    // (Not on the label in the middle: it keeps the right-click to itself.)
    pen.absTo(W / 2, 210);
    await sleep(500);
    click(pen, BTN_RIGHT);
    await popupsAre(app, top, 1, 'the context menu mapped', 30_000);
    expect(since()).toMatch(RIGHT_PRESS);
    const ctx = popupOnOutput(kiosk, top(), top().popups()[0]!);
    console.log(`wayland-popups: Qt context menu at ${ctx.x},${ctx.y} ${ctx.width}x${ctx.height}`);
    pen.absTo(20, H - 20);
    await sleep(500);
    click(pen, BTN_LEFT);
    await popupsAre(app, top, 0, 'the context menu dismissed by the click outside', 30_000);
    await waitFor(() => POPUP_DONE.test(since()), 'popup_done in the trace', 10_000);
    expect(since()).not.toMatch(/wl_pointer@\d+\.button\(\d+, \d+, 272, 1\)/);

    expect(app.out()).not.toMatch(/protocol error|Lost connection/i);
    expect(clientTraceViolations(app.out())).toEqual([]);
    top().resource.sendClose();
    const code = await Promise.race([app.exited, sleep(30_000).then(() => 'still running 30 s after close')]);
    expect(code, app.out().slice(-2000)).toBe(0);
    expect(log.filter((l) => /MaxListeners|client request failed/.test(l))).toEqual([]);
  }, 300_000);
});

/** Pixels of one colour in a capture: how many, and how many inside `r`. */
function colourIn(cap: Capture, colour: number, r: { x: number; y: number; w: number; h: number }): { all: number; inside: number } {
  const px = new Uint32Array(cap.pixels.buffer, cap.pixels.byteOffset, cap.pixels.byteLength / 4);
  let all = 0;
  let inside = 0;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      if ((px[(y * cap.stride) / 4 + x]! & 0xffffff) !== colour) continue;
      all++;
      if (x >= r.x && x < r.x + r.w && y >= r.y && y < r.y + r.h) inside++;
    }
  }
  return { all, inside };
}

const PAGE_GREEN = 0x00c000;

describe('Firefox on the kiosk compositor', () => {
  // Not --kiosk: Firefox's kiosk mode shows no context menu by design (ContextMenuParent's
  // #openContextMenu returns at once when BrowserHandler.kiosk); the compositor makes the
  // window fullscreen either way.
  it.skipIf(missingFirefox)('firefox-esr shows a local page, and a right-click on it (uinput) opens its context menu, drawn over the page; Escape closes it', async () => {
    const { kiosk, kbd, pen, socket, log } = await kioskWithInput('firefox');
    const dir = join(runtimeDir(), 'firefox');
    const profile = firefoxProfile(join(dir, 'profile'));
    const page = join(dir, 'page.html');
    writeFileSync(page, `<!doctype html><html><body style="margin:0;background:#${PAGE_GREEN.toString(16).padStart(6, '0')}"></body></html>\n`);
    const env = { MOZ_ENABLE_WAYLAND: '1', GDK_BACKEND: 'wayland', HOME: dir, XDG_CACHE_HOME: join(dir, 'cache'), MOZ_CRASHREPORTER_DISABLE: '1', MOZ_DISABLE_AUTO_SAFE_MODE: '1', LIBGL_ALWAYS_SOFTWARE: '1', NO_AT_BRIDGE: '1', GSETTINGS_BACKEND: 'memory' };
    const { app, top, startMs } = await launch(kiosk, 'firefox-esr', ['--no-remote', '--new-instance', '--profile', profile, `file://${page}`], env, socket);
    const t0 = performance.now();
    // The page: most of the output its green (the window may keep a toolbar strip).
    let before = await kiosk.output.captureNext();
    let green = nearColour(before, PAGE_GREEN, W, H);
    for (const end = Date.now() + 240_000; green <= (W * H) / 2; ) {
      if (Date.now() > end) throw new Error(`the page was not drawn within 240 s (${green} page pixels): ${app.out().slice(-2000)}`);
      await Promise.race([sleep(1000), app.early]);
      before = await kiosk.output.captureNext();
      green = nearColour(before, PAGE_GREEN, W, H);
    }
    const pageMs = startMs + performance.now() - t0;
    savePng('firefox-page.png', before);
    console.log(`wayland-popups: firefox-esr window on screen after ${(startMs / 1000).toFixed(1)} s, page drawn after ${(pageMs / 1000).toFixed(1)} s (${green} page pixels), ${JSON.stringify(top().surface.size)}, geometry ${JSON.stringify(top().geometry())}`);
    const bg = commonColour(before, W, H);

    // A right-click in the page's lower middle.
    const mark = app.out().length;
    const since = () => app.out().slice(mark);
    const at = { x: W / 2 - 100, y: H / 2 };
    pen.absTo(at.x, at.y);
    await sleep(1000);
    const t1 = performance.now();
    click(pen, BTN_RIGHT);
    await popupsAre(app, top, 1, 'the context menu mapped', 120_000);
    const menuMs = performance.now() - t1;
    expect(since()).toMatch(RIGHT_PRESS);
    expect(since()).toMatch(/-> xdg_surface@\d+\.get_popup\(/);
    expect(since()).toMatch(/xdg_popup@\d+\.configure\(-?\d+, -?\d+, \d+, \d+\)/);
    const drawn = await menuDrawn(kiosk, before, bg, top().popups()[0]!, top());
    savePng('firefox-menu-open.png', drawn.cap);
    console.log(`wayland-popups: firefox context menu after ${(menuMs / 1000).toFixed(1)} s, ${drawn.rect.width}x${drawn.rect.height} at ${drawn.rect.x},${drawn.rect.y}; ${(drawn.frac * 100).toFixed(1)}% of the ${drawn.bg} page pixels under it covered`);
    expect(drawn.rect.width * drawn.rect.height).toBeGreaterThan(5000);
    expect(drawn.bg).toBeGreaterThan(5000);
    expect(drawn.frac).toBeGreaterThan(0.9);
    // Escape goes to Firefox, which closes its menu.
    chord(kbd, [], KEY_ESC);
    await popupsAre(app, top, 0, 'the context menu closed on Escape', 60_000);
    expect(since()).not.toMatch(/protocol error|Lost connection/i);
    expect(log.filter((l) => /MaxListeners|client request failed/.test(l))).toEqual([]);
  }, 600_000);
});

describe('drag-and-drop on the kiosk compositor', () => {
  it.skipIf(noUinput)('a drag started with the uinput tablet: its 16x16 icon follows the pointer (at its attach offset), the drop moves the data, the icon goes', async () => {
    const { kiosk, pen, socket, log } = await kioskWithInput('dnd');
    const shown = nextToplevelShown(kiosk);
    const c = startClient(buildWaylandClient(), ['input', String(W), String(H)], { runtimeDir: runtimeDir(), socket, extra: { GP_DND: 'ok' } });
    cleanup.push(() => c.kill());
    await c.waitFor(/^MAPPED /, 60_000);
    await shown;
    pen.absTo(200, 200);
    await c.waitFor(/^(PTR_ENTER .*|MOTION) x=200\.0+ y=200\.0+$/, 20_000);
    pen.key(BTN_LEFT, true);
    await c.waitFor(/^DND_ENTER x=200\.00 y=200\.00 offer=yes$/, 20_000);
    pen.absTo(400, 300);
    await c.waitFor(/^DND_MOTION x=400\.00 y=300\.00$/, 20_000);
    // The icon (cyan) at the pointer plus its attach offset (-4,-6): 16x16 from (396, 294).
    const icon = { x: 396, y: 294, w: 16, h: 16 };
    let seen = { all: 0, inside: 0 };
    for (let i = 0; i < 5 && seen.inside < 256; i++) {
      const cap = await kiosk.output.captureNext();
      seen = colourIn(cap, 0x00ffff, icon);
      if (seen.inside === 256) writePng(join(resultsDir('wayland-popups'), 'drag-icon.png'), { width: W, height: H, stride: cap.stride, pixels: cap.pixels });
    }
    console.log(`wayland-popups: drag icon: ${seen.inside} of 256 cyan pixels at ${icon.x},${icon.y}, ${seen.all} in all`);
    expect(seen).toEqual({ all: 256, inside: 256 });
    pen.key(BTN_LEFT, false);
    await c.waitFor(/^DND_DATA dragged$/, 20_000);
    await c.waitFor(/^SRC_FINISHED$/, 20_000);
    let after = { all: -1, inside: -1 };
    for (let i = 0; i < 5 && after.all !== 0; i++) after = colourIn(await kiosk.output.captureNext(), 0x00ffff, icon);
    expect(after.all).toBe(0);
    expect(c.lines.filter((l) => /error/i.test(l))).toEqual([]);
    expect(log.filter((l) => /MaxListeners|client request failed/.test(l))).toEqual([]);
  }, 120_000);
});

/** Green and red pixels of a capture (the test clients' window and the part that must not show). */
function greenRed(cap: Capture): { green: number; red: number } {
  const px = new Uint32Array(cap.pixels.buffer, cap.pixels.byteOffset, cap.pixels.byteLength / 4);
  let green = 0;
  let red = 0;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const v = px[(y * cap.stride) / 4 + x]! & 0xffffff;
      if (v === 0x00ff00) green++;
      else if (v === 0xff0000) red++;
    }
  }
  return { green, red };
}

/** Captures until the whole output is green (a few tries: the first frames may still be the old client's). */
async function allGreen(kiosk: KioskCompositor): Promise<{ green: number; red: number }> {
  let c = { green: 0, red: 0 };
  for (let tries = 0; tries < 5 && c.green < W * H; tries++) c = greenRed(await kiosk.output.captureNext());
  return c;
}

describe('window geometry on the kiosk compositor', () => {
  it('the window geometry, not the buffer, fills the output (an uneven shadow is cropped off); a larger window without geometry is shown from its top-left corner', async () => {
    const client = buildWaylandClient();
    const card = findCardByDriver('vkms');
    if (!card) throw new Error('no vkms card in the rig');
    const socket = `gp-geometry-${process.hrtime.bigint()}`;
    const kiosk = KioskCompositor.start({ device: card, connector: 'Virtual-1', socket, mode: { width: W, height: H }, input: false, log: () => {} });
    cleanup.push(() => kiosk.close());
    let shown = nextToplevelShown(kiosk);
    const c = startClient(client, ['geometry'], { runtimeDir: runtimeDir(), socket });
    cleanup.push(() => c.kill());
    // Configured at the output's size; the buffer is 64 wider and 56 taller (8/56, 40/16).
    await c.waitFor(/^GEOMETRY 1024x768 at 8,40 in 1088x824$/, 60_000);
    await shown;
    const geo = await allGreen(kiosk);
    console.log(`wayland-popups: window geometry: ${geo.green} green (window) and ${geo.red} red (shadow) pixels of ${W * H}`);
    expect(geo.red).toBe(0);
    expect(geo.green).toBe(W * H);
    await c.kill();

    // The same compositor, a client that ignores the fullscreen size: 1088x824, no geometry.
    shown = nextToplevelShown(kiosk);
    const o = startClient(client, ['oversize'], { runtimeDir: runtimeDir(), socket });
    cleanup.push(() => o.kill());
    await o.waitFor(/^OVERSIZE 1088x824 configured 1024x768$/, 60_000);
    await shown;
    const big = await allGreen(kiosk);
    console.log(`wayland-popups: oversized window: ${big.green} green (its top-left 1024x768) and ${big.red} red (beyond it) pixels of ${W * H}`);
    // A centred crop would show 32 red columns and 28 red rows and lose green on the left.
    expect(big.red).toBe(0);
    expect(big.green).toBe(W * H);
    await o.kill();
  }, 120_000);

  it('the same with a buffer transform and a viewport: the geometry (or the top-left corner) is cut in surface coordinates, not the centre', async () => {
    const client = buildWaylandClient();
    const card = findCardByDriver('vkms');
    if (!card) throw new Error('no vkms card in the rig');
    const socket = `gp-geometry-t-${process.hrtime.bigint()}`;
    const kiosk = KioskCompositor.start({ device: card, connector: 'Virtual-1', socket, mode: { width: W, height: H }, input: false, log: () => {} });
    cleanup.push(() => kiosk.close());
    // Transform 90, and 2 buffer pixels per surface pixel through a viewport whose source
    // crops a blue border off: the buffer is 1680x2208; the surface is 1088x824 as before.
    let shown = nextToplevelShown(kiosk);
    const c = startClient(client, ['geometry'], { runtimeDir: runtimeDir(), socket, extra: { GP_TRANSFORM: '1', GP_PICTURE_SCALE: '2' } });
    cleanup.push(() => c.kill());
    await c.waitFor(/^GEOMETRY 1024x768 at 8,40 in 1088x824$/, 60_000);
    await shown;
    const geo = await allGreen(kiosk);
    console.log(`wayland-popups: window geometry, transform 90 and a 2:1 viewport: ${geo.green} green, ${geo.red} red, ${W * H - geo.green - geo.red} other pixels of ${W * H}`);
    // Scaling 2:1 may blend the window's outermost pixels with what lies past the crop
    // (filtering): at most the output's one-pixel edge is not pure green; none is red.
    expect(geo.red).toBe(0);
    expect(geo.green).toBeGreaterThanOrEqual(W * H - 2 * (W + H));
    await c.kill();

    // Transform 270 at 1:1, no geometry: the picture's top-left corner, exactly.
    shown = nextToplevelShown(kiosk);
    const o = startClient(client, ['oversize'], { runtimeDir: runtimeDir(), socket, extra: { GP_TRANSFORM: '3' } });
    cleanup.push(() => o.kill());
    await o.waitFor(/^OVERSIZE 1088x824 configured 1024x768$/, 60_000);
    await shown;
    const big = await allGreen(kiosk);
    console.log(`wayland-popups: oversized window, transform 270: ${big.green} green and ${big.red} red pixels of ${W * H}`);
    expect(big.red).toBe(0);
    expect(big.green).toBe(W * H);
    await o.kill();
  }, 180_000);
});
