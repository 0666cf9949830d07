// The GLES fallback of window mode, between handing the guest's dma-buf over (buffers.ts)
// and the wl_shm copy (shm-copy.ts): when the desktop compositor does not take the guest's
// format/modifier (XR30 on a compositor whose feedback has no 10-bit pair), the guest
// buffer is drawn by the GPU into a buffer it does take. The GLES stack is the KMS output's
// (compose/gles.ts: the guest dma-buf as a texture, with its upload path where the driver
// cannot sample a foreign dma-buf, e.g. kms_swrast in the rig), opened on a device node of
// our own (GlesCompositor.onNode: the feedback's main device where we can open it, else a
// render node, else a card node) with targets that have no KMS framebuffer.
//
// The target: a linear GBM bo of the guest's size in a pair the desktop's feedback lists
// (pickBlitPair: a scanout tranche's first, XR24/AR24 and their BGR twins, LINEAR else
// implicit), exported as a dma-buf and made a wl_buffer once. RING of them, reused: a
// target is busy from attach until its wl_buffer's `release`. Each guest frame is one blit
// (no transform: the guest's orientation still goes to wl_surface.set_buffer_transform).
//
// Ownership: the GlesCompositor is this object's, made on first need and closed in close()
// (after everything it made). A ring's targets (bo + EGLImage + FBO) and wl_buffers go
// together when the ring is replaced (another size or pair) or in close(): the wl_buffers
// first (destroying one the desktop still holds is allowed: it keeps its own reference to
// the dma-buf), then the targets. The dma-buf fd exported from each target is closed right
// after zwp_linux_buffer_params.add (libwayland sends its own duplicate). Guest images
// (EGLImage + texture, or the upload path's dup'd fd and mapping) are cached per (source,
// buffer, generation), bounded, and dropped on a mode change, `buffers-gone`
// (invalidate) or close(); the guest's fd from exportDmabuf() is closed right after import.
import { readdirSync, statSync } from 'node:fs';
import * as libc from '../../ffi/libc.js';
import * as drm from '../../ffi/drm.js';
import { GlesCompositor, type GlesImage, type GlesTarget } from '../compose/gles.js';
import type { WlBuffer } from '../../protocols/generated/client/wayland.js';
import type { GuestPlaneInfo, GuestSource } from '../sources/source.js';
import type { Desktop } from './connection.js';
import { offers, type DmabufFeedback } from './dmabuf-feedback.js';
import { importDmabuf } from './dmabuf-import.js';

const RING = 3;
const IMAGE_LIMIT = 8;
const MOD_LINEAR = 0n;
const MOD_INVALID = drm.DRM_FORMAT_MOD_INVALID;
const XR24 = drm.fourcc('XR24');
const AR24 = drm.fourcc('AR24');
const XB24 = drm.fourcc('XB24');
const AB24 = drm.fourcc('AB24');

/** The format/modifier of our blit targets as declared to the desktop, and whether a scanout tranche lists it. */
export interface BlitPair {
  format: number;
  modifier: bigint;
  scanout: boolean;
}

/**
 * The pair to blit into: the first tranche (scanout tranches first, then the others, each
 * in the compositor's order) that lists one of our target formats (alpha formats first
 * for a guest with alpha) as LINEAR, else with the implicit modifier (a linear bo is what
 * an implicit import of our untiled target reads). Without v4 feedback: the v3 list
 * (`takes`). Null: nothing we can render into is taken.
 */
export function pickBlitPair(feedback: DmabufFeedback | null, takes: (format: number, modifier: bigint) => boolean, alpha: boolean): BlitPair | null {
  const formats = alpha ? [AR24, AB24, XR24, XB24] : [XR24, XB24, AR24, AB24];
  if (!feedback) {
    for (const f of formats) for (const m of [MOD_LINEAR, MOD_INVALID]) if (takes(f, m)) return { format: f, modifier: m, scanout: false };
    return null;
  }
  const ordered = [...feedback.tranches.filter((t) => t.scanout), ...feedback.tranches.filter((t) => !t.scanout)];
  for (const t of ordered) {
    for (const f of formats) {
      for (const m of [MOD_LINEAR, MOD_INVALID]) {
        if (t.pairs.has(`${f >>> 0}/${m}`)) return { format: f, modifier: m, scanout: offers(feedback, f, m).scanout };
      }
    }
  }
  return null;
}

export interface DrmNode {
  path: string;
  rdev: bigint;
}

