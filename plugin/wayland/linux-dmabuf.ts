// zwp_linux_dmabuf_v1 (up to version 4): client dma-bufs become wl_buffers, with the
// protocol's validation errors, and clients learn what to allocate through feedback:
// the default feedback carries the main-device tranche, a surface's feedback puts the
// scanout tranche of its output's planes first. Version 3 and older clients get the
// same pairs as format/modifier events.
//
// Import check: before a buffer is created the dma-buf is imported into the KMS device
// (PRIME fd → GEM handle, closed at once: the FB cache owns all handles it creates and
// holds none between calls, see fb-cache.ts), so a dma-buf the device cannot take fails
// at creation, where the protocol lets the client fall back, not at first display.
import type { Display, Global, NewId } from '../../protocols/runtime.js';
import { ProtocolViolation } from '../../protocols/runtime.js';
import {
  ZwpLinuxDmabufV1,
  ZwpLinuxBufferParamsV1Error as E,
  ZwpLinuxBufferParamsV1Flags,
  type ZwpLinuxBufferParamsV1,
  type ZwpLinuxDmabufFeedbackV1,
} from '../../protocols/generated/linux_dmabuf_unstable_v1.js';
import { WlBuffer, type WlSurface } from '../../protocols/generated/wayland.js';
import * as libc from '../../ffi/libc.js';
import { formatInfo, fourccName, DRM_FORMAT_MOD_INVALID } from '../../ffi/drm.js';
import { bindBuffer, newBufferId, type DmabufBuffer, type DmabufPlane } from './buffer.js';
import { devTBytes, indicesBytes, FormatTable, type Feedback, type FormatModifier, type TrancheSpec } from './dmabuf-feedback.js';
import { Surface } from './surface.js';

export interface LinuxDmabufOptions {
  /** dev_t of the main device (the KMS device buffers are imported into). */
  mainDevice: bigint;
  /** Tranches of the default feedback, most preferred first; their union is what is accepted. */
  defaultTranches: () => readonly TrancheSpec[];
  /** Tranches of a surface's feedback (scanout first); defaults to the default tranches. */
  surfaceTranches?: (surface: Surface) => readonly TrancheSpec[];
  /**
   * Tries the buffer on the device; returns why it cannot be used, or null. Without it,
   * buffers are created after the protocol checks alone (no device to import into).
   */
  importCheck?: (b: { width: number; height: number; format: number; modifier: bigint; planes: readonly DmabufPlane[] }) => string | null;
  /** Highest version advertised (1..4, default 4). */
  version?: number;
  /** Why a create failed (the client only learns "failed"). */
  log?: (message: string) => void;
}

const ALLOWED_FLAGS = ZwpLinuxBufferParamsV1Flags.Y_INVERT | ZwpLinuxBufferParamsV1Flags.INTERLACED | ZwpLinuxBufferParamsV1Flags.BOTTOM_FIRST;
const U32 = 0xffffffff;

export class LinuxDmabuf {
  readonly global: Global<ZwpLinuxDmabufV1>;
  readonly table = new FormatTable();
  readonly #opts: LinuxDmabufOptions;
  readonly #feedbacks = new Set<{ res: ZwpLinuxDmabufFeedbackV1; surface: Surface | null }>();

  constructor(display: Display, opts: LinuxDmabufOptions) {
    this.#opts = opts;
    // Every pair the compositor will ever advertise goes into the table up front: the
    // table is sealed once a client has seen it.
    for (const t of opts.defaultTranches()) for (const f of t.formats) this.table.indexOf(f);
    this.global = ZwpLinuxDmabufV1.global(display, opts.version ?? 4, (id) => this.#bind(id.create(this.#handlers())));
  }

  /** The accepted format+modifier pairs (union of the default tranches). */
  accepted(): FormatModifier[] {
    const out = new Map<string, FormatModifier>();
    for (const t of this.#opts.defaultTranches()) for (const f of t.formats) out.set(`${f.format}/${f.modifier}`, f);
    return [...out.values()];
  }

  #bind(res: ZwpLinuxDmabufV1): void {
    if (res.version >= 4) return; // feedback objects replace the events
    const byFormat = new Map<number, bigint[]>();
    for (const f of this.accepted()) byFormat.set(f.format, [...(byFormat.get(f.format) ?? []), f.modifier]);
    for (const [format, mods] of byFormat) {
      res.sendFormat(format);
      if (res.version >= 3) for (const m of mods) res.sendModifier(format, Number(m >> 32n), Number(m & 0xffffffffn));
    }
  }

  #handlers() {
    return {
      createParams: (_res: ZwpLinuxDmabufV1, pid: NewId<ZwpLinuxBufferParamsV1>) => this.#params(pid),
      getDefaultFeedback: (_res: ZwpLinuxDmabufV1, fid: NewId<ZwpLinuxDmabufFeedbackV1>) => {
        this.#feedback(fid.create({}), null);
      },
      getSurfaceFeedback: (_res: ZwpLinuxDmabufV1, fid: NewId<ZwpLinuxDmabufFeedbackV1>, surface: WlSurface) => {
        this.#feedback(fid.create({}), Surface.of(surface));
      },
    };
  }

