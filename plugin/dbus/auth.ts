// The D-Bus authentication handshake (the specification's "Authentication Protocol"):
// line-based SASL before the first message. Both sides, as pure state machines the
// transport feeds line by line: the client (our listener and bus connections) and the
// server (QEMU's role on a listener socket; the tests play QEMU with it).
//
// The client sends EXTERNAL with no identity of its own, then an empty DATA, NEGOTIATE_UNIX_FD
// and BEGIN pipelined (as sd-bus does): the server then takes the uid it sees on the
// socket (SO_PEERCRED). Claiming our euid instead fails wherever the socket was made by
// another user than the one using it: a kiosk running as an unprivileged user with a
// socket root made and QEMU (as root) took through QMP add_client; the server sees root.
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


export class SaslClient {
  #state: 'ok' | 'fds' | 'done' = 'ok';
  #unixFds = false;

  constructor(
    private readonly uid: number,
    private readonly wantFds: boolean,
  ) {}

  /** What the client sends first (the NUL byte, AUTH, and the rest pipelined). */
  start(): string {
    return `\0AUTH EXTERNAL\r\nDATA\r\n${this.wantFds ? 'NEGOTIATE_UNIX_FD\r\n' : ''}BEGIN\r\n`;
  }

  /** One line from the server (without CRLF). */
  line(l: string): AuthStep {
    if (this.#state === 'ok') {
      // The server's empty challenge to an AUTH without identity: our DATA already answered it.
      if (l === 'DATA' || l.startsWith('DATA ')) return {};
      if (/^OK [0-9a-fA-F]{32}$/.test(l)) {
        if (!this.wantFds) return this.#finish();
        this.#state = 'fds';
        return {};
      }
      if (l.startsWith('REJECTED')) throw new AuthError(`the peer refused EXTERNAL authentication (we are uid ${this.uid}; it offers: ${l.slice(8).trim() || 'nothing'})`);
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
  #waitingData = false;
  #unixFds = false;

  constructor(private readonly uid: number) {}

  line(l: string): AuthStep {
    const [cmd, ...rest] = l.split(' ');
    switch (cmd) {
      case 'AUTH': {
        if (rest[0] !== 'EXTERNAL') return { send: 'REJECTED EXTERNAL\r\n' };
        // No identity given: ask for it (an empty DATA means "the one you see").
        if (!rest[1]) {
          this.#waitingData = true;
          return { send: 'DATA\r\n' };
        }
        return this.#identity(rest[1]);
      }
      case 'DATA':
        if (!this.#waitingData) return { send: 'ERROR unexpected DATA\r\n' };
        this.#waitingData = false;
        return this.#identity(rest[0] ?? '');
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

  /**
   * The client's identity: hex of a uid string, or empty for "the one on the socket". The
   * tests that play QEMU run in one process with the client, so that one is ours.
   */
  #identity(hexUid: string): AuthStep {
    const claimed = hexUid ? Buffer.from(hexUid, 'hex').toString('ascii') : String(this.uid);
    if (claimed !== String(this.uid)) return { send: 'REJECTED EXTERNAL\r\n' };
    this.#authed = true;
    return { send: `OK ${this.guid}\r\n` };
  }
}

function printable(s: string): string {
  return s.slice(0, 80).replace(/[^\x20-\x7e]/g, '?');
}
