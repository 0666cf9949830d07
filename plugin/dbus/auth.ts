// The D-Bus authentication handshake (the specification's "Authentication Protocol"):
// line-based SASL before the first message. Both sides, as pure state machines the
// transport feeds line by line: the client (our listener and bus connections, EXTERNAL
// with our uid, then NEGOTIATE_UNIX_FD and BEGIN pipelined, as sd-bus and GDBus clients
// do) and the server (QEMU's role on a listener socket; the tests play QEMU with it).
import { randomBytes } from 'node:crypto';

/** Longest auth line accepted: a real one is under 100 bytes. */
export const MAX_AUTH_LINE = 1024;

export type AuthStep = { send?: string; done?: { unixFds: boolean } };

export class AuthError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuthError';
  }
}

const hex = (s: string) => Buffer.from(s, 'ascii').toString('hex');

export class SaslClient {
  #state: 'ok' | 'fds' | 'done' = 'ok';
  #unixFds = false;

  constructor(
    private readonly uid: number,
    private readonly wantFds: boolean,
  ) {}

  /** What the client sends first (the NUL byte, AUTH, and the rest pipelined). */
  start(): string {
    return `\0AUTH EXTERNAL ${hex(String(this.uid))}\r\n${this.wantFds ? 'NEGOTIATE_UNIX_FD\r\n' : ''}BEGIN\r\n`;
  }

  /** One line from the server (without CRLF). */
  line(l: string): AuthStep {
    if (this.#state === 'ok') {
      if (/^OK [0-9a-fA-F]{32}$/.test(l)) {
        if (!this.wantFds) return this.#finish();
        this.#state = 'fds';
        return {};
      }
      if (l.startsWith('REJECTED')) throw new AuthError(`the peer refused EXTERNAL authentication as uid ${this.uid} (it offers: ${l.slice(8).trim() || 'nothing'})`);
      throw new AuthError(`unexpected authentication reply '${printable(l)}'`);
    }
    if (this.#state === 'fds') {
      if (l === 'AGREE_UNIX_FD') this.#unixFds = true;
      else if (!l.startsWith('ERROR')) throw new AuthError(`unexpected answer to NEGOTIATE_UNIX_FD: '${printable(l)}'`);
      return this.#finish();
    }
    throw new AuthError(`authentication line after BEGIN: '${printable(l)}'`);
  }

  #finish(): AuthStep {
    this.#state = 'done';
    return { done: { unixFds: this.#unixFds } };
  }
}

export class SaslServer {
  readonly guid = randomBytes(16).toString('hex');
  #authed = false;
  #unixFds = false;

  constructor(private readonly uid: number) {}

  line(l: string): AuthStep {
    const [cmd, ...rest] = l.split(' ');
    switch (cmd) {
      case 'AUTH': {
        if (rest[0] !== 'EXTERNAL') return { send: 'REJECTED EXTERNAL\r\n' };
        const claimed = rest[1] ? Buffer.from(rest[1], 'hex').toString('ascii') : String(this.uid);
        if (claimed !== String(this.uid)) return { send: 'REJECTED EXTERNAL\r\n' };
        this.#authed = true;
        return { send: `OK ${this.guid}\r\n` };
      }
      case 'NEGOTIATE_UNIX_FD':
        if (!this.#authed) return { send: 'ERROR not authenticated\r\n' };
        this.#unixFds = true;
        return { send: 'AGREE_UNIX_FD\r\n' };
      case 'BEGIN':
        if (!this.#authed) throw new AuthError('BEGIN before authentication');
        return { done: { unixFds: this.#unixFds } };
      case 'CANCEL':
      case 'ERROR':
        this.#authed = false;
        return { send: 'REJECTED EXTERNAL\r\n' };
      default:
        return { send: `ERROR unknown command\r\n` };
    }
  }
}

function printable(s: string): string {
  return s.slice(0, 80).replace(/[^\x20-\x7e]/g, '?');
}
