// Helpers for the rig's real-application menu tests (wayland-popups.test.ts): an app
// started with a client trace (WAYLAND_DEBUG), where a popup's window is on the output,
// (by the kiosk's placement rule stated in the test, so a misplaced window or popup fails
// the pixel check), and how much of a rectangle a capture shows changed against an earlier one.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KioskCompositor } from '../../../plugin/modes/compositor.js';
import type { CaptureResult as Capture } from '../../../plugin/output/capture.js';
import type { Rect } from '../../../plugin/geometry.js';
import type { PopupPlace } from '../../../plugin/wayland/xdg-popup.js';

export interface TracedApp {
  /** Everything it printed so far (the WAYLAND_DEBUG client trace with its stderr). */
  out(): string;
  /** Its exit code or signal, once it ended. */
  exited: Promise<number | string | null>;
  /** Rejects when it ends: race a wait with it, so a crash is reported with its output. */
  early: Promise<never>;
  kill(): void;
}

export function startTraced(cmd: string, args: string[], env: NodeJS.ProcessEnv): TracedApp {
  const child = spawn(cmd, args, { env: { ...process.env, WAYLAND_DEBUG: 'client', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | string | null>((r) => child.on('exit', (code, signal) => r(signal ?? code)));
  const early = exited.then((c) => Promise.reject<never>(new Error(`${cmd} ended (${c}): ${out.slice(-3000)}`)));
  early.catch(() => {});
  return { out: () => out, exited, early, kill: () => child.kill('SIGKILL') };
}

type Root = { surface: { size: { w: number; h: number } | null }; geometry(): Rect | null };

/**
 * A point of a toplevel's root surface on the output, by the kiosk's rule for native fit
 * stated here, not taken from the code under test: the window rectangle (its geometry, or
 * the surface) has its top-left corner at the output's on an axis where it is at least as
 * large as the output, and is centred on an axis where it is smaller.
 */
export function rootToOutput(kiosk: KioskCompositor, root: Root, p: { x: number; y: number }): { x: number; y: number } {
  const size = root.surface.size!;
  const g = root.geometry() ?? { x: 0, y: 0, width: size.w, height: size.h };
  const W = kiosk.output.width;
  const H = kiosk.output.height;
  const ox = g.width >= W ? 0 : Math.floor((W - g.width) / 2);
  const oy = g.height >= H ? 0 : Math.floor((H - g.height) / 2);
  return { x: Math.round(p.x - g.x + ox), y: Math.round(p.y - g.y + oy) };
}

/**
 * A popup's window (its window geometry, or its surface) in output pixels: popups are
 * placed in their toplevel's root surface coordinates, and the output shows the root's
 * window rectangle (native fit: 1:1) at the output area's offset.
 */
export function popupOnOutput(kiosk: KioskCompositor, root: Root, p: PopupPlace): Rect {
  const size = p.surface.size!;
  const g = p.geometry ?? { x: 0, y: 0, width: size.w, height: size.h };
  const at = rootToOutput(kiosk, root, { x: p.x + g.x, y: p.y + g.y });
  return { ...at, width: g.width, height: g.height };
}

function pixels(c: Capture): Uint32Array {
  return new Uint32Array(c.pixels.buffer, c.pixels.byteOffset, c.pixels.byteLength / 4);
}

/** The most frequent colour of a capture (an application's window background). */
export function commonColour(c: Capture, width: number, height: number): number {
  const px = pixels(c);
  const n = new Map<number, number>();
  for (let y = 0; y < height; y += 2) for (let x = 0; x < width; x += 2) {
    const v = px[(y * c.stride) / 4 + x]! & 0xffffff;
    n.set(v, (n.get(v) ?? 0) + 1);
  }
  return [...n.entries()].sort((a, b) => b[1] - a[1])[0]![0];
}

/**
 * Of a rectangle's pixels that showed the colour `bg` in `a`, how many `b` shows
 * different (a menu drawn over them), and how many there were.
 */
export function covered(a: Capture, b: Capture, r: Rect, bg: number, width: number, height: number): { frac: number; bg: number } {
  const pa = pixels(a);
  const pb = pixels(b);
  let n = 0;
  let m = 0;
  for (let y = Math.max(0, r.y); y < Math.min(height, r.y + r.height); y++) {
    for (let x = Math.max(0, r.x); x < Math.min(width, r.x + r.width); x++) {
      if ((pa[(y * a.stride) / 4 + x]! & 0xffffff) !== bg) continue;
      m++;
      if ((pb[(y * b.stride) / 4 + x]! & 0xffffff) !== bg) n++;
    }
  }
  return { frac: m ? n / m : 0, bg: m };
}

/** Waits `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * A Firefox profile that starts straight into `page` (a local file) with nothing else to
 * do: no first-run or what's-new pages, no default-browser check, no telemetry, updates,
 * safe-browsing lists, remote settings or captive-portal probes, no content-process
 * prelaunch, and software WebRender without colour management (the page's colour reaches
 * the screen as written). Returns the profile's directory.
 */
export function firefoxProfile(dir: string): string {
  const prefs: Record<string, string | number | boolean> = {
    'browser.shell.checkDefaultBrowser': false,
    'browser.startup.homepage_override.mstone': 'ignore',
    'startup.homepage_welcome_url': '',
    'startup.homepage_welcome_url.additional': '',
    'browser.aboutwelcome.enabled': false,
    'browser.startup.firstrunSkipsHomepage': true,
    'trailhead.firstrun.didSeeAboutWelcome': true,
    'browser.newtabpage.enabled': false,
    'browser.sessionstore.resume_from_crash': false,
    'toolkit.startup.max_resumed_crashes': -1,
    'datareporting.policy.dataSubmissionEnabled': false,
    'datareporting.healthreport.uploadEnabled': false,
    'toolkit.telemetry.enabled': false,
    'toolkit.telemetry.reportingpolicy.firstRun': false,
    'app.normandy.enabled': false,
    'app.update.auto': false,
    'app.update.enabled': false,
    'extensions.update.enabled': false,
    'extensions.getAddons.cache.enabled': false,
    'extensions.systemAddon.update.enabled': false,
    'extensions.pocket.enabled': false,
    'browser.discovery.enabled': false,
    'browser.safebrowsing.malware.enabled': false,
    'browser.safebrowsing.phishing.enabled': false,
    'browser.safebrowsing.downloads.enabled': false,
    'browser.safebrowsing.update.enabled': false,
    'browser.region.update.enabled': false,
    'browser.search.update': false,
    'services.settings.server': 'http://127.0.0.1:9/',
    'network.captive-portal-service.enabled': false,
    'network.connectivity-service.enabled': false,
    'network.dns.disablePrefetch': true,
    'network.prefetch-next': false,
    'dom.ipc.processPrelaunch.enabled': false,
    'gfx.webrender.software': true,
    'gfx.color_management.mode': 0,
    'ui.prefersReducedMotion': 1,
    'toolkit.cosmeticAnimations.enabled': false,
    'media.hardware-video-decoding.enabled': false,
  };
  mkdirSync(dir, { recursive: true });
  const lines = Object.entries(prefs).map(([k, v]) => `user_pref(${JSON.stringify(k)}, ${JSON.stringify(v)});`);
  writeFileSync(join(dir, 'user.js'), lines.join('\n') + '\n');
  return dir;
}

/** Pixels of a capture within `tol` of an RGB colour in every channel (software rendering may dither edges). */
export function nearColour(c: Capture, rgb: number, width: number, height: number, tol = 8): number {
  const px = pixels(c);
  let n = 0;
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
    const v = px[(y * c.stride) / 4 + x]!;
    if (Math.abs(((v >> 16) & 255) - ((rgb >> 16) & 255)) <= tol && Math.abs(((v >> 8) & 255) - ((rgb >> 8) & 255)) <= tol && Math.abs((v & 255) - (rgb & 255)) <= tol) n++;
  }
  return n;
}

/** A popup as a client's WAYLAND_DEBUG trace shows it. */
export interface TracedPopup {
  /** Object ids: its xdg_popup, its xdg_surface, its parent's xdg_surface ('nil': none), its wl_surface. */
  popup: number;
  xdgSurface: number;
  parent: number | 'nil';
  surface: number;
  grab: boolean;
  configured: boolean;
  /** Frame callbacks the client asked for on its wl_surface, and how many the compositor answered (done). */
  frames: number;
  framesDone: number;
  /** The order of its popup_done among all popup_done events of the trace (-1: none). */
  doneOrder: number;
  destroyed: boolean;
}

/**
 * The popups of a client trace, in creation order, read line by line so that reused object
 * ids (libwayland hands out freed ids again) belong to the object live at that point.
 */
export function tracedPopups(trace: string): TracedPopup[] {
  const out: TracedPopup[] = [];
  const surfaceOf = new Map<number, number>();
  const byPopup = new Map<number, TracedPopup>();
  const bySurface = new Map<number, TracedPopup>();
  const callbacks = new Map<number, TracedPopup>();
  let dones = 0;
  for (const line of trace.split('\n')) {
    const request = line.includes(' -> ');
    let m: RegExpExecArray | null;
    if (request && (m = /xdg_wm_base@\d+\.get_xdg_surface\(new id xdg_surface@(\d+), wl_surface@(\d+)\)/.exec(line))) {
      surfaceOf.set(+m[1]!, +m[2]!);
    } else if (request && (m = /xdg_surface@(\d+)\.get_popup\(new id xdg_popup@(\d+), (?:xdg_surface@(\d+)|nil)/.exec(line))) {
      const surface = surfaceOf.get(+m[1]!) ?? -1;
      const p: TracedPopup = { popup: +m[2]!, xdgSurface: +m[1]!, parent: m[3] ? +m[3] : 'nil', surface, grab: false, configured: false, frames: 0, framesDone: 0, doneOrder: -1, destroyed: false };
      out.push(p);
      byPopup.set(p.popup, p);
      bySurface.set(surface, p);
    } else if (request && (m = /xdg_popup@(\d+)\.grab\(/.exec(line))) {
      const p = byPopup.get(+m[1]!);
      if (p) p.grab = true;
    } else if (request && (m = /wl_surface@(\d+)\.frame\(new id wl_callback@(\d+)\)/.exec(line))) {
      const p = bySurface.get(+m[1]!);
      if (p) (p.frames++, callbacks.set(+m[2]!, p));
    } else if (request && (m = /xdg_popup@(\d+)\.destroy\(\)/.exec(line))) {
      const p = byPopup.get(+m[1]!);
      if (p) (p.destroyed = true, byPopup.delete(p.popup));
    } else if (request && (m = /wl_surface@(\d+)\.destroy\(\)/.exec(line))) {
      bySurface.delete(+m[1]!);
    } else if (!request && (m = /wl_callback@(\d+)\.done\(/.exec(line))) {
      const p = callbacks.get(+m[1]!);
      if (p) (p.framesDone++, callbacks.delete(+m[1]!));
    } else if (!request && (m = /xdg_popup@(\d+)\.configure\(/.exec(line))) {
      const p = byPopup.get(+m[1]!);
      if (p) p.configured = true;
    } else if (!request && (m = /xdg_popup@(\d+)\.popup_done\(\)/.exec(line))) {
      const p = byPopup.get(+m[1]!);
      if (p) p.doneOrder = dones;
      dones++;
    }
  }
  return out;
}