  /** The feedback a surface (or, null, the default feedback) gets. */
  feedbackFor(surface: Surface | null): Feedback {
    const tranches = surface && this.#opts.surfaceTranches ? this.#opts.surfaceTranches(surface) : this.#opts.defaultTranches();
    return this.table.feedback(this.#opts.mainDevice, tranches);
  }

  #feedback(res: ZwpLinuxDmabufFeedbackV1, surface: Surface | null): void {
    const entry = { res, surface };
    this.#feedbacks.add(entry);
    res.onDestroy(() => this.#feedbacks.delete(entry));
    this.#sendFeedback(res, surface);
  }

  #sendFeedback(res: ZwpLinuxDmabufFeedbackV1, surface: Surface | null): void {
    const fb = this.feedbackFor(surface);
    res.sendFormatTable(this.table.fd, this.table.size);
    res.sendMainDevice(devTBytes(fb.mainDevice));
    for (const t of fb.tranches) {
      res.sendTrancheTargetDevice(devTBytes(t.device));
      res.sendTrancheFormats(indicesBytes(t.indices));
      res.sendTrancheFlags(t.flags);
      res.sendTrancheDone();
    }
    res.sendDone();
  }

  /** Sends every live feedback object its (possibly changed) feedback again. */
  resendFeedback(): void {
    for (const { res, surface } of this.#feedbacks) if (!res.destroyed) this.#sendFeedback(res, surface);
  }

  #params(pid: NewId<ZwpLinuxBufferParamsV1>): void {
    const planes: (DmabufPlane & { modifier: bigint })[] = [];
    let used = false;
    const closeAll = () => {
      for (const p of planes.splice(0)) if (p) libc.close(p.fd, 'dma-buf plane fd of unused params');
    };
    const create = (res: ZwpLinuxBufferParamsV1, width: number, height: number, format: number, flags: number): DmabufBuffer['planes'] | string => {
      if (used) throw new ProtocolViolation(res, E.ALREADY_USED, 'the params were already used to create a wl_buffer');
      used = true;
      const count = planes.filter((p) => p !== undefined).length;
      if (count === 0) throw new ProtocolViolation(res, E.INCOMPLETE, 'no dma-buf was added to the params');
      for (let i = 0; i < count; i++) if (!planes[i]) throw new ProtocolViolation(res, E.INCOMPLETE, `plane ${i} was not set (planes must be 0..n-1)`);
      const info = formatInfo(format);
      const modifier = planes[0]!.modifier;
      // DRM_FORMAT_MOD_INVALID is the "implicit modifier" of clients before version 4
      // (GBM without modifier support gives it): taken for a format we advertise, and
      // the import check then asks the device.
      const implicit = modifier === DRM_FORMAT_MOD_INVALID && res.version < 4;
      const advertised = this.accepted().some((f) => f.format === format >>> 0 && (implicit || f.modifier === modifier));
      if (!info || (res.version >= 4 && !advertised)) {
        throw new ProtocolViolation(res, E.INVALID_FORMAT, `format ${fourccName(format)} with modifier 0x${modifier.toString(16)} was not advertised`);
      }
      if (count !== info.planes) throw new ProtocolViolation(res, E.INCOMPLETE, `format ${info.code} has ${info.planes} plane(s), ${count} were added`);
      if (width < 1 || height < 1) throw new ProtocolViolation(res, E.INVALID_DIMENSIONS, `size ${width}x${height} is not positive`);
      checkPlaneBounds(res, planes, height, info.vsub);
      if (!advertised) return `format ${fourccName(format)} with modifier 0x${modifier.toString(16)} is not supported`;
      if (flags & ~ALLOWED_FLAGS) return `unknown flags 0x${(flags >>> 0).toString(16)}`;
      // Y_INVERT is shown through the plane's reflect-y (or composed flipped); interlaced
      // fields would need a deinterlacer that nothing here has.
      if (flags & ZwpLinuxBufferParamsV1Flags.INTERLACED) return 'interlaced buffers are not supported';
      const why = this.#opts.importCheck?.({ width, height, format: format >>> 0, modifier, planes }) ?? null;
      if (why) return why;
      return planes.map(({ fd, offset, stride }) => ({ fd, offset, stride }));
    };
    const make = (buffer: WlBuffer, width: number, height: number, format: number, flags: number, ps: readonly DmabufPlane[]): void => {
      const b: DmabufBuffer = { kind: 'dmabuf', id: newBufferId(), resource: buffer, width, height, format: format >>> 0, modifier: planes[0]!.modifier, planes: ps, flags };
      planes.length = 0; // the fds now belong to the buffer
      bindBuffer(b);
    };
    const log = this.#opts.log;
    const params = pid.create({
      add(res, fd, planeIdx, offset, stride, modHi, modLo) {
        const modifier = (BigInt(modHi >>> 0) << 32n) | BigInt(modLo >>> 0);
        const fail = (code: number, msg: string): never => {
          libc.close(fd, 'refused dma-buf plane fd');
          throw new ProtocolViolation(res, code, msg);
        };
        if (used) fail(E.ALREADY_USED, 'the params were already used to create a wl_buffer');
        if (planeIdx >= 4) fail(E.PLANE_IDX, `plane index ${planeIdx} is not below 4`);
        if (planes[planeIdx]) fail(E.PLANE_SET, `plane ${planeIdx} was already set`);
        const first = planes.find((p) => p !== undefined);
        if (first && first.modifier !== modifier) {
          fail(E.INVALID_FORMAT, `plane ${planeIdx} has modifier 0x${modifier.toString(16)}, plane 0's is 0x${first.modifier.toString(16)}`);
        }
        planes[planeIdx] = { fd, offset: offset >>> 0, stride: stride >>> 0, modifier };
      },
      create(res, width, height, format, flags) {
        const r = create(res, width, height, format, flags);
        if (typeof r === 'string') {
          log?.(`${res}: create ${width}x${height} ${fourccName(format)} failed: ${r}`);
          res.sendFailed();
          return;
        }
        const buffer = WlBuffer.create(res.client, 1, 0, {});
        make(buffer, width, height, format, flags, r);
        res.sendCreated(buffer);
      },
      createImmed(res, bid, width, height, format, flags) {
        const r = create(res, width, height, format, flags);
        if (typeof r === 'string') throw new ProtocolViolation(res, E.INVALID_WL_BUFFER, `the dma-buf cannot be used: ${r}`);
        make(bid.create({}), width, height, format, flags, r);
      },
    });
    params.onDestroy(closeAll);
  }

