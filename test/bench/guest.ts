// The benchmark's guest stream: a triple-buffered udmabuf guest flipping on its own 60 Hz
// timer, and a QEMU-style poller in front of it.
//
// The guest renders its buffers once, up front, and then only flips: rendering a pattern
// in JS costs more per frame than presenting it, and it is guest work, not host work; with
// it in the same process the host CPU per frame would measure the guest. The pixels stay
// valid (the copy path still reads every byte of every frame).
import { EventEmitter } from 'node:events';
import { UdmabufSource } from '../../plugin/sources/udmabuf.js';
import { animate, type Animation } from '../../plugin/sources/test-guest.js';
import type { GuestPlaneInfo, GuestPlaneKind, GuestSource, GuestSourceEvents, PlaneQuery } from '../../plugin/sources/source.js';

/**
 * The guest's frame rate: "60 Hz", detuned. A guest's vsync timer is never locked to the
 * host's vblank, and the latency of a flip depends on where in the host's refresh it lands.
 * At exactly the host's rate that phase would stay wherever the run happened to start, and
 * two rows of one table would compare two random phases. 59.75 Hz beats against vkms'
 * 60.004 Hz every ~4 s, so an 8 s window sweeps every phase about twice, for every row alike.
 */
export const GUEST_FPS = 59.75;

export class BenchGuest {
  readonly source: UdmabufSource;
  private anim: Animation | null = null;
  private next = 0;
  /** Guest frames flipped so far. */
  frames = 0;
  /** Added to the frame numbers the guest flips with (several guests: whose frame is it?). */
  frameBase = 0;
  /** Called after every guest flip (scale bench: count what the screen should show). */
  onFlip: (() => void) | null = null;
  /** Why the guest stopped flipping, if it did (the scenario reports it). */
  error: Error | null = null;

  constructor(width: number, height: number, buffers = 3) {
    this.source = new UdmabufSource({ width, height, buffers });
    for (let i = 0; i < buffers; i++) this.source.render(i, i + 1);
  }

  start(fps = GUEST_FPS): void {
    if (this.anim) return;
    this.anim = animate(
      () => {
        this.frames++;
        this.source.flip(this.next, this.frameBase + this.frames);
        this.next = (this.next + 1) % this.source.bufferCount;
        this.onFlip?.();
        return this.frames;
      },
      fps,
      (e) => {
        this.error = e;
      },
    );
  }

  stop(): void {
    this.anim?.stop();
    this.anim = null;
  }

  close(): void {
    this.stop();
    this.source.close();
  }
}

/**
 * What QEMU's display code does with a guest that cannot tell it about flips (VFIO gfx
 * planes): a UI timer (30 ms by default) queries the plane and shows what it finds. The
 * inner source's flips are invisible until the next tick; the plane keeps the guest's own
 * flip time, so latency is measured from the guest's flip, polling delay included.
 */
export class PolledSource extends EventEmitter<GuestSourceEvents> implements GuestSource {
  readonly name: string;
  readonly changeEvents = true;
  private latched: PlaneQuery = { state: 'not-ready', reason: 'not polled yet' };
  private timer: NodeJS.Timeout | null;
  polls = 0;

  constructor(
    private readonly inner: GuestSource,
    periodMs: number,
  ) {
    super();
    this.name = `${inner.name} polled every ${periodMs} ms`;
    this.timer = setInterval(() => {
      this.polls++;
      this.latched = inner.query('primary');
      this.emit('changed');
    }, periodMs);
  }

  query(kind: GuestPlaneKind): PlaneQuery {
    return kind === 'primary' ? this.latched : this.inner.query(kind);
  }

  exportDmabuf(plane: GuestPlaneInfo): number {
    return this.inner.exportDmabuf(plane);
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

/**
 * A guest that cannot say when it flips (VFIO/mbochs, GVT-g): no change events, so the
 * output asks it at every vblank, or at its late-latch deadline before the next one. The
 * plane keeps the guest's own flip time: latency is from the guest's flip.
 */
export class SilentSource extends EventEmitter<GuestSourceEvents> implements GuestSource {
  readonly name: string;
  readonly changeEvents = false;

  constructor(private readonly inner: GuestSource) {
    super();
    this.name = `${inner.name} (polled by the output)`;
  }

  query(kind: GuestPlaneKind): PlaneQuery {
    return this.inner.query(kind);
  }

  exportDmabuf(plane: GuestPlaneInfo): number {
    return this.inner.exportDmabuf(plane);
  }

  close(): void {}
}
