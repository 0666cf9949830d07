// wl_region: a set of rectangles built by add and subtract in order. The compositor only
// asks whether a point is in it (a surface's input region: where the pointer and touch
// find the surface), so the requests are kept as they came and a point is tested against
// them newest first: the last rectangle holding it says added or subtracted.
import type { WlRegion } from '../../protocols/generated/wayland.js';
import type { Point } from './input-map.js';

interface RegionOp {
  add: boolean;
  x: number;
  y: number;
  width: number;
  height: number;
}

/**
 * The most rectangles one region may hold. Every pointer move tests the point against them,
 * so an unbounded list would let one client slow everyone's input; real clients send a
 * handful (Firefox a few per window, GTK one).
 */
export const MAX_REGION_RECTS = 1024;

/** An immutable copy of a region (what set_input_region keeps: the wl_region may go at once). */
export class RegionShape {
  constructor(private readonly ops: readonly RegionOp[]) {}

  contains(p: Point): boolean {
    for (let i = this.ops.length - 1; i >= 0; i--) {
      const o = this.ops[i]!;
      if (p.x >= o.x && p.y >= o.y && p.x < o.x + o.width && p.y < o.y + o.height) return o.add;
    }
    return false;
  }
}

export class Region {
  readonly #ops: RegionOp[] = [];

  constructor(readonly resource: WlRegion) {
    resource.data = this;
  }

  static of(resource: WlRegion): Region {
    const r = resource.data;
    if (!(r instanceof Region)) throw new Error(`${resource}: not a region of this compositor`);
    return r;
  }

  add(x: number, y: number, width: number, height: number): void {
    this.#push({ add: true, x, y, width, height });
  }

  subtract(x: number, y: number, width: number, height: number): void {
    this.#push({ add: false, x, y, width, height });
  }

  #push(op: RegionOp): void {
    // An empty rectangle changes nothing (the protocol allows it).
    if (op.width <= 0 || op.height <= 0) return;
    if (this.#ops.length >= MAX_REGION_RECTS) {
      this.resource.client.postImplementationError(`${this.resource}: more than ${MAX_REGION_RECTS} rectangles in one wl_region; build the region from fewer, larger rectangles`);
      return;
    }
    this.#ops.push(op);
  }

  /** The region as it is now. */
  snapshot(): RegionShape {
    return new RegionShape([...this.#ops]);
  }
}