  close(): void {
    this.table.close();
  }
}

/** Each plane's rows lie inside its dma-buf (where the fd can say its size) and in u32 range. */
function checkPlaneBounds(res: ZwpLinuxBufferParamsV1, planes: readonly DmabufPlane[], height: number, vsub: number): void {
  for (let i = 0; i < planes.length; i++) {
    const p = planes[i]!;
    const rows = i === 0 ? height : Math.ceil(height / vsub);
    if (p.offset + p.stride > U32) throw new ProtocolViolation(res, E.OUT_OF_BOUNDS, `plane ${i}: offset ${p.offset} + stride ${p.stride} overflows`);
    if (p.offset + p.stride * rows > U32) throw new ProtocolViolation(res, E.OUT_OF_BOUNDS, `plane ${i}: offset + stride × height overflows`);
    let size = -1;
    try {
      size = Number(libc.lseek(p.fd, 0, libc.SEEK_END, `dma-buf plane ${i}`));
    } catch {
      size = -1; // not seekable: the kernel checks at import
    }
    if (size >= 0) {
      if (p.offset >= size) throw new ProtocolViolation(res, E.OUT_OF_BOUNDS, `plane ${i}: offset ${p.offset} is beyond the ${size}-byte dma-buf`);
      if (p.offset + p.stride > size) throw new ProtocolViolation(res, E.OUT_OF_BOUNDS, `plane ${i}: stride ${p.stride} from offset ${p.offset} runs past the ${size}-byte dma-buf`);
      if (p.offset + p.stride * rows > size) {
        throw new ProtocolViolation(res, E.OUT_OF_BOUNDS, `plane ${i}: ${rows} rows of stride ${p.stride} from offset ${p.offset} run past the ${size}-byte dma-buf`);
      }
    }
  }
}
