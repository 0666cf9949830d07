// Guest dma-bufs as wl_buffers of the desktop compositor: each guest buffer is imported
// once (zwp_linux_buffer_params_v1.create, the asynchronous form: a failed import is a
// `failed` event we can fall back from, where create_immed may cost the whole connection
// a protocol error) and kept in a cache keyed by (source, bufferId, generation), as the
// KMS FB cache does. A guest flip then only attaches an existing wl_buffer.
//
// Ownership: the dma-buf fd from source.exportDmabuf() is closed right after the `add`
// request is marshalled (libwayland sends its own duplicate); the params object is
// dmabuf-import.ts's, destroyed once `created` or `failed` arrived. Each wl_buffer is the cache's until it is
// evicted (bounded: `limit` entries, the least recently attached idle one goes first),
// replaced (a plane of a newer generation of its source came: QEMU re-created its buffers
// on a mode change, the old ones will never be shown again), its source emits
// `buffers-gone` (invalidate), or close(); a buffer
// the compositor still holds (attached, no `release` yet) is destroyed all the same —
// the protocol allows it, the compositor keeps its own reference to the dma-buf.
// A (source, buffer) whose import failed is remembered (negative cache) and not retried.
import * as libc from '../../ffi/libc.js';
import type { ZwpLinuxDmabufV1 } from '../../protocols/generated/client/linux_dmabuf_unstable_v1.js';
import type { WlBuffer } from '../../protocols/generated/client/wayland.js';
import type { GuestPlaneInfo, GuestSource } from '../sources/source.js';
import { importDmabuf } from './dmabuf-import.js';

interface Entry {
  key: string;
  sourceId: number;
  bufferId: number;
  buffer: WlBuffer | null;
  state: 'pending' | 'ready' | 'failed';
  /** Attached and not yet released by the compositor. */
  busy: boolean;
  lastUsed: number;
}

export type Lookup =
  | { kind: 'ready'; buffer: WlBuffer }
  /** The import is on its way: ask again when `onReady` ran. */
  | { kind: 'pending' }
  | { kind: 'failed'; reason: string };

export class WindowBuffers {
  readonly #dmabuf: ZwpLinuxDmabufV1;
  readonly #entries = new Map<string, Entry>();
  readonly #limit: number;
  readonly #onReady: () => void;
  /** The newest generation seen per source: older ones are replaced buffers. */
  readonly #generations = new Map<number, number>();
  #clock = 0;
  imports = 0;
  hits = 0;

  /** `onReady` runs when a pending import finished (either way): the caller retries its frame. */
  constructor(dmabuf: ZwpLinuxDmabufV1, onReady: () => void, limit = 8) {
    this.#dmabuf = dmabuf;
    this.#onReady = onReady;
    this.#limit = limit;
  }

  /** `modifier`: the one to declare to the compositor (Desktop.modifierFor: the plane's, or MOD_INVALID for implicit). */
  get(source: GuestSource, sourceId: number, plane: GuestPlaneInfo, modifier: bigint): Lookup {
    const key = `${sourceId}/${plane.bufferId}/${plane.generation}`;
    if (this.#generations.get(sourceId) !== plane.generation) {
      // A mode change: without this the old size's wl_buffers would linger until evicted.
      this.invalidate(sourceId, plane.generation);
      this.#generations.set(sourceId, plane.generation);
    }
    const e = this.#entries.get(key);
    if (e) {
      e.lastUsed = ++this.#clock;
      if (e.state === 'ready' && e.buffer) {
        this.hits++;
        return { kind: 'ready', buffer: e.buffer };
      }
      return e.state === 'pending' ? { kind: 'pending' } : { kind: 'failed', reason: 'the compositor refused this dma-buf before' };
    }
    this.#evict();
    return this.#import(source, sourceId, plane, key, modifier);
  }

  #import(source: GuestSource, sourceId: number, plane: GuestPlaneInfo, key: string, mod: bigint): Lookup {
    const entry: Entry = { key, sourceId, bufferId: plane.bufferId, buffer: null, state: 'pending', busy: false, lastUsed: ++this.#clock };
    this.#entries.set(key, entry);
    const fd = source.exportDmabuf(plane);
    try {
      // A multi-plane format's planes are all in this one dma-buf: the same fd for each.
      // The picture's orientation (GuestPlaneInfo.transform) goes to wl_surface.set_buffer_transform, not here.
      const planes = [{ offset: plane.offset, stride: plane.stride }, ...(plane.planes ?? [])];
      importDmabuf(this.#dmabuf, fd, { width: plane.width, height: plane.height, format: plane.format, modifier: mod, planes }, {
        created: (buffer) => {
          this.imports++;
          if (this.#entries.get(key) !== entry) {
            buffer.destroy(); // invalidated while the import was on its way
            return;
          }
          entry.buffer = buffer;
          entry.state = 'ready';
          buffer.on({ release: () => (entry.busy = false) });
          this.#onReady();
        },
        failed: () => {
          entry.state = 'failed';
          this.#onReady();
        },
      });
    } finally {
      libc.close(fd, `${source.name} buffer ${plane.bufferId} dma-buf`);
    }
    return { kind: 'pending' };
  }

  /** The buffer was attached and committed: the compositor holds it until `release`. */
  attached(buffer: WlBuffer): void {
    for (const e of this.#entries.values()) if (e.buffer === buffer) e.busy = true;
  }

  /** Guest buffer ids of `sourceId` the compositor still holds (the test guest renders elsewhere). */
  inUse(sourceId: number): Set<number> {
    const out = new Set<number>();
    for (const e of this.#entries.values()) if (e.sourceId === sourceId && e.busy) out.add(e.bufferId);
    return out;
  }

  get size(): number {
    return this.#entries.size;
  }

  #evict(): void {
    while (this.#entries.size >= this.#limit) {
      let victim: Entry | null = null;
      for (const e of this.#entries.values()) {
        if (e.state === 'pending' || e.busy) continue;
        if (!victim || e.lastUsed < victim.lastUsed) victim = e;
      }
      if (!victim) return; // everything is in flight: grow past the limit rather than stall
      this.#drop(victim);
    }
  }

  #drop(e: Entry): void {
    this.#entries.delete(e.key);
    if (e.buffer && !e.buffer.destroyed) e.buffer.destroy();
  }

  /** Forgets every buffer of `sourceId` (buffers-gone, detach), or those of older generations. */
  invalidate(sourceId: number, keepGeneration?: number): void {
    for (const e of [...this.#entries.values()]) {
      if (e.sourceId !== sourceId) continue;
      if (keepGeneration !== undefined && e.key.endsWith(`/${keepGeneration}`)) continue;
      this.#drop(e);
    }
    if (keepGeneration === undefined) this.#generations.delete(sourceId);
  }

  close(): void {
    for (const e of [...this.#entries.values()]) this.#drop(e);
  }
}
