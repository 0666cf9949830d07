// linux-dmabuf v4 feedback data: the format table (one mmap-able memfd shared by every
// feedback object) and the tranches that index into it, built from what the KMS device
// really takes. A scanout tranche lists a plane set's IN_FORMATS (format+modifier pairs)
// restricted to single-plane formats, because a GuestSource plane carries one
// fd/offset/stride and the output refuses multi-planar buffers (validate.ts); the main
// tranche lists everything the compositor can show at all: the scanout formats plus the
// formats its CPU copy path reads as they are.
import * as libc from '../../ffi/libc.js';
import { fourcc, formatInfo, DRM_FORMAT_MOD_LINEAR, DRM_FORMAT_MOD_INVALID } from '../../ffi/drm.js';

export interface FormatModifier {
  format: number;
  modifier: bigint;
}

export interface TrancheSpec {
  /** dev_t of the device the buffers should be allocated for / imported into. */
  device: bigint;
  /** zwp_linux_dmabuf_feedback_v1.tranche_flags (1 = scanout). */
  flags: number;
  formats: readonly FormatModifier[];
}

export const TRANCHE_FLAG_SCANOUT = 1;

/** Formats the output's copy path reads without conversion (into an XRGB8888 buffer). */
export const COPY_FORMATS: readonly FormatModifier[] = [
  { format: fourcc('XR24'), modifier: DRM_FORMAT_MOD_LINEAR },
  { format: fourcc('AR24'), modifier: DRM_FORMAT_MOD_LINEAR },
];

/** Single-plane format+modifier pairs of the planes' IN_FORMATS (union, in plane order). */
export function scanoutFormats(planes: readonly { formats: ReadonlyMap<number, readonly bigint[]> }[]): FormatModifier[] {
  const out: FormatModifier[] = [];
  const seen = new Set<string>();
  for (const p of planes) {
    for (const [format, mods] of p.formats) {
      if (formatInfo(format)?.planes !== 1) continue;
      for (const modifier of mods) {
        // DRM_FORMAT_MOD_INVALID in IN_FORMATS would mean "implicit": not a pair to advertise.
        if (modifier === DRM_FORMAT_MOD_INVALID) continue;
        const k = `${format}/${modifier}`;
        if (seen.has(k)) continue;
        seen.add(k);
        out.push({ format, modifier });
      }
    }
  }
  return out;
}

export function unionFormats(...lists: readonly (readonly FormatModifier[])[]): FormatModifier[] {
  const out: FormatModifier[] = [];
  const seen = new Set<string>();
  for (const l of lists) {
    for (const f of l) {
      const k = `${f.format}/${f.modifier}`;
      if (!seen.has(k)) {
        seen.add(k);
        out.push(f);
      }
    }
  }
  return out;
}

export interface Feedback {
  mainDevice: bigint;
  tranches: { device: bigint; flags: number; indices: number[] }[];
}

/** The format table: every pair of every tranche once, 16 bytes each (format, pad, modifier). */
export class FormatTable {
  readonly entries: FormatModifier[] = [];
  readonly #index = new Map<string, number>();
  #fd = -1;

  indexOf(f: FormatModifier): number {
    const k = `${f.format}/${f.modifier}`;
    let i = this.#index.get(k);
    if (i === undefined) {
      if (this.#fd >= 0) throw new Error('format table: sealed, cannot add formats');
      if (this.entries.length >= 0x10000) throw new Error('format table: more than 65536 pairs (indices are 16-bit)');
      i = this.entries.length;
      this.entries.push(f);
      this.#index.set(k, i);
    }
    return i;
  }

  encode(): Buffer {
    const b = Buffer.alloc(16 * this.entries.length);
    this.entries.forEach((e, i) => {
      b.writeUInt32LE(e.format >>> 0, 16 * i);
      b.writeBigUInt64LE(e.modifier, 16 * i + 8);
    });
    return b;
  }

  /**
   * The table in a sealed memfd (clients map it read-only, MAP_PRIVATE as the protocol
   * asks; the seals make sure nobody can change or shrink it under them).
   */
  get fd(): number {
    if (this.#fd < 0) {
      const data = this.encode();
      const fd = libc.memfdCreate('guestplane-dmabuf-format-table', libc.MFD_ALLOW_SEALING);
      try {
        if (data.length) libc.pwrite(fd, data, 0, 'format table memfd');
        const F_SEAL_WRITE = 0x0008;
        libc.fcntl(fd, libc.F_ADD_SEALS, libc.F_SEAL_SHRINK | libc.F_SEAL_GROW | F_SEAL_WRITE | libc.F_SEAL_SEAL, 'format table memfd');
      } catch (e) {
        libc.close(fd, 'format table memfd');
        throw e;
      }
      this.#fd = fd;
    }
    return this.#fd;
  }
  get size(): number {
    return 16 * this.entries.length;
  }

  feedback(mainDevice: bigint, tranches: readonly TrancheSpec[]): Feedback {
    return { mainDevice, tranches: tranches.map((t) => ({ device: t.device, flags: t.flags, indices: t.formats.map((f) => this.indexOf(f)) })) };
  }

  close(): void {
    if (this.#fd >= 0) libc.close(this.#fd, 'format table memfd');
    this.#fd = -1;
  }
}

/** A dev_t as the protocol carries it: the bytes of the C dev_t (64-bit, host order). */
export function devTBytes(dev: bigint): Uint8Array {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt.asUintN(64, dev));
  return new Uint8Array(b);
}

/** tranche_formats: the table indices as an array of native-endian uint16. */
export function indicesBytes(indices: readonly number[]): Uint8Array {
  return new Uint8Array(Uint16Array.from(indices).buffer);
}
