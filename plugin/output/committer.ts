// Step 3 of a frame: the committer puts a plan on screen. One atomic request carries only
// the plane properties that changed since the last successful commit; one commit is in
// flight per CRTC, and its page-flip event (its cookie) moves the plan from in flight to
// on screen. A commit the kernel refuses although TEST_ONLY agreed makes the allocator
// distrust the guest buffers it placed, and the same frame is planned again and
// committed at once. Commit failures that are not about the frame stop presentation:
// the device is gone (for good), or DRM master is lost (until it comes back: then a full
// modeset re-lights the output).
//
// Ownership: the committer records which planes this output lit (the device's plane
// claims, claims.ts); the mode blob is the output's.
import * as drm from '../../ffi/drm.js';
import { COMMIT, type AtomicRequest } from '../kms/atomic.js';
import type { KmsConnector, KmsCrtc, KmsDevice, KmsPlane } from '../kms/device.js';
import { NORMAL, TRANSFORM_NAMES, planeRotationFor, type Transform } from '../transform.js';
import type { Composer } from '../compose/composer.js';
import type { PlaneAllocator } from '../planes/allocator.js';
import { claimsOf } from './claims.js';
import type { Captures } from './capture.js';
import { nextCookie, type FramePlan, type PlaneState } from './types.js';

/** rotationValue per plane and transform: it runs for every plane of every commit. */
const rotationValues = new WeakMap<KmsPlane, Map<Transform, number>>();

/** The rotation property's bitmask (bits = 1 << enum value) that shows a buffer stored with `t` upright. */
function rotationValue(pl: KmsPlane, t: Transform): number {
  let m = rotationValues.get(pl);
  if (!m) rotationValues.set(pl, (m = new Map()));
  let v = m.get(t);
  if (v === undefined) {
    const names = planeRotationFor(t, pl.rotations);
    // The allocator only gives a plane a layer whose transform it can undo.
    if (!names) throw new Error(`plane ${pl.id} cannot undo transform ${TRANSFORM_NAMES[t]} (rotations: ${pl.rotations.join(', ')})`);
    v = names.reduce((acc, n) => acc | (1 << Number(pl.props.enumValue('rotation', n))), 0);
    m.set(t, v);
  }
  return v;
}

/** Sets `name` unless the committed state (`old`; undefined = nothing committed) has it already. */
function put(req: AtomicRequest, pl: KmsPlane, name: string, v: number, old: number | undefined): void {
  if (old !== v) req.set(pl, name, v);
}

export interface CommitterDeps {
  readonly dev: KmsDevice;
  readonly crtc: KmsCrtc;
  readonly connector: KmsConnector;
  readonly primary: KmsPlane;
  /** The output: the owner recorded for the planes it lights. */
  readonly owner: object;
  readonly captures: Captures;
  readonly allocator: Pick<PlaneAllocator, 'commitFailed'>;
  readonly composer: Pick<Composer, 'abandon'>;
  report(cause: string, message: string): void;
  /** The same frame planned again after a refused commit (plan(force)). */
  replan(): FramePlan | null;
  isClosed(): boolean;
  /** The mode blob of the output's mode. */
  modeBlob(): number;
  /** Master came back and the output is lit again: show the current frame. */
  relit(): void;
}

export class Committer {
  /**
   * What the last successful commit set on each plane this output has lit. Changed only
   * here (the memo of fbsOnScreen counts on it): read it, don't write it.
   */
  readonly committed = new Map<number, PlaneState>();
  inflight: { cookie: bigint; content: FramePlan } | null = null;
  onScreen: FramePlan | null = null;
  /** Set when the DRM device went away: nothing more is committed. */
  deviceGone = false;
  /** Polls for DRM master to come back while another process holds it. */
  masterWait: NodeJS.Timeout | null = null;
  #paused = false;
  /** The last real commit, for diagnostics and tests. */
  lastRequest: AtomicRequest | null = null;

  constructor(private readonly d: CommitterDeps) {}

  /** The first modeset: the CRTC on with the mode, the primary showing `plan` (the "no signal" frame). */
  light(plan: FramePlan): void {
    const { dev, connector, crtc, primary } = this.d;
    const req = dev.request().set(connector, 'CRTC_ID', crtc.id).set(crtc, 'MODE_ID', this.d.modeBlob()).set(crtc, 'ACTIVE', 1);
    this.applyPlanes(req, plan.planes, true);
    req.commit(COMMIT.ALLOW_MODESET);
    this.committedVersion++;
    this.committed.clear();
    this.committed.set(primary.id, plan.planes.get(primary.id)!);
    this.onScreen = plan;
  }

  /** Bumped whenever `committed` changes (fbsOnScreen's memo). */
  private committedVersion = 0;
  private fbsMemo: { version: number; onScreen: FramePlan | null; ids: ReadonlySet<number> } | null = null;

