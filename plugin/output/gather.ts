// Step 1 of a frame: gather what is to be shown. The attached guest source is asked for
// its primary and cursor planes, and the guest sources shown as host layers for theirs
// (each once per frame); together with the newest host frame that is the frame's
// description, keyed so that an unchanged screen costs nothing.
import type { GuestPlaneInfo, GuestSource, PlaneQuery } from '../sources/source.js';
import { isHostBuffer } from '../planes/host-layers.js';
import type { HostFrame } from './host-frames.js';

export interface GuestFrame {
  source: GuestSource;
  /** The FB cache's id of the source (part of every key). */
  sourceId: number;
  plane: GuestPlaneInfo;
  cursor: GuestPlaneInfo | null;
}

/** What is to be shown: the attached guest's planes and the host's layers. */
export interface FrameDescription {
  guest: GuestFrame | null;
  host: HostFrame | null;
  /** The primary plane of each guest source shown as a host layer, by layer id. */
  sourced: Map<string, PlaneQuery>;
  /** Equal keys, equal frames (unless `region`). */
  contentKey: string;
  /** Some plane is a region (CPU pixels): it can change under the same key. */
  region: boolean;
}

export type Gathered =
  /** Something to show; `lost` when the attached guest went away (the host's layers go on). */
  | { kind: 'frame'; frame: FrameDescription; lost?: Error }
  /** Nothing to show: the "no signal" frame. */
  | { kind: 'no-signal'; lost?: Error }
  /** The guest is not ready yet: keep what is on screen. */
  | { kind: 'not-ready' };

/** Asks the sources what they show now. `sourceId` is the FB cache's source numbering. */
export function gatherFrame(source: GuestSource | null, host: HostFrame | null, sourceId: (s: GuestSource) => number): Gathered {
  if (!source && !host) return { kind: 'no-signal' };
  let plane: GuestPlaneInfo | null = null;
  let lost: Error | undefined;
  if (source) {
    const q = source.query('primary');
    switch (q.state) {
      case 'lost':
        // A frozen last frame would look like a live guest; a monitor whose source went away
        // shows "no signal", and so do we (the source-lost event says why). With host
        // layers, the host's frame goes on without the guest.
        lost = q.error;
        if (!host) return { kind: 'no-signal', lost };
        break;
      case 'disabled':
        if (!host) return { kind: 'no-signal' };
        break;
      case 'not-ready':
        return { kind: 'not-ready' };
      case 'ok':
        plane = q.plane;
    }
  }
  let guest: GuestFrame | null = null;
  const keys: string[] = [];
  if (plane && source) {
    const cq = source.query('cursor');
    const cur = cq.state === 'ok' ? cq.plane : null;
    const sid = sourceId(source);
    guest = { source, sourceId: sid, plane, cursor: cur };
    const cursorKey = cur ? `${cur.bufferId}/${cur.generation}/${cur.frame ?? ''}/${cur.x},${cur.y}/${cur.hotX},${cur.hotY}` : '-';
    keys.push(`${sid}/${plane.bufferId}/${plane.generation}/${plane.frame ?? ''}/${plane.transport}|${cursorKey}`);
  }
  // Guest sources shown as host layers: asked once per frame, like the attached guest.
  const sourced = new Map<string, PlaneQuery>();
  let region = plane?.transport === 'region';
  if (host) {
    keys.push(`host:${host.id}`);
    for (const l of host.layers) {
      if (isHostBuffer(l.buffer)) continue;
      const q = l.buffer.source.query('primary');
      sourced.set(l.id, q);
      if (q.state !== 'ok') keys.push(`${l.id}:${q.state}`);
      else {
        keys.push(`${l.id}:${sourceId(l.buffer.source)}/${q.plane.bufferId}/${q.plane.generation}/${q.plane.frame ?? ''}`);
        region ||= q.plane.transport === 'region';
      }
    }
  }
  return { kind: 'frame', frame: { guest, host, sourced, contentKey: keys.join('|'), region }, lost };
}
