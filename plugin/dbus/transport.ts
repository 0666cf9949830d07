// One D-Bus socket on Node's event loop: the authentication handshake, then messages
// framed out of the byte stream with the unix fds that came with them, and a write queue.
// Everything that arrives is bounded before it is held: a message announcing more than
// maxMessageBytes ends the connection before its body is read; fds are counted as they
// arrive and a message whose header declares a different number than came with it is
// refused with all of them closed; work is done in slices (sliceMs) so that no peer holds
// the event loop, and the rest waits in the socket (the peer blocks, not us).
//
// Fd attribution: a sender passes a message's fds with its first bytes, and the kernel ends
// a recvmsg right after the bytes that carried fds. One recvmsg here reads as many small
// messages as have come (one syscall per frame, not two per message), so the fds it returns
// belong to a message that starts within what it read (the one whose header declares fds,
// else the last) or, if none starts there, to the message it fell inside; until that is
// decided, reads stay within one message (#arrived, #fdsFor).
//
// Ownership: the transport owns the socket fd, every received fd until it hands a
// complete message to onMessage (then the message's DbusFds are the receiver's), and the
// duplicates of fds queued for sending (closed once sent, or at close()).
import * as libc from '../../ffi/libc.js';
import { FdWatch, UV_READABLE, UV_WRITABLE } from '../../ffi/uv.js';
import { AuthError, MAX_AUTH_LINE, SaslClient, SaslServer, type AuthStep } from './auth.js';
import { decodeHeader } from './header.js';
import { DbusFd, DbusWireError, messageLength, type MessageHeader } from './wire.js';

/** Bounds on one connection (see README, "What guestplane assumes of QEMU"). */
export interface TransportLimits {
  /** One message, header and body (a 5K frame in a Scanout call fits). */
  maxMessageBytes: number;
  /** Fds one message may carry. */
  maxFds: number;
  /** Bytes queued for a peer that does not read: past this the connection is dropped. */
  maxQueuedOutBytes: number;
  /** The handshake must be done by then. */
  authTimeoutMs: number;
  /** Longest stretch of reading and handling before the event loop gets a turn. */
  sliceMs: number;
}

export const DEFAULT_TRANSPORT_LIMITS: TransportLimits = {
  maxMessageBytes: 64 * 1024 * 1024,
  maxFds: 16,
  maxQueuedOutBytes: 64 * 1024 * 1024,
  authTimeoutMs: 10_000,
  sliceMs: 2,
};

/** A complete message: its fds are the receiver's (close those not taken). */
export interface RawMessage {
  header: MessageHeader;
  bytes: Buffer;
  fds: DbusFd[];
}

/** A message that could not be taken; `header` when it was readable enough to answer. */
export interface RefusedMessage {
  header: MessageHeader | null;
  reason: string;
}

export interface TransportHandlers {
  running(): void;
  message(m: RawMessage): void;
  refused(r: RefusedMessage): void;
  closed(e: Error | null): void;
}

/**
 * Bytes one recvmsg may read ahead: many small messages at once (the listener's calls are
 * 100-300 bytes); a larger message is read into a buffer of its own.
 */
const READ_BYTES = 64 * 1024;

/** Fds that came with the stream's bytes [from, to), not yet given to a message. */
interface FdGroup {
  fds: number[];
  /** Closed on arrival, past maxFds: counted for the message that gets the group. */
  tooMany: number;
  from: number;
  to: number;
}

/** ioctl: bytes queued on a socket for reading (asm-generic/ioctls.h, as SIOCINQ). */
const FIONREAD = 0x541b;

/** The longest a slice's output waits for the send it was held for (holdOutput): a bit more than a 60 Hz refresh. */
const HOLD_OUTPUT_MS = 20;

/** Bytes gathered into one sendmsg (the ffi's staging area holds 256 KiB). */
const BATCH_BYTES = 256 * 1024;

interface Outgoing {
  bytes: Buffer;
  off: number;
  /** Our duplicates, sent with the first bytes. */
  fds: number[];
}

