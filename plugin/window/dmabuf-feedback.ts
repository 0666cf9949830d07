// linux-dmabuf version 4 feedback as window mode reads it (zwp_linux_dmabuf_feedback_v1):
// the format table (16-byte entries: u32 format, u32 padding, u64 modifier), the main
// device, and the tranches in the compositor's order of preference, each with its target
// device, flags (SCANOUT: buffers of these pairs can go on a plane) and indices into the
// table. A `done` completes one feedback; the compositor may send a new one at any time
// (a surface made fullscreen may get a scanout tranche), which replaces the last: the
// tranches start afresh, the table and main device stay until sent again.
//
// What window mode does with it (window-output.ts): a guest buffer whose format/modifier is
// in no tranche is copied (wl_shm), with that reason; one in a tranche is handed over as
// it is, and whether a scanout tranche has it is reported per frame. A pair outside the
// scanout tranches is still handed over: the compositor then composes it on its GPU,
// which costs less than our CPU copy, and the pair may become scanout-capable later.
//
// Ownership: the format table's fd arrives owned by the handler; it is read at once
// (pread, no mapping kept) and closed here. The feedback proxy is its creator's.
import * as libc from '../../ffi/libc.js';
import type { ZwpLinuxDmabufFeedbackV1 } from '../../protocols/generated/client/linux_dmabuf_unstable_v1.js';

export const TRANCHE_FLAG_SCANOUT = 1;
/** The largest table read (65536 entries: indices are 16-bit). */
const MAX_TABLE_BYTES = 16 * 0x10000;

export interface FormatModifier {
  format: number;
  modifier: bigint;
}

export interface FeedbackTranche {
  device: bigint;
  scanout: boolean;
  /** `format/modifier` keys (pairKey). */
  pairs: ReadonlySet<string>;
}

export interface DmabufFeedback {
  mainDevice: bigint;
  /** In the compositor's order of preference. */
  tranches: readonly FeedbackTranche[];
}

export const pairKey = (format: number, modifier: bigint): string => `${format >>> 0}/${modifier}`;

/** The format table's bytes as pairs (a trailing partial entry is ignored). */
export function parseFormatTable(bytes: Uint8Array): FormatModifier[] {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: FormatModifier[] = [];
  for (let o = 0; o + 16 <= bytes.byteLength; o += 16) out.push({ format: v.getUint32(o, true), modifier: v.getBigUint64(o + 8, true) });
  return out;
}

/** A dev_t as the protocol carries it (the C dev_t's bytes, host order; 0 when malformed). */
export function devT(bytes: Uint8Array): bigint {
  if (bytes.byteLength !== 8) return 0n;
  return new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
}

/** Whether `f` offers format/modifier in any tranche, and in a scanout one. */
export function offers(f: DmabufFeedback, format: number, modifier: bigint): { importable: boolean; scanout: boolean } {
  const k = pairKey(format, modifier);
  const hit = f.tranches.filter((t) => t.pairs.has(k));
  return { importable: hit.length > 0, scanout: hit.some((t) => t.scanout) };
}

/** Collects one feedback object's events; `onDone` gets each complete feedback. */
export class FeedbackReader {
  #table: FormatModifier[] = [];
  #mainDevice = 0n;
  #tranches: FeedbackTranche[] = [];
  #tranche: { device: bigint; flags: number; pairs: Set<string> } | null = null;
  /** The newest complete feedback (null until the first `done`). */
  current: DmabufFeedback | null = null;

  constructor(proxy: ZwpLinuxDmabufFeedbackV1, onDone: (f: DmabufFeedback) => void, log: (line: string) => void) {
    const tranche = () => (this.#tranche ??= { device: this.#mainDevice, flags: 0, pairs: new Set() });
    proxy.on({
      formatTable: (fd, size) => {
        try {
          this.#table = readTable(fd, size);
        } catch (e) {
          log(`guestplane window: the desktop compositor's dma-buf format table could not be read: ${(e as Error).message}`);
          this.#table = [];
        } finally {
          libc.close(fd, 'dma-buf feedback format table');
        }
      },
      mainDevice: (d) => (this.#mainDevice = devT(d)),
      trancheTargetDevice: (d) => (tranche().device = devT(d)),
      trancheFlags: (flags) => (tranche().flags = flags >>> 0),
      trancheFormats: (indices) => {
        const t = tranche();
        const ix = new Uint16Array(indices.buffer.slice(indices.byteOffset, indices.byteOffset + (indices.byteLength & ~1)));
        for (const i of ix) {
          const p = this.#table[i];
          if (p) t.pairs.add(pairKey(p.format, p.modifier)); // an index past the table is ignored, as wlroots does
        }
      },
      trancheDone: () => {
        const t = tranche();
        this.#tranches.push({ device: t.device, scanout: (t.flags & TRANCHE_FLAG_SCANOUT) !== 0, pairs: t.pairs });
        this.#tranche = null;
      },
      done: () => {
        this.current = { mainDevice: this.#mainDevice, tranches: this.#tranches };
        this.#tranches = [];
        this.#tranche = null;
        onDone(this.current);
      },
    });
  }
}

function readTable(fd: number, size: number): FormatModifier[] {
  const n = Math.min(size >>> 0, MAX_TABLE_BYTES);
  const buf = Buffer.alloc(n);
  let got = 0;
  while (got < n) {
    const r = libc.pread(fd, buf.subarray(got), got, 'dma-buf feedback format table');
    if (r <= 0) break;
    got += r;
  }
  return parseFormatTable(buf.subarray(0, got));
}
