// The one place that lists and opens DRM cards: by path or by search, directly (root, or a
// node we may open) or through the seat session (seatd/logind: no root, and the session
// makes us DRM master). The modes say which card they want with a predicate (a connector
// the config names, a connected display, any card with atomic KMS); the search tries
// /dev/dri/card* in number order and names every card it passed over and why.
//
// Ownership: a Card owns the KmsDevice it opened and, on a seat, the fd the session gave
// (handed back with session.closeDevice in close()). A Card made from an fd or KmsDevice
// the caller already had (adopt) owns neither unless told so.
import { existsSync, readdirSync } from 'node:fs';
import { KmsDevice, KmsOpenError, findCardByDriver } from '../kms/device.js';
import type { SeatSession } from './session.js';

/** Why a card is not the one wanted (null: it is). */
export type CardWanted = (dev: KmsDevice) => string | null;

export interface CardRequest {
  /** A card node: only this one is tried. */
  path?: string;
  /** Open through this seat session (which makes us master) instead of directly. */
  session?: SeatSession;
  /** Take DRM master when opening directly (default true). */
  master?: boolean;
  /** Which card is wanted when searching, and what that means for the message if none is. */
  want?: { test: CardWanted; what: string };
}

/** /dev/dri/card* in number order. */
export function cardNodes(): string[] {
  let names: string[] = [];
  try {
    names = readdirSync('/dev/dri').filter((n) => /^card\d+$/.test(n));
  } catch {
    /* no /dev/dri */
  }
  return names.sort((a, b) => Number(a.slice(4)) - Number(b.slice(4))).map((n) => `/dev/dri/${n}`);
}

/** A card that has a display connector named in `connectors`. */
export function hasConnector(connectors: readonly string[]): { test: CardWanted; what: string } {
  return {
    what: `any of the connectors ${connectors.join(', ')}`,
    test: (dev) => {
      const names = dev.connectors.filter((c) => !c.writeback).map((c) => c.name);
      return connectors.some((c) => names.includes(c)) ? null : `${dev.driver.name}: ${names.join(', ') || 'no connectors'}`;
    },
  };
}

/** A card with a connected display. */
export const hasConnectedDisplay: { test: CardWanted; what: string } = {
  what: 'a connected display',
  test: (dev) => (dev.connectors.some((c) => !c.writeback && c.connection === 'connected') ? null : 'nothing connected'),
};

export class Card {
  #closed = false;
  /** The cards a search passed over before this one, each with a short reason ('/dev/dri/card0: no atomic KMS'). */
  skipped: readonly string[] = [];

  private constructor(
    readonly dev: KmsDevice,
    readonly path: string,
    private readonly seat: { session: SeatSession; fd: number } | null,
    private readonly owned: boolean,
  ) {}

  /** The session that opened this card, if any. */
  get session(): SeatSession | null {
    return this.seat?.session ?? null;
  }

  /** Opens the card `req` asks for; throws naming every card tried and why it was passed over. */
  static open(req: CardRequest = {}): Card {
    // A named card: its own error (KmsOpenError, the seat's) names the path and the fix.
    if (req.path) return Card.#openPath(req.path, req);
    const paths = searchPaths();
    const tried: string[] = [];
    const skipped: string[] = [];
    for (const path of paths) {
      const card = Card.#try(path, req, tried, skipped);
      if (card) {
        card.skipped = skipped;
        return card;
      }
    }
    const how = req.session ? ` through seat ${req.session.name}` : '';
    const what = req.want ? ` with ${req.want.what}` : ' with atomic modesetting';
    const fix = 'pass the card node (--device /dev/dri/cardN, or "device" in the config)';
    throw new Error(`no KMS card${what} could be opened${how}: ${tried.join('; ') || 'no /dev/dri/card* nodes'}; ${fix}`);
  }

  /** An fd or device the caller already has (a DRM lease, a host compositor's fd): not closed by us unless `takeOwnership`. */
  static adopt(from: { fd: number; name?: string; takeOwnership?: boolean } | KmsDevice): Card {
    if (from instanceof KmsDevice) return new Card(from, from.path, null, false);
    const dev = KmsDevice.adopt(from.fd, { name: from.name, takeOwnership: from.takeOwnership, master: false });
    return new Card(dev, dev.path, null, true);
  }

  /** Opens `path` directly or through the seat; throws what the open threw. */
  static #openPath(path: string, req: CardRequest): Card {
    if (!req.session) return new Card(KmsDevice.open(path, { master: req.master ?? true }), path, null, true);
    const fd = req.session.openDevice(path);
    try {
      return new Card(KmsDevice.adopt(fd, { name: path, master: false }), path, { session: req.session, fd }, true);
    } catch (e) {
      req.session.closeDevice(fd);
      throw e;
    }
  }

  /** One card of a search: the Card, or null with why it was passed over noted. */
  static #try(path: string, req: CardRequest, tried: string[], skipped: string[]): Card | null {
    let card: Card | null = null;
    try {
      card = Card.#openPath(path, req);
      const why = req.want?.test(card.dev) ?? null;
      if (why === null) return card;
      tried.push(`${path} (${why})`);
      skipped.push(`${path}: ${why}`);
    } catch (e) {
      // A gap in the numbering is no news; anything else is named.
      if (!(e instanceof KmsOpenError && e.reason === 'not-found')) {
        tried.push(`${path}: ${(e as Error).message}`);
        skipped.push(`${path}: ${e instanceof KmsOpenError ? (e.reason === 'no-atomic' ? 'no atomic KMS' : e.reason) : (e as Error).message}`);
      }
    }
    void card?.close();
    return null;
  }

  /** Closes the device (and hands a seat fd back); idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.owned) await this.dev.close();
    if (this.seat) this.seat.session.closeDevice(this.seat.fd);
  }
}

/** Cards to search: the nodes there are, and vkms's (found by driver) last for a rig without numbering. */
function searchPaths(): string[] {
  const nodes = cardNodes();
  const vkms = findCardByDriver('vkms');
  if (vkms && existsSync(vkms) && !nodes.includes(vkms)) nodes.push(vkms);
  return nodes;
}