export class DbusTransport {
  readonly name: string;
  readonly limits: TransportLimits;
  #fd: number;
  #watch: FdWatch | null = null;
  #watchEvents = 0;
  #auth: SaslClient | SaslServer;
  #state: 'nul' | 'auth' | 'running' | 'closed';
  #authLine = '';
  #authTimer: NodeJS.Timeout | null = null;
  unixFds = false;
  readonly #h: TransportHandlers;
  // reading: #rb holds bytes read ahead, [#rbPos, #rbEnd) not yet framed; #rbBase is the
  // stream offset of #rb[0] (fds are placed by stream offsets).
  readonly #rb = Buffer.allocUnsafe(READ_BYTES);
  #rbPos = 0;
  #rbEnd = 0;
  #rbBase = 0;
  /** A read ended short (no fds ended it): the socket was empty, no need to ask again this slice. */
  #socketEmpty = false;
  /** A message larger than #rb, read on its own. */
  #cur: Buffer | null = null;
  #curFilled = 0;
  /** Fds of the message being framed (#rbPos, or #cur). */
  #curFds: number[] = [];
  #curTooManyFds = 0;
  /** Fds that arrived with a read in which messages start: theirs is decided by #fdsFor. */
  #group: FdGroup | null = null;
  #decoded: { bytes: Buffer; header: MessageHeader } | null = null; // by #declaredFds: a header is decoded once
  // writing
  readonly #authOut: Buffer[] = [];
  readonly #out: Outgoing[] = [];
  #outBytes = 0;
  /** Inside #readSlice: sends wait for the slice's end (one write for all its answers). */
  #reading = false;
  /** A turn is asked for to handle messages read ahead (#readSlice). */
  #resume = false;
  /** This slice's output waits for the next send (holdOutput). */
  #holdOut = false;
  /** The bound on a held output: one timer, re-armed. */
  #holdTimer: NodeJS.Timeout | null = null;
  /** A failed write in send() closes on the next turn (see send()). */
  #deferClose = false;
  #closing = false;
  /** Bytes, messages and recvmsg calls, for tests and stats. */
  readonly stats = { messagesIn: 0, reads: 0, bytesIn: 0, messagesOut: 0, bytesOut: 0, refused: 0, fdsClosedOnArrival: 0, slices: 0, longestSliceMs: 0 };