  /**
   * FBs the kernel may be showing: committed, or in the plan on screen. Asked two or three
   * times per frame, it changes only with a commit or a flip: remembered until then.
   */
  fbsOnScreen(): ReadonlySet<number> {
    const m = this.fbsMemo;
    if (m && m.version === this.committedVersion && m.onScreen === this.onScreen) return m.ids;
    const ids = new Set<number>();
    for (const st of this.committed.values()) ids.add(st.fbId);
    for (const st of this.onScreen?.planes.values() ?? []) if (st) ids.add(st.fbId);
    this.fbsMemo = { version: this.committedVersion, onScreen: this.onScreen, ids };
    return ids;
  }

  /** The output is closed: nothing of it is committed any more. */
  forget(): void {
    this.committed.clear();
    this.committedVersion++;
  }

  /** The planes other than the primary that this output lit. */
  otherPlanes(): KmsPlane[] {
    return [...this.committed.keys()].filter((id) => id !== this.d.primary.id).map((id) => this.planeById(id));
  }

  private readonly planes = new Map<number, KmsPlane>();

  private planeById(id: number): KmsPlane {
    let p = this.planes.get(id);
    if (p) return p;
    p = this.d.dev.planes.find((x) => x.id === id);
    if (!p) throw new Error(`${this.d.dev.path}: no plane ${id}`);
    this.planes.set(id, p);
    return p;
  }

  /** TEST_ONLY of the committed state changed to `planes` (the allocator's callback). */
  test(planes: ReadonlyMap<number, PlaneState | null>): Error | null {
    const req = this.d.dev.request();
    try {
      this.applyPlanes(req, planes, false);
      return req.test(COMMIT.NONBLOCK);
    } finally {
      req.dispose();
    }
  }

  /** Sets on `req` what differs between the committed planes and `want` (everything if `full`). */
  private applyPlanes(req: AtomicRequest, want: ReadonlyMap<number, PlaneState | null>, full: boolean): void {
    // Committed planes first, then the new ones: the order of the request's properties.
    for (const [id, st] of this.committed) this.applyPlane(req, id, want.has(id) ? want.get(id)! : st, full);
    for (const [id, w] of want) if (!this.committed.has(id)) this.applyPlane(req, id, w, full);
  }

  private applyPlane(req: AtomicRequest, id: number, w: PlaneState | null, full: boolean): void {
    const have = full ? null : (this.committed.get(id) ?? null);
    const pl = this.planeById(id);
    if (!w) {
      if (have || full) req.set(pl, 'FB_ID', 0).set(pl, 'CRTC_ID', 0);
      return;
    }
    put(req, pl, 'FB_ID', w.fbId, have?.fbId);
    // A steady frame (planner.reuse) keeps the committed state's rectangles themselves:
    // only the FB differs, and nothing else needs comparing.
    if (have && have.src === w.src && have.dst === w.dst && have.zpos === w.zpos && have.transform === w.transform && have.hotX === w.hotX && have.hotY === w.hotY) return;
    if (!have) req.set(pl, 'CRTC_ID', this.d.crtc.id);
    const hs = have?.src;
    put(req, pl, 'SRC_X', w.src.x * 65536, hs ? hs.x * 65536 : undefined);
    put(req, pl, 'SRC_Y', w.src.y * 65536, hs ? hs.y * 65536 : undefined);
    put(req, pl, 'SRC_W', w.src.width * 65536, hs ? hs.width * 65536 : undefined);
    put(req, pl, 'SRC_H', w.src.height * 65536, hs ? hs.height * 65536 : undefined);
    put(req, pl, 'CRTC_X', w.dst.x, have?.dst.x);
    put(req, pl, 'CRTC_Y', w.dst.y, have?.dst.y);
    put(req, pl, 'CRTC_W', w.dst.width, have?.dst.width);
    put(req, pl, 'CRTC_H', w.dst.height, have?.dst.height);
    if (w.zpos !== undefined && pl.props.has('zpos') && !pl.zpos?.immutable) put(req, pl, 'zpos', w.zpos, have?.zpos);
    // Always written where the plane has it: whoever used the plane before may have
    // left it rotated, and a reflected layer's plane goes back to rotate-0 after it.
    if (pl.props.has('rotation')) put(req, pl, 'rotation', rotationValue(pl, w.transform ?? NORMAL), have ? rotationValue(pl, have.transform ?? NORMAL) : undefined);
    if (w.hotX !== undefined && pl.props.has('HOTSPOT_X')) put(req, pl, 'HOTSPOT_X', w.hotX, have?.hotX);
    if (w.hotY !== undefined && pl.props.has('HOTSPOT_Y')) put(req, pl, 'HOTSPOT_Y', w.hotY, have?.hotY);
  }

  /** One non-blocking commit of `c` with a page-flip event carrying `cookie`. */
  private attempt(c: FramePlan, cookie: bigint): void {
    const req = this.d.dev.request();
    this.applyPlanes(req, c.planes, false);
    // A capture of an unchanged screen still needs the CRTC in the commit.
    if (req.size === 0) req.set(this.d.primary, 'FB_ID', this.committed.get(this.d.primary.id)?.fbId ?? c.fbId);
    const flags = COMMIT.NONBLOCK | COMMIT.PAGE_FLIP_EVENT | this.d.captures.arm(req);
    try {
      req.commit(flags, cookie);
      this.d.captures.committed(true);
    } catch (e) {
      this.d.captures.committed(false);
      throw e;
    }
    this.lastRequest = req;
    this.adopt(c.planes);
  }

