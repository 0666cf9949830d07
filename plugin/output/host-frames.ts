// The host's side of a frame: the newest present() call's layers, one buffer adapter per
// host layer (so the FB cache and the CPU maps treat host buffers as guest buffers), the
// guest sources shown as host layers, and which host buffers the output still holds (on
// screen, in flight, or in the newest frame) until it emits 'release' for them.
import type { FramebufferCache } from '../buffers/fb-cache.js';
import type { DmabufMaps } from '../compose/dmabuf-map.js';
import type { GuestSource } from '../sources/source.js';
import { forgetBuffer, forgetSource } from './imports.js';
import { checkHostLayers, isHostBuffer, HostLayerSource, type CheckedLayer, type HostBufferRelease, type HostLayer } from '../planes/host-layers.js';
import type { FramePlan } from './types.js';

export interface HostFrame {
  id: number;
  layers: CheckedLayer[];
}

export interface HostFramesDeps {
  cache: FramebufferCache;
  maps: DmabufMaps;
  /** Listener for 'changed' of the guest sources shown as layers. */
  onChanged: () => void;
  release: (r: HostBufferRelease) => void;
  /** FBs the kernel may be showing (Committer.fbsOnScreen). */
  fbsOnScreen: () => ReadonlySet<number>;
}

export class HostFrames {
  /** The newest present() frame (shown, in flight or waiting for the next refresh). */
  newest: HostFrame | null = null;
  private nextFrameId = 1;
  /** One buffer adapter per host layer id (the FB cache keys and evicts per source). */
  private readonly sources = new Map<string, HostLayerSource>();
  /** Guest sources shown as host layers, listened to for 'changed'. */
  readonly layerSources = new Set<GuestSource>();
  /**
   * Their 'buffers-gone' and 'buffer-gone' listeners: the imports of a producer that went
   * away, or of one buffer it destroyed, are dropped at once.
   */
  private readonly goneListeners = new Map<GuestSource, { all: () => void; one: (bufferId: number) => void }>();
  /** Host buffer ids the output holds (on screen, in flight, or in the newest frame). */
  private held = new Set<number>();
  /**
   * Per host buffer, bumped when it is presented again after its release: only then may
   * its pixels have changed (the caller owns them again), so only then is a composition of
   * it stale.
   */
  private readonly contentSerial = new Map<number, number>();

  constructor(private readonly deps: HostFramesDeps) {}

  /** Takes a new frame (see Output.present); `shown` are the plans on screen and in flight. */
  present(layers: readonly HostLayer[], shown: readonly (FramePlan | null | undefined)[]): number {
    const checked = checkHostLayers(layers);
    const id = this.nextFrameId++;
    for (const l of checked) {
      if (!isHostBuffer(l.buffer)) continue;
      const b = l.buffer.bufferId;
      if (!this.held.has(b)) this.contentSerial.set(b, (this.contentSerial.get(b) ?? 0) + 1);
      this.sourceFor(l.id).update(l.buffer);
    }
    this.newest = { id, layers: checked };
    this.watchLayerSources();
    // The frame it supersedes may never reach the screen: its buffers go back now.
    this.updateHeld(id, shown);
    return id;
  }

  sourceFor(layerId: string): HostLayerSource {
    let s = this.sources.get(layerId);
    if (!s) {
      s = new HostLayerSource(layerId);
      this.sources.set(layerId, s);
    }
    return s;
  }

  /** How many times a host buffer came back after a release (its content version). */
  serialOf(bufferId: number): number {
    return this.contentSerial.get(bufferId) ?? 0;
  }

  /** A frame reached the screen: let go of what no frame holds any more. */
  shown(frameId: number, shown: readonly (FramePlan | null | undefined)[]): void {
    if (this.held.size > 0 || this.sources.size > 0) this.updateHeld(frameId, shown);
  }

  /** Listens to the guest sources of the newest frame, and only those. */
  private watchLayerSources(): void {
    const want = new Set<GuestSource>();
    for (const l of this.newest?.layers ?? []) if (!isHostBuffer(l.buffer)) want.add(l.buffer.source);
    for (const s of this.layerSources) if (!want.has(s)) this.unwatch(s);
    for (const s of want) {
      if (this.layerSources.has(s)) continue;
      s.on('changed', this.deps.onChanged);
      const gone = {
        all: () => forgetSource(this.deps, s),
        one: (bufferId: number) => forgetBuffer(this.deps, s, bufferId, this.deps.fbsOnScreen()),
      };
      this.goneListeners.set(s, gone);
      s.on('buffers-gone', gone.all);
      s.on('buffer-gone', gone.one);
    }
    this.layerSources.clear();
    for (const s of want) this.layerSources.add(s);
  }

  private unwatch(s: GuestSource): void {
    s.off('changed', this.deps.onChanged);
    const gone = this.goneListeners.get(s);
    if (gone) {
      s.off('buffers-gone', gone.all);
      s.off('buffer-gone', gone.one);
    }
    this.goneListeners.delete(s);
  }

  /**
   * Recomputes which host buffers are held and emits 'release' for those let go; drops the
   * buffer adapters (and their FBs) of layers that are on screen nowhere any more.
   */
  private updateHeld(frameId: number, frames: readonly (FramePlan | null | undefined)[]): void {
    const now = new Set<number>();
    for (const c of frames) for (const b of c?.hostBufferIds ?? []) now.add(b);
    for (const l of this.newest?.layers ?? []) if (isHostBuffer(l.buffer)) now.add(l.buffer.bufferId);
    const gone = [...this.held].filter((b) => !now.has(b));
    this.held = now;
    const liveLayers = new Set<string>(this.newest?.layers.map((l) => l.id));
    for (const c of frames) for (const id of c?.hostLayerIds ?? []) liveLayers.add(id);
    for (const [id, src] of this.sources) {
      if (liveLayers.has(id)) continue;
      this.sources.delete(id);
      forgetSource(this.deps, src);
      src.close();
    }
    for (const b of gone) {
      for (const src of this.sources.values()) src.forget(b);
      this.deps.release({ bufferId: b, frameId });
    }
  }

  /** Lets go of everything at once (no 'release' events after it). */
  close(): void {
    for (const s of this.layerSources) this.unwatch(s);
    this.layerSources.clear();
    for (const s of this.sources.values()) s.close();
    this.sources.clear();
    this.held.clear();
    this.newest = null;
  }
}