  constructor(fd: number, name: string, role: 'client' | 'server', handlers: TransportHandlers, limits: Partial<TransportLimits> = {}) {
    this.#fd = fd;
    this.name = name;
    this.#h = handlers;
    this.limits = { ...DEFAULT_TRANSPORT_LIMITS, ...limits };
    const uid = libc.geteuid();
    this.#auth = role === 'client' ? new SaslClient(uid, true) : new SaslServer(uid);
    this.#state = role === 'client' ? 'auth' : 'nul';
    this.#authTimer = setTimeout(
      () => this.close(new AuthError(`${name}: the peer did not finish the D-Bus handshake within ${this.limits.authTimeoutMs / 1000} s (is it a D-Bus socket, and is its process alive?)`)),
      this.limits.authTimeoutMs,
    );
    this.#watchEvents = UV_READABLE;
    this.#watch = new FdWatch(fd, UV_READABLE, {
      ready: (events, error) => {
        // libuv reports POLLERR as EBADF: a read says what really happened (a reset, the end).
        if (error) this.#readSlice();
        if (error) return this.close(new Error(`${name}: the socket failed (${error.message})`));
        if (events & UV_WRITABLE) this.#flush();
        if (events & UV_READABLE) this.#readSlice();
      },
      error: (e) => this.close(e instanceof Error ? e : new Error(String(e))),
    });
    if (this.#auth instanceof SaslClient) this.#writeRaw(Buffer.from(this.#auth.start(), 'latin1'));
  }

  get closed(): boolean {
    return this.#state === 'closed';
  }

  get running(): boolean {
    return this.#state === 'running';
  }

  /** Queues a message; `fds` are the caller's (duplicates are sent). Written soon, in order. */
  send(bytes: Buffer, fds: readonly number[] = []): void {
    if (this.#state === 'closed') return;
    if (fds.length && this.#state === 'running' && !this.unixFds) throw new Error(`${this.name}: the peer did not agree to receive fds`);
    const dups: number[] = [];
    try {
      for (const f of fds) dups.push(libc.fcntl(f, libc.F_DUPFD_CLOEXEC, 3, `fd ${f} to send`));
    } catch (e) {
      for (const d of dups) libc.close(d);
      throw e;
    }
    this.#out.push({ bytes, off: 0, fds: dups });
    this.#outBytes += bytes.length;
    if (this.#outBytes > this.limits.maxQueuedOutBytes) {
      this.close(new Error(`${this.name}: the peer does not read what is sent to it (${this.#outBytes} bytes queued, at most ${this.limits.maxQueuedOutBytes})`));
      return;
    }
    this.stats.messagesOut++;
    // Written now, not on a later turn of the loop (a turn costs more than the write under
    // TCG, and an answer held for a flip should leave with the flip): inside a read slice
    // the slice's end writes everything its handlers queued in one go. A write that fails
    // here closes the connection on the next turn, never under the caller's feet (the
    // caller may be walking its own list of held calls).
    if (this.#reading || this.#state !== 'running') return;
    this.#deferClose = true;
    try {
      this.#flush();
    } finally {
      this.#deferClose = false;
    }
  }

  /**
   * What this read slice queued may wait for the next send() (at most HOLD_OUTPUT_MS), to
   * leave in one write with it: each write wakes the peer, and under TCG a wake-up costs
   * both sides more than the message. For a handler that holds a call of this slice and
   * will answer it soon; a peer that waits for an earlier answer sends nothing after it, so
   * only answers it is not waiting for are held.
   */
  holdOutput(): void {
    if (this.#reading) this.#holdOut = true;
  }

  /** The handshake's own lines: written ahead of every message. */
  #writeRaw(b: Buffer): void {
    this.#authOut.push(b);
    this.#flush();
  }

  #flush(): void {
    if (this.#state === 'closed') return;
    try {
      while (this.#authOut.length) {
        const b = this.#authOut[0]!;
        const n = libc.sendmsg(this.#fd, [b], [], this.name);
        if (n < 0) return this.#want(true);
        if (n < b.length) this.#authOut[0] = b.subarray(n);
        else this.#authOut.shift();
      }
      // Messages wait for the handshake. Consecutive messages leave in one sendmsg; one
      // with fds starts a new one (its fds must come with its first byte).
      while (this.#out.length && this.#state === 'running') {
        const first = this.#out[0]!;
        const chunks: Buffer[] = [first.bytes.subarray(first.off)];
        let size = chunks[0]!.length;
        for (let i = 1; i < this.#out.length && size < BATCH_BYTES; i++) {
          const o = this.#out[i]!;
          if (o.fds.length) break;
          chunks.push(o.bytes);
          size += o.bytes.length;
        }
        let n = libc.sendmsg(this.#fd, chunks, first.off === 0 ? first.fds : [], this.name);
        if (n < 0) break;
        if (first.off === 0) for (const f of first.fds.splice(0)) libc.close(f);
        this.#outBytes -= n;
        this.stats.bytesOut += n;
        while (n > 0) {
          const o = this.#out[0]!;
          const left = o.bytes.length - o.off;
          if (n < left) {
            o.off += n;
            n = 0;
          } else {
            n -= left;
            this.#out.shift();
          }
        }
        if (this.#out.length && this.#out[0]!.off > 0) break; // the socket is full
      }
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      if (this.#deferClose) return void setImmediate(() => this.close(err));
      return this.close(err);
    }
    this.#want(this.#out.length > 0 && this.#state === 'running');
  }

  #want(writable: boolean): void {
    const ev = UV_READABLE | (writable ? UV_WRITABLE : 0);
    if (ev === this.#watchEvents || !this.#watch) return;
    this.#watch.setEvents(ev);
    this.#watchEvents = ev;
  }

  /** Reads and handles until the socket is empty or the slice is used up; `resumed`: from the check phase. */
  #readSlice(resumed = false): void {
    const t0 = performance.now();
    this.#reading = true;
    this.#socketEmpty = false;
    this.#resume = false;
    try {
      while (this.#state !== 'closed') {
        const more = this.#state === 'running' ? this.#readMessageBytes() : this.#readAuth();
        if (!more) break;
        if (performance.now() - t0 >= this.limits.sliceMs) break; // the rest next turn (uv_poll is level-triggered)
      }
    } catch (e) {
      this.close(e instanceof Error ? e : new Error(String(e)));
    } finally {
      this.#reading = false;
    }
    this.stats.slices++;
    this.stats.longestSliceMs = Math.max(this.stats.longestSliceMs, performance.now() - t0);
    if (this.#out.length && this.#state === 'running') {
      if (!this.#holdOut) this.#flush();
      else if (this.#holdTimer) this.#holdTimer.refresh();
      else this.#holdTimer = setTimeout(() => this.#flush(), HOLD_OUTPUT_MS);
    }
    this.#holdOut = false;
    // Messages read ahead, not yet handled: the poll gives the next slice if the socket holds
    // more, else the next turn's check phase (never this turn's after a poll slice): one slice
    // a turn, as every peer gets (two gave a flooding QEMU twice its share; a poll slice cancels).
    if (this.#state === 'running' && !this.#cur && this.#hasWhole() && (this.#socketEmpty || this.#unread() === 0)) {
      this.#resume = true;
      setImmediate(resumed ? this.#resumeSlice : () => this.#resume && setImmediate(this.#resumeSlice));
    }
  }

  readonly #resumeSlice = (): void => void (this.#resume && this.#readSlice(true));

  /** Bytes waiting in the socket (FIONREAD); 0 if that cannot be told. */
  #unread(): number {
    const n = Buffer.alloc(4);
    return libc.ioctlTry(this.#fd, FIONREAD, n) === 0 ? n.readInt32LE(0) : 0;
  }

  /** A whole message waits in #rb. */
  #hasWhole(): boolean {
    const total = this.#framedLength();
    return total !== null && this.#rbEnd - this.#rbPos >= total;
  }

  #recv(into: Buffer, fds: number[]): number {
    const { bytes } = libc.recvmsg(this.#fd, into, fds, this.name);
    this.stats.reads++;
    if (bytes === 0) {
      this.close(new Error(`${this.name}: the peer closed the connection`));
      return -1;
    }
    if (bytes > 0) this.stats.bytesIn += bytes;
    return bytes;
  }

  /** Handshake lines, byte by byte up to the end of BEGIN: nothing after it is read here. */
  #readAuth(): boolean {
    const buf = Buffer.alloc(1);
    const fds: number[] = [];
    const n = this.#recv(buf, fds);
    this.#closeArrived(fds);
    if (n <= 0) return false;
    const c = buf[0]!;
    if (this.#state === 'nul') {
      if (c !== 0) throw new AuthError(`${this.name}: the peer did not begin with the D-Bus handshake's NUL byte`);
      this.#state = 'auth';
      return true;
    }
    if (c !== 0x0a) {
      this.#authLine += String.fromCharCode(c);
      if (this.#authLine.length > MAX_AUTH_LINE) throw new AuthError(`${this.name}: a handshake line longer than ${MAX_AUTH_LINE} bytes: not a D-Bus peer`);
      return true;
    }
    const line = this.#authLine.replace(/\r$/, '');
    this.#authLine = '';
    const step: AuthStep = this.#auth.line(line);
    if (step.send) this.#writeRaw(Buffer.from(step.send, 'latin1'));
    if (step.done) {
      this.unixFds = step.done.unixFds;
      this.#state = 'running';
      if (this.#authTimer) clearTimeout(this.#authTimer);
      this.#authTimer = null;
      this.#h.running();
      this.#flush();
    }
    return true;
  }

  /**
   * One step of reading: the next complete message already in #rb, else one recvmsg (many
   * small messages to one read). A message larger than #rb gets a buffer of its own (#cur)
   * and is read to its end alone. False when the socket is empty or closed.
   */
  #readMessageBytes(): boolean {
    if (this.#cur) return this.#readLarge();
    if (this.#frameOne()) return true;
    if (this.#socketEmpty) return false;
    if (this.#rbEnd === this.#rb.length) this.#compact();
    // While fds wait for their message (#group), a read stays within the message being
    // framed (its fixed header, or all of it): that read's fds are then surely its.
    let limit = this.#rb.length;
    if (this.#group) limit = Math.min(limit, this.#rbPos + (this.#framedLength() ?? 16));
    const fds: number[] = [];
    const at = this.#rbEnd;
    const n = this.#recv(this.#rb.subarray(at, limit), fds);
    if (this.#state === 'closed') {
      this.#closeArrived(fds);
      return false;
    }
    if (n <= 0) return false;
    this.#rbEnd += n;
    if (fds.length) this.#arrived(fds, at, at + n);
    // A short read that no fds ended emptied the socket: the slice needs no recvmsg more to
    // learn it (uv_poll is level-triggered: whatever comes later wakes us again).
    else if (at + n < limit) this.#socketEmpty = true;
    return true;
  }

  /** The length of the message at #rbPos, once its fixed header is in. */
  #framedLength(): number | null {
    const pos = this.#rbPos;
    return this.#rbEnd - pos >= 16 ? messageLength(this.#rb.subarray(pos, pos + 16), this.limits) : null;
  }

  /** A message too large for #rb, read straight into its own buffer up to its end. */
  #readLarge(): boolean {
    const cur = this.#cur!;
    const n = this.#recv(cur.subarray(this.#curFilled), this.#curFds);
    this.#checkFds();
    if (n <= 0) return false;
    this.#curFilled += n;
    if (this.#curFilled < cur.length) return true;
    this.#cur = null;
    this.#deliver(cur, this.#rbBase - cur.length, this.#rbBase);
    return true;
  }

  /** Moves the unframed bytes to the front of #rb. */
  #compact(): void {
    if (this.#rbPos === 0) return;
    this.#rb.copy(this.#rb, 0, this.#rbPos, this.#rbEnd);
    this.#rbBase += this.#rbPos;
    this.#rbEnd -= this.#rbPos;
    this.#rbPos = 0;
  }

  /**
   * Fds that came with the bytes [from, to) of #rb. A sender passes a message's fds with its
   * first byte, and the kernel ends a read right after the bytes that carried fds: so they
   * belong to a message that starts in [from, to), or, if none starts there, to the message
   * the read fell inside. Which of those that start there is decided from their headers
   * (#fdsFor) once they are complete; meanwhile reads stay within one message.
   */
  #arrived(fds: number[], from: number, to: number): void {
    const framing = this.#rbPos < from ? this.#framedLength() : null;
    if (this.#group || (framing !== null && this.#rbPos + framing >= to)) {
      this.#curFds.push(...fds);
      this.#checkFds();
      return;
    }
    const keep = this.unixFds ? this.limits.maxFds : 0;
    const tooMany = Math.max(0, fds.length - keep);
    if (tooMany) this.#closeArrived(fds.splice(keep));
    this.#group = { fds, tooMany, from: this.#rbBase + from, to: this.#rbBase + to };
  }

  /** Delivers the message at #rbPos if it is complete (one per step: the slice's clock runs between). */
  #frameOne(): boolean {
    const pos = this.#rbPos;
    const total = this.#framedLength();
    if (total === null) return false;
    if (total > this.#rb.length) {
      // Too large for #rb: the rest is read into a buffer of its own.
      this.#cur = Buffer.allocUnsafe(total);
      this.#curFilled = this.#rb.copy(this.#cur, 0, pos, this.#rbEnd);
      this.#rbBase += pos + total;
      this.#rbPos = this.#rbEnd = 0;
      return true;
    }
    if (this.#rbEnd - pos < total) {
      if (pos + total > this.#rb.length) this.#compact();
      return false;
    }
    const bytes = Buffer.allocUnsafe(total);
    this.#rb.copy(bytes, 0, pos, pos + total);
    const start = this.#rbBase + pos;
    this.#rbPos += total;
    if (this.#rbPos === this.#rbEnd) {
      this.#rbBase += this.#rbPos;
      this.#rbPos = this.#rbEnd = 0;
    }
    this.#deliver(bytes, start, start + total);
    return true;
  }

  /** A complete message, the stream's bytes [start, end), with the fds that are its (#fdsFor). */
  #deliver(bytes: Buffer, start: number, end: number): void {
    const { fds, tooMany } = this.#fdsFor(bytes, start, end);
    this.stats.messagesIn++;
    this.#complete(bytes, fds, tooMany);
  }

  /**
   * The fds of a complete message: those that came within it, and the waiting #group's if
   * they are its: the group's read began inside this message and no other message starts
   * within the read; or this message starts within it and declares fds, or is the last to
   * start within it (then they are undeclared, and it is refused as any such message).
   */
  #fdsFor(bytes: Buffer, start: number, end: number): { fds: number[]; tooMany: number } {
    let fds = this.#curFds;
    let tooMany = this.#curTooManyFds;
    this.#curFds = [];
    this.#curTooManyFds = 0;
    const g = this.#group;
    if (!g || g.from >= end) return { fds, tooMany };
    const startsIn = start >= g.from && start < g.to;
    const last = end >= g.to;
    if (startsIn ? last || this.#declaredFds(bytes) > 0 : last) {
      this.#group = null;
      fds = g.fds.concat(fds);
      tooMany += g.tooMany;
      if (fds.length > this.limits.maxFds) {
        const extra = fds.splice(this.limits.maxFds);
        tooMany += extra.length;
        this.#closeArrived(extra);
      }
    }
    return { fds, tooMany };
  }

  /** The fds a message's header declares (0 if unreadable: it is refused anyway), its header kept for #complete. */
  #declaredFds(bytes: Buffer): number {
    try {
      return (this.#decoded = { bytes, header: decodeHeader(bytes) }).header.unixFds;
    } catch {
      return 0;
    }
  }

  /** Fds past the per-message bound are closed as they arrive. */
  #checkFds(): void {
    if (this.#curFds.length && !this.unixFds) {
      this.#curTooManyFds += this.#curFds.length;
      this.#closeArrived(this.#curFds.splice(0));
      return;
    }
    if (this.#curFds.length <= this.limits.maxFds) return;
    const extra = this.#curFds.splice(this.limits.maxFds);
    this.#curTooManyFds += extra.length;
    this.#closeArrived(extra);
  }

  #closeArrived(fds: number[]): void {
    for (const f of fds) {
      libc.close(f);
      this.stats.fdsClosedOnArrival++;
    }
  }

  #complete(bytes: Buffer, fds: number[], tooMany: number): void {
    let header: MessageHeader | null = null;
    let reason: string | null = null;
    try {
      header = this.#decoded?.bytes === bytes ? this.#decoded.header : decodeHeader(bytes);
    } catch (e) {
      reason = e instanceof DbusWireError ? `malformed header: ${e.message}` : String(e);
    }
    this.#decoded = null;
    const arrived = fds.length + tooMany;
    if (!reason && header && arrived !== header.unixFds) {
      reason = `${arrived} fds came with the message but its header declares ${header.unixFds}`;
    } else if (!reason && header && header.unixFds > this.limits.maxFds) {
      reason = `${header.unixFds} fds in one message (at most ${this.limits.maxFds})`;
    }
    if (reason) {
      this.#closeArrived(fds);
      this.stats.refused++;
      this.#h.refused({ header, reason });
      return;
    }
    this.#h.message({ header: header!, bytes, fds: fds.map((f) => new DbusFd(f)) });
  }

  /**
   * Ends the connection at once, never waiting for the peer: what could be written
   * without blocking is written, the rest dropped; every fd we hold is closed.
   */
  close(reason: Error | null = null): void {
    if (this.#state === 'closed' || this.#closing) return;
    // The last flush may fail (the peer is gone): its error comes back here and must not flush again.
    this.#closing = true;
    const wasRunning = this.#state === 'running';
    if (wasRunning) this.#flush();
    this.#state = 'closed';
    if (this.#authTimer) clearTimeout(this.#authTimer);
    this.#authTimer = null;
    void this.#watch?.close();
    this.#watch = null;
    for (const o of this.#out) for (const f of o.fds) libc.close(f);
    this.#out.length = 0;
    this.#outBytes = 0;
    for (const f of this.#curFds) libc.close(f);
    this.#curFds = [];
    for (const f of this.#group?.fds ?? []) libc.close(f);
    this.#group = null;
    this.#cur = null;
    this.#resume = false;
    if (this.#holdTimer) clearTimeout(this.#holdTimer);
    this.#holdTimer = null;
    libc.close(this.#fd, `${this.name} socket`);
    this.#fd = -1;
    this.#h.closed(reason);
  }
}