/** /dev/dri's nodes with their device numbers (none when there is no /dev/dri). */
export function listDrmNodes(dir = '/dev/dri'): DrmNode[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const out: DrmNode[] = [];
  for (const n of names) {
    if (!/^(renderD|card)\d+$/.test(n)) continue;
    try {
      out.push({ path: `${dir}/${n}`, rdev: statSync(`${dir}/${n}`, { bigint: true }).rdev });
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

/** Nodes to open GLES on, best first: the desktop's main device, then render nodes, then card nodes. */
export function nodeCandidates(mainDevice: bigint | null, nodes: readonly DrmNode[]): string[] {
  const byName = (a: DrmNode, b: DrmNode) => a.path.localeCompare(b.path, 'en', { numeric: true });
  const main = mainDevice ? nodes.filter((n) => n.rdev === mainDevice) : [];
  const render = nodes.filter((n) => !main.includes(n) && /renderD\d+$/.test(n.path)).sort(byName);
  const card = nodes.filter((n) => !main.includes(n) && /card\d+$/.test(n.path)).sort(byName);
  return [...main, ...render, ...card].map((n) => n.path);
}

export type BlitResult =
  | { kind: 'ok'; buffer: WlBuffer; pair: BlitPair; ms: number; uploadedBytes: number; imagePath: 'dmabuf' | 'upload'; uploadReason: string | null }
  /** A target's wl_buffer is on its way: asked again when `onReady` ran. */
  | { kind: 'pending' }
  /** The desktop holds every target: ask again on release. */
  | { kind: 'busy' }
  | { kind: 'failed'; reason: string };

interface Slot {
  target: GlesTarget;
  buffer: WlBuffer | null;
  state: 'pending' | 'ready' | 'failed';
  busy: boolean;
}
interface Ring {
  key: string;
  pair: BlitPair;
  slots: Slot[];
  /** Why this ring cannot be used (the desktop refused a target's dma-buf). */
  failed: string | null;
}
interface ImageEntry {
  sourceId: number;
  image: GlesImage | null;
  error: string | null;
}

export interface GlesBlitOptions {
  /** Node paths to try (default: nodeCandidates of the feedback's main device and /dev/dri). */
  nodes?: (mainDevice: bigint | null) => string[];
}

export class GlesBlits {
  readonly #desktop: Desktop;
  readonly #onReady: () => void;
  readonly #nodes: (mainDevice: bigint | null) => string[];
  #gles: GlesCompositor | null = null;
  /** Why GLES cannot be set up (tried once per window). */
  #unavailable: string | null = null;
  #ring: Ring | null = null;
  readonly #images = new Map<string, ImageEntry>();
  readonly #generations = new Map<number, number>();
  #closed = false;
  blits = 0;
  blitMs = 0;

  constructor(desktop: Desktop, onReady: () => void, opts: GlesBlitOptions = {}) {
    this.#desktop = desktop;
    this.#onReady = onReady;
    this.#nodes = opts.nodes ?? ((main) => nodeCandidates(main, listDrmNodes()));
  }

  /** The node and driver GLES runs on, once set up. */
  get device(): string | null {
    return this.#gles ? `${this.#gles.info.devicePath} (${this.#gles.info.driver ?? this.#gles.info.glRenderer})` : null;
  }

  /** Draws the guest's plane into a free target the desktop takes. */
  blit(source: GuestSource, sourceId: number, p: GuestPlaneInfo, feedback: DmabufFeedback | null): BlitResult {
    if (this.#closed) return { kind: 'failed', reason: 'the window is closed' };
    if (p.transport !== 'dmabuf') return { kind: 'failed', reason: 'the guest plane is no dma-buf' };
    if (p.planes && p.planes.length > 0) return { kind: 'failed', reason: `${drm.fourccName(p.format)} has ${p.planes.length + 1} planes; the blit takes single-plane formats` };
    const gles = this.#open(feedback);
    if (typeof gles === 'string') return { kind: 'failed', reason: gles };
    const alpha = drm.formatInfo(p.format)?.hasAlpha ?? false;
    const pair = pickBlitPair(feedback, (f, m) => this.#desktop.modifierFor(f, m, null) === m, alpha);
    if (!pair) return { kind: 'failed', reason: 'the desktop compositor takes none of XR24, XB24, AR24, AB24 (linear or implicit) for a blit target' };
    const ring = this.#ringFor(gles, p.width, p.height, pair);
    if (ring.failed) return { kind: 'failed', reason: ring.failed };
    if (ring.slots.some((s) => s.state === 'pending')) return { kind: 'pending' };
    const slot = ring.slots.find((s) => s.state === 'ready' && !s.busy);
    if (!slot) return { kind: 'busy' };
    const image = this.#imageFor(gles, source, sourceId, p);
    if (typeof image === 'string') return { kind: 'failed', reason: image };
    let r: { ms: number; uploadedBytes: number };
    try {
      r = gles.compose(slot.target, [{ image, dst: { x: 0, y: 0, width: p.width, height: p.height } }]);
    } catch (e) {
      return { kind: 'failed', reason: `the blit of buffer ${p.bufferId} failed: ${(e as Error).message}` };
    }
    slot.busy = true;
    this.blits++;
    this.blitMs += r.ms;
    return { kind: 'ok', buffer: slot.buffer!, pair, ms: r.ms, uploadedBytes: r.uploadedBytes, imagePath: image.path, uploadReason: image.uploadReason };
  }

  #open(feedback: DmabufFeedback | null): GlesCompositor | string {
    if (this.#gles) return this.#gles;
    if (this.#unavailable) return this.#unavailable;
    const nodes = this.#nodes(feedback?.mainDevice || null);
    const tried: string[] = [];
    for (const path of nodes) {
      const c = GlesCompositor.onNode(path);
      if (c instanceof GlesCompositor) return (this.#gles = c);
      tried.push(c.unavailable);
    }
    this.#unavailable = nodes.length === 0 ? 'no GLES: no DRM device node to open (/dev/dri is empty or missing)' : `no GLES: ${tried.join('; ')}`;
    return this.#unavailable;
  }

  #ringFor(gles: GlesCompositor, width: number, height: number, pair: BlitPair): Ring {
    const key = `${width}x${height}/${pair.format}/${pair.modifier}`;
    if (this.#ring?.key === key) return this.#ring;
    this.#dropRing();
    const name = `${width}x${height} ${drm.fourccName(pair.format)}`;
    let targets: GlesTarget[] = [];
    let failed: string | null = null;
    try {
      targets = gles.createRing(width, height, { count: RING, format: pair.format }).targets.slice();
    } catch (e) {
      // Remembered with the ring's key: not tried again every frame.
      failed = `no ${name} blit target on ${gles.info.devicePath}: ${(e as Error).message}`;
    }
    const ring: Ring = { key, pair, slots: targets.map((target) => ({ target, buffer: null, state: 'pending', busy: false })), failed };
    this.#ring = ring;
    try {
      for (const slot of ring.slots) this.#share(ring, slot, name);
    } catch (e) {
      ring.failed = `the ${name} blit target could not be shared with the desktop compositor: ${(e as Error).message}`;
    }
    return ring;
  }

  /** Makes the target's dma-buf a wl_buffer of the desktop (asynchronous create: a refusal is an event, not a protocol error). */
  #share(ring: Ring, slot: Slot, name: string): void {
    const { target } = slot;
    const fd = target.exportDmabuf();
    try {
      const layout = { width: target.width, height: target.height, format: ring.pair.format, modifier: ring.pair.modifier, planes: [{ offset: target.offset, stride: target.stride }] };
      importDmabuf(this.#desktop.globals.dmabuf!, fd, layout, {
        created: (buffer) => {
          if (this.#ring !== ring) {
            buffer.destroy(); // replaced while the import was on its way
            return;
          }
          slot.buffer = buffer;
          slot.state = 'ready';
          buffer.on({ release: () => (slot.busy = false) });
          this.#onReady();
        },
        failed: () => {
          slot.state = 'failed';
          if (this.#ring !== ring) return;
          ring.failed = `the desktop compositor refused our ${name} blit target (modifier 0x${ring.pair.modifier.toString(16)}) from ${this.#gles?.info.devicePath ?? '?'}`;
          this.#onReady();
        },
      });
    } finally {
      libc.close(fd, `blit target ${name} dma-buf`);
    }
  }

  #imageFor(gles: GlesCompositor, source: GuestSource, sourceId: number, p: GuestPlaneInfo): GlesImage | string {
    if (this.#generations.get(sourceId) !== p.generation) {
      this.invalidate(sourceId); // a mode change: the old buffers will not come back
      this.#generations.set(sourceId, p.generation);
    }
    const key = `${sourceId}/${p.bufferId}/${p.generation}`;
    let e = this.#images.get(key);
    if (!e) {
      this.#evict();
      e = { sourceId, image: null, error: null };
      const fd = source.exportDmabuf(p);
      try {
        e.image = gles.importDmabuf({ fd, format: p.format, modifier: p.modifier, width: p.width, height: p.height, stride: p.stride, offset: p.offset });
      } catch (err) {
        e.error = `GLES cannot read guest buffer ${p.bufferId}: ${(err as Error).message}`;
      } finally {
        libc.close(fd, `${source.name} buffer ${p.bufferId} dma-buf`);
      }
      this.#images.set(key, e);
    }
    return e.image ?? e.error!;
  }

  #evict(): void {
    for (const [key, e] of this.#images) {
      if (this.#images.size < IMAGE_LIMIT) return;
      this.#images.delete(key);
      e.image?.close();
    }
  }

  #dropRing(): void {
    const r = this.#ring;
    if (!r) return;
    this.#ring = null;
    for (const s of r.slots) if (s.buffer && !s.buffer.destroyed) s.buffer.destroy();
    for (const s of r.slots) s.target.close();
  }

  /** Drops the images of `sourceId`'s buffers (QEMU released them, or the source went). */
  invalidate(sourceId: number): void {
    for (const [key, e] of [...this.#images]) {
      if (e.sourceId !== sourceId) continue;
      this.#images.delete(key);
      e.image?.close();
    }
    this.#generations.delete(sourceId);
  }

  /** Live GL objects (for leak checks): images, targets. */
  get counts(): { images: number; targets: number } {
    return this.#gles?.counts ?? { images: 0, targets: 0 };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#dropRing();
    for (const e of this.#images.values()) e.image?.close();
    this.#images.clear();
    this.#gles?.close();
    this.#gles = null;
  }
}
