// Captures of presented frames through the writeback connector (tests, the demo, the
// kiosk's SIGUSR1). A capture job rides on the next commit (the committer asks arm());
// when that frame is on screen, finish() waits for the written frame and pauses
// presentation meanwhile.
import { COMMIT, type AtomicRequest } from '../kms/atomic.js';
import type { KmsCrtc, KmsDevice } from '../kms/device.js';
import { WritebackCapture, type Capture } from '../kms/writeback.js';
import type { FramePlan } from './types.js';

export type CaptureResult = Capture & { content: FramePlan | null };

export class Captures {
  private writeback: WritebackCapture | null = null;
  /** The writeback connector is routed to the CRTC (the first capture's commit is a modeset). */
  private routed = false;
  private waiters: { resolve: (c: CaptureResult) => void; reject: (e: Error) => void }[] = [];
  /** A captured frame is being written: no new frame until it is (see finish()). */
  hold = false;

  constructor(
    private readonly dev: KmsDevice,
    private readonly crtc: KmsCrtc,
    private readonly width: number,
    private readonly height: number,
    /** Called when a finished capture lets presentation go on. */
    private readonly resume: () => void,
  ) {}

  /** The next presented frame; the caller makes sure a frame is committed. */
  next(): Promise<CaptureResult> {
    if (!this.writeback) this.writeback = new WritebackCapture(this.dev, this.crtc);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Someone waits for a frame. */
  get waiting(): boolean {
    return this.waiters.length > 0;
  }

  get armed(): boolean {
    return !!this.writeback?.isArmed;
  }

  /** Adds the capture job to a commit if one is wanted; returns the commit flags it needs. */
  arm(req: AtomicRequest): number {
    if (!this.writeback || this.waiters.length === 0 || this.writeback.isArmed) return 0;
    this.writeback.attach(req, this.crtc, this.width, this.height);
    // Routing the writeback connector to the CRTC the first time is a modeset.
    return this.routed ? 0 : COMMIT.ALLOW_MODESET;
  }

  /** The commit carrying arm()'s job went through (true) or failed (false). */
  committed(ok: boolean): void {
    if (!ok) this.writeback?.disarm();
    else if (this.writeback?.isArmed) this.routed = true;
  }

  /** After a modeset that did not route it (master regained): the next capture routes again. */
  unroute(): void {
    this.routed = false;
  }

  /** The writeback connector while it is routed to the CRTC (restore unroutes it). */
  get routedConnector() {
    return this.routed ? this.writeback?.connector : undefined;
  }

  /** The armed frame is on screen: hand its capture to everyone waiting. */
  async finish(content: FramePlan): Promise<void> {
    const waiters = this.waiters.splice(0);
    // vkms composes a writeback frame in a worker that reads the CRTC's *current* state: a
    // commit landing before that worker ran (a guest flipping every vblank while a frame
    // takes ~110 ms to compose under TCG) loses the job and its fence never signals
    // (measured: 0 of 3 captures at 60 guest fps, 3 of 3 at 20). So presentation pauses
    // until the captured frame is written; captures are a diagnostic, not a video path.
    this.hold = true;
    try {
      const cap = await this.writeback!.wait(10_000); // a composed frame costs ~0.1 s under TCG, far more on a loaded host
      for (const w of waiters) w.resolve({ ...cap, content });
    } catch (e) {
      for (const w of waiters) w.reject(e as Error);
    } finally {
      this.hold = false;
      this.resume();
    }
  }

  /** Fails every waiting capture. */
  rejectAll(e: Error): void {
    for (const w of this.waiters.splice(0)) w.reject(e);
  }

  close(): void {
    this.writeback?.close();
  }
}
