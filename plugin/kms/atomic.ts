// Atomic request builder: properties by name, committed as one request.
// Ownership: the libdrm request is freed by commit()/test()/dispose(), whichever ends it.
import * as drm from '../../ffi/drm.js';
import type { PropertySet } from './properties.js';

export const COMMIT = {
  TEST_ONLY: drm.DRM_MODE_ATOMIC_TEST_ONLY,
  NONBLOCK: drm.DRM_MODE_ATOMIC_NONBLOCK,
  ALLOW_MODESET: drm.DRM_MODE_ATOMIC_ALLOW_MODESET,
  PAGE_FLIP_EVENT: drm.DRM_MODE_PAGE_FLIP_EVENT,
  PAGE_FLIP_ASYNC: drm.DRM_MODE_PAGE_FLIP_ASYNC,
} as const;

export interface AtomicObject {
  readonly id: number;
  readonly props: PropertySet;
}

/** Counts commits per kind for stats and tests ("no TEST_ONLY in the steady state"). */
export interface CommitCounters {
  commits: number;
  testOnly: number;
  failed: number;
}

export class AtomicRequest {
  private req: drm.AtomicReqPtr | null = drm.atomicAlloc();
  // Kept raw, formatted only when asked (describe): most requests are never described.
  private readonly entries: (AtomicObject | string | bigint | number)[] = [];

  constructor(
    private readonly fd: number,
    private readonly counters?: CommitCounters,
  ) {}

  /** Sets `name` on `obj`. Unknown names throw, listing the object's properties. */
  set(obj: AtomicObject, name: string, value: bigint | number): this {
    if (!this.req) throw new Error('atomic request already committed');
    drm.atomicAddProperty(this.req, obj.id, obj.props.id(name), value);
    this.entries.push(obj, name, value);
    return this;
  }

  /** Sets `name` only if the object has it (optional properties such as HOTSPOT_X). */
  setIfPresent(obj: AtomicObject, name: string, value: bigint | number): this {
    if (obj.props.has(name)) this.set(obj, name, value);
    return this;
  }

  get size(): number {
    return this.entries.length / 3;
  }

  /** The properties set, one "kind id.NAME=value" string each. */
  entryList(): string[] {
    const out: string[] = [];
    for (let i = 0; i < this.entries.length; i += 3) {
      const o = this.entries[i] as AtomicObject;
      out.push(`${o.props.objectKind} ${o.id}.${String(this.entries[i + 1])}=${String(this.entries[i + 2])}`);
    }
    return out;
  }

  describe(): string {
    return this.entryList().join(' ');
  }

  /** Checks the request with TEST_ONLY. Returns null when accepted, else the error. */
  test(flags = 0): Error | null {
    try {
      this.submit(flags | COMMIT.TEST_ONLY, 0n, false);
      return null;
    } catch (e) {
      return e instanceof Error ? e : new Error(String(e));
    }
  }

  /** Commits; with NONBLOCK|PAGE_FLIP_EVENT, `userData` returns in the flip event. */
  commit(flags: number, userData = 0n): void {
    this.submit(flags, userData, true);
  }

  private submit(flags: number, userData: bigint, free: boolean): void {
    if (!this.req) throw new Error('atomic request already committed');
    const test = (flags & COMMIT.TEST_ONLY) !== 0;
    try {
      if (this.counters) {
        if (test) this.counters.testOnly++;
        else this.counters.commits++;
      }
      drm.atomicCommit(this.fd, this.req, flags, userData);
    } catch (e) {
      if (this.counters && !test) this.counters.failed++;
      throw e;
    } finally {
      if (free) this.dispose();
    }
  }

  dispose(): void {
    if (this.req) drm.atomicFree(this.req);
    this.req = null;
  }
}
