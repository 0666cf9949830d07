// Pointer drag-and-drop for the kiosk's seat (wl_data_device.start_drag), as far as one
// seat with one shown window needs it. A drag starts from the pointer's implicit grab: a
// button held on a surface of the client, and the serial of an input event that client was
// given. While it lasts the wl_pointer has left (Weston and wlroots do the same), the
// surface under the pointer gets wl_data_device.enter/motion/leave with a fresh
// wl_data_offer of the source's MIME types and actions, the icon surface is drawn at the
// pointer (the compositor's scene asks `icon`), and the button's release drops: drop and
// dnd_drop_performed when the target accepted a type and an action was chosen, else the
// source is cancelled. Touch drags are not started (no touch grab): cancelled at once.
// Bad requests on the offers end in wl_data_offer's protocol errors.
//
// Ownership: fds of receive requests are ours and closed after they are passed on.
import * as libc from '../../ffi/libc.js';
import type { Client } from '../../protocols/runtime.js';
import { ProtocolViolation } from '../../protocols/runtime.js';
import { WlDataDeviceManagerDndAction as Action, WlDataOffer, WlDataOfferError, type WlDataDevice, type WlDataSource } from '../../protocols/generated/wayland.js';
import type { Surface } from './surface.js';
import type { PointerTarget } from './pointer.js';

export const ALL_ACTIONS = Action.COPY | Action.MOVE | Action.ASK;
export const DRAG_ICON_ROLE = 'wl_data_device-icon';

/** A wl_data_source as the data devices keep it. */
export interface DragSource {
  resource: WlDataSource;
  mimeTypes: string[];
  /** set_actions was called (a drag-and-drop source); its actions. */
  dnd: boolean;
  actions: number;
}

/** What a drag needs of the seat and the compositor. */
export interface DragSeat {
  /** Whether the seat gave `client` this input serial. */
  validSerial(client: Client, serial: number): boolean;
  /** The surface the pointer's held button went down on (null: no button held). */
  pointerGrab(): Surface | null;
  /** Takes the wl_pointer focus away for the drag (leave); the seat restores it after. */
  releasePointer(): void;
  serial(): number;
  time(): number;
  /** A drag began or ended, or its icon changed (the scene and the pointer focus follow). */
  changed(): void;
}

/** The action chosen from what the source and the target offer (wlroots' rule): the target's preferred one, else the first in common. */
export function chooseAction(sourceActions: number, offerActions: number, preferred: number): number {
  const both = sourceActions & offerActions;
  if (both === 0) return Action.NONE;
  if (preferred & both) return preferred;
  for (const a of [Action.COPY, Action.MOVE, Action.ASK]) if (both & a) return a;
  return Action.NONE;
}

interface Target {
  surface: Surface;
  /** The pointer's last position on it (motion is sent on change only). */
  x: number;
  y: number;
  devices: WlDataDevice[];
  offer: WlDataOffer | null;
  accepted: string | null;
  action: number;
  offerActions: number;
  preferred: number;
}

/** One drag in progress, from start_drag to the drop's finish (or its cancel). */
export class Drag {
  #target: Target | null = null;
  /** Dropped on a target that accepted: waiting for its finish. */
  #dropped = false;
  #ended = false;

  constructor(
    private readonly seat: DragSeat,
    readonly client: Client,
    readonly source: DragSource | null,
    readonly origin: Surface,
    readonly icon: Surface | null,
    private readonly devicesOf: (c: Client) => WlDataDevice[],
    private readonly onEnd: (d: Drag) => void,
  ) {
    source?.resource.onDestroy(() => this.#sourceGone());
  }

  get dropped(): boolean {
    return this.#dropped;
  }

  /** The pointer is over `t` now (null: over no surface). */
  motion(t: PointerTarget | null): void {
    if (this.#ended || this.#dropped) return;
    // Without a source only the drag's own client is told (the protocol's rule).
    const to = t && !t.surface.resource.destroyed && (this.source || t.surface.resource.client === this.client) ? t : null;
    const cur = this.#target;
    if (cur && to && cur.surface === to.surface) {
      // The scene is refreshed on every commit: only a real move is news.
      if (cur.x === to.x && cur.y === to.y) return;
      cur.x = to.x;
      cur.y = to.y;
      const time = this.seat.time();
      for (const d of cur.devices) if (!d.destroyed) d.sendMotion(time, to.x, to.y);
      return;
    }
    if (cur) this.#leave(cur);
    this.#target = to ? this.#enter(to) : null;
  }

  #enter(t: PointerTarget): Target {
    const devices = this.devicesOf(t.surface.resource.client);
    const target: Target = { surface: t.surface, x: t.x, y: t.y, devices, offer: null, accepted: null, action: Action.NONE, offerActions: 0, preferred: 0 };
    const serial = this.seat.serial();
    for (const d of devices) {
      // One offer per client (its first data device); its other devices hear of no offer.
      const offer = this.source && !target.offer ? this.#offer(d, target) : null;
      if (offer) target.offer = offer;
      d.sendEnter(serial, t.surface.resource, t.x, t.y, offer);
    }
    return target;
  }

  #leave(t: Target): void {
    for (const d of t.devices) if (!d.destroyed) d.sendLeave();
    if (this.source && !this.source.resource.destroyed && t.accepted !== null) this.source.resource.sendTarget(null);
  }