  /** Commits a plan (throws what the kernel said when it cannot); it is in flight until its flip event. */
  commit(content: FramePlan): void {
    const cookie = nextCookie();
    try {
      this.attempt(content, cookie);
    } catch (e) {
      if (content.composed) this.d.composer.abandon(content.composed);
      const placedGuest = content.alloc?.uses.some((u) => u.layer !== null && !content.allocLayers?.find((l) => l.id === u.layer)?.hostBuffer);
      // Lost master or a vanished device say nothing about the buffers: don't distrust them.
      if (!content.alloc || !placedGuest || this.d.dev.commitFailure(e)) throw e;
      // The kernel refused the real commit although TEST_ONLY (or memory) said yes: the
      // allocator distrusts the guest buffers it placed, and this very frame is planned
      // again (those layers composed) and committed now.
      const reason = `the kernel refused the commit: ${(e as Error).message}`;
      this.d.report('scanout-commit-refused', reason);
      this.d.allocator.commitFailed(content.alloc, content.allocLayers ?? [], e as Error);
      const again = this.d.replan();
      if (!again) throw e;
      content = again;
      try {
        this.attempt(content, cookie);
      } catch (e2) {
        if (content.composed) this.d.composer.abandon(content.composed);
        throw e2;
      }
    }
    this.inflight = { cookie, content };
  }

  /** A page-flip event: the plan in flight with this cookie is on screen now (returned), else null. */
  flipped(cookie: bigint): FramePlan | null {
    const f = this.inflight;
    if (!f || cookie !== f.cookie) return null;
    this.inflight = null;
    this.onScreen = f.content;
    return f.content;
  }

  /** Commit failures that are not about the frame (device gone, master lost); true if handled. */
  fault(e: unknown): boolean {
    const { dev } = this.d;
    const kind = dev.commitFailure(e);
    if (kind === 'device-gone') {
      this.deviceGone = true;
      this.d.report('device-lost', `${dev.path} is gone (${(e as Error).message}); close this output, and open the device again once it is back`);
    } else if (kind === 'not-master' && !this.#paused) {
      this.d.report('master-lost', `${dev.path}: another process is DRM master (a VT switch, another compositor), so frames cannot be shown (${(e as Error).message}); the guest is shown again as soon as master comes back`);
      this.masterWait ??= setInterval(() => this.masterBack(), 50);
    }
    return kind !== null;
  }

  /**
   * Master is ours again. The other master may have changed anything (switched the CRTC
   * off, unrouted connectors), so re-light with a full modeset of what we last committed,
   * then show the guest's current frame.
   */
  private masterBack(): void {
    if (!this.d.isClosed() && !this.deviceGone && !drm.isMaster(this.d.dev.fd)) return;
    this.stopWaiting();
    this.relight();
  }

  /**
   * The seat's session went away (seatd/logind dropped master): nothing is committed, not
   * even TEST_ONLY, until resume(). No polling: the seat says when master is back.
   */
  pause(): void {
    this.#paused = true;
    this.stopWaiting();
  }

  /** The seat session is away (pause()): no commits until resume(). */
  get paused(): boolean {
    return this.#paused;
  }

  /**
   * The session is back and master with it: light the screen again at once (`relight`
   * false: the output was never lit, so there is nothing to light; commits may go on).
   */
  resume(relight = true): void {
    if (!this.#paused) return;
    this.#paused = false;
    if (relight) this.relight();
  }

  private relight(): void {
    const { dev, connector, crtc } = this.d;
    if (this.d.isClosed() || this.deviceGone) return;
    const req = dev.request().set(connector, 'CRTC_ID', crtc.id).set(crtc, 'MODE_ID', this.d.modeBlob()).set(crtc, 'ACTIVE', 1);
    this.applyPlanes(req, new Map(), true);
    this.d.captures.unroute();
    try {
      req.commit(COMMIT.ALLOW_MODESET);
    } catch (e) {
      if (!this.fault(e)) this.d.report('relight-failed', `could not light ${connector.name} again after regaining DRM master: ${(e as Error).message}`);
      return;
    }
    this.d.relit();
  }

  /** Stops polling for DRM master. */
  stopWaiting(): void {
    if (this.masterWait) clearInterval(this.masterWait);
    this.masterWait = null;
  }

  /** After a successful commit: remember what the planes show; take and give back planes. */
  private adopt(planes: ReadonlyMap<number, PlaneState | null>): void {
    const owner = claimsOf(this.d.dev).planeOwner;
    this.committedVersion++;
    for (const [id, st] of planes) {
      if (st) {
        this.committed.set(id, st);
        owner.set(id, this.d.owner);
      } else {
        this.committed.delete(id);
        if (id !== this.d.primary.id && owner.get(id) === this.d.owner) owner.delete(id);
      }
    }
  }
}