  /** A new offer of the source's types for `dev`, sent before the enter that carries it. */
  #offer(dev: WlDataDevice, t: Target): WlDataOffer {
    const src = this.source!;
    const offer = WlDataOffer.create(dev.client, dev.version, 0, {
      accept: (_r, _serial, mime) => {
        if (this.#target !== t || this.#dropped) return;
        t.accepted = mime;
        if (!src.resource.destroyed) src.resource.sendTarget(mime);
      },
      receive: (_r, mime, fd) => {
        try {
          if (!src.resource.destroyed && src.mimeTypes.includes(mime)) src.resource.sendSend(mime, fd);
        } finally {
          libc.close(fd, 'wl_data_offer.receive fd');
        }
      },
      finish: (r) => {
        if (!this.#dropped || this.#target !== t) throw new ProtocolViolation(r, WlDataOfferError.INVALID_FINISH, 'finish before the drop');
        if (t.accepted === null || t.action === Action.NONE) throw new ProtocolViolation(r, WlDataOfferError.INVALID_FINISH, 'finish without an accepted type and a chosen action');
        if (!src.resource.destroyed && src.resource.version >= 3) src.resource.sendDndFinished();
        this.#end();
      },
      setActions: (r, actions, preferred) => {
        if ((actions & ~ALL_ACTIONS) !== 0) throw new ProtocolViolation(r, WlDataOfferError.INVALID_ACTION_MASK, `action mask 0x${actions.toString(16)} has bits outside copy|move|ask`);
        if (preferred !== Action.NONE && ![Action.COPY, Action.MOVE, Action.ASK].includes(preferred)) {
          throw new ProtocolViolation(r, WlDataOfferError.INVALID_ACTION, `preferred action 0x${preferred.toString(16)} is not one action`);
        }
        // After the drop too: that is how a target answers an `ask` (GTK sends it before finish).
        t.offerActions = actions;
        t.preferred = preferred;
        this.#choose(t);
      },
    });
    offer.onDestroy(() => {
      // Destroyed after the drop without a finish: the transfer is off.
      if (this.#target === t && this.#dropped && !this.#ended) this.cancel();
    });
    dev.sendDataOffer(offer);
    for (const m of new Set(src.mimeTypes)) offer.sendOffer(m);
    if (offer.version >= 3) offer.sendSourceActions(src.actions as Action);
    // Version 1 and 2 offers have no actions: copy, as the protocol says.
    if (offer.version < 3) {
      t.offerActions = Action.COPY;
      this.#choose(t);
    }
    return offer;
  }

  #choose(t: Target): void {
    const src = this.source!;
    // A source without set_actions (older clients) offers copy, as wlroots takes it.
    const a = chooseAction(src.resource.version >= 3 && src.dnd ? src.actions : Action.COPY, t.offerActions, t.preferred);
    if (a === t.action) return;
    t.action = a;
    if (t.offer && !t.offer.destroyed && t.offer.version >= 3) t.offer.sendAction(a);
    if (!src.resource.destroyed && src.resource.version >= 3) src.resource.sendAction(a);
  }

  /** The button was released: drop on a target that accepted, else cancel. */
  release(): void {
    if (this.#ended || this.#dropped) return;
    const t = this.#target;
    const src = this.source;
    if (t && (!src || (t.accepted !== null && t.action !== Action.NONE))) {
      for (const d of t.devices) if (!d.destroyed) d.sendDrop();
      if (src && !src.resource.destroyed && src.resource.version >= 3) src.resource.sendDndDropPerformed();
      // The session on the surface ends (Weston sends leave after drop too).
      for (const d of t.devices) if (!d.destroyed) d.sendLeave();
      if (!src) return this.#end();
      this.#dropped = true;
      // The pointer is free again while the target finishes.
      this.seat.changed();
      return;
    }
    this.cancel();
  }

  /** Ends the drag without a drop: the target is left, the source cancelled. */
  cancel(): void {
    if (this.#ended) return;
    if (this.#target && !this.#dropped) this.#leave(this.#target);
    if (this.source && !this.source.resource.destroyed) this.source.resource.sendCancelled();
    this.#end();
  }

  #sourceGone(): void {
    if (this.#ended) return;
    if (this.#target && !this.#dropped) for (const d of this.#target.devices) if (!d.destroyed) d.sendLeave();
    this.#end();
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.onEnd(this);
  }
}
