// wl_data_device_manager v3: the clipboard (selection) within the seat. Minimal and by
// the protocol's rules: a client sets the selection from a wl_data_source, the focused
// client's data devices get a wl_data_offer of its MIME types, and a receive on the
// offer is handed to the source as a send with the same fd. Drag-and-drop (start_drag)
// is drag.ts's, on the seat's pointer grab; without a seat (`drags` not given) or without
// a held button quoting a valid serial, start_drag cancels the drag at once.
//
// Ownership: fds of receive requests are ours and closed after they are passed on (the
// event carries a dup).
import * as libc from '../../ffi/libc.js';
import type { Client, Display, Global } from '../../protocols/runtime.js';
import { ProtocolViolation } from '../../protocols/runtime.js';
import {
  WlDataDeviceError,
  WlDataDeviceManager,
  WlDataOffer,
  WlDataOfferError,
  WlDataSourceError,
  type WlDataDevice,
  type WlDataSource,
} from '../../protocols/generated/wayland.js';
import { Surface } from './surface.js';
import { ALL_ACTIONS, DRAG_ICON_ROLE, Drag, type DragSeat, type DragSource } from './drag.js';

type Source = DragSource;

/** The seat's clipboard; the compositor says which client has the keyboard focus. */
export class DataDevices {
  readonly global: Global<WlDataDeviceManager>;
  readonly #devices = new Set<WlDataDevice>();
  readonly #sources = new WeakMap<WlDataSource, Source>();
  #selection: Source | null = null;
  #focus: Client | null = null;
  /** The drag in progress (from start_drag until its drop is finished or it is cancelled). */
  #drag: Drag | null = null;

  constructor(
    display: Display,
    private readonly seat: DragSeat | null = null,
  ) {
    this.global = WlDataDeviceManager.global(display, 3, (id) => {
      id.create({
        createDataSource: (_res, sid) => {
          const src: Source = { resource: null as unknown as WlDataSource, mimeTypes: [], dnd: false, actions: 0 };
          src.resource = sid.create({
            offer(_r, mime) {
              src.mimeTypes.push(mime);
            },
            setActions(r, actions) {
              if ((actions & ~ALL_ACTIONS) !== 0) throw new ProtocolViolation(r, WlDataSourceError.INVALID_ACTION_MASK, `action mask 0x${actions.toString(16)} has bits outside copy|move|ask`);
              src.dnd = true;
              src.actions = actions;
            },
          });
          this.#sources.set(src.resource, src);
          src.resource.onDestroy(() => {
            if (this.#selection === src) this.#setSelection(null);
          });
        },
        getDataDevice: (_res, did) => {
          const dev = did.create({
            startDrag: (_r, source, origin, icon, serial) => {
              const iconSurface = icon ? Surface.of(icon) : null;
              if (iconSurface && iconSurface.role !== null && iconSurface.role !== DRAG_ICON_ROLE) throw new ProtocolViolation(dev, WlDataDeviceError.ROLE, `${icon} already has the role ${iconSurface.role}`);
              if (iconSurface) iconSurface.role = DRAG_ICON_ROLE;
              this.#startDrag(dev, source ? (this.#sources.get(source) ?? null) : null, Surface.of(origin), iconSurface, serial);
            },
            setSelection: (_r, source) => {
              const src = source ? this.#sources.get(source) : null;
              if (src?.dnd) throw new ProtocolViolation(source!, WlDataSourceError.INVALID_SOURCE, 'a drag-and-drop source (set_actions) cannot be the selection');
              this.#setSelection(src ?? null);
            },
          });
          this.#devices.add(dev);
          dev.onDestroy(() => this.#devices.delete(dev));
          if (dev.client === this.#focus) this.#offerTo(dev);
        },
      });
    });
  }

  /** The drag whose button is still held (pointer input goes to it), or null. */
  get dragging(): Drag | null {
    return this.#drag && !this.#drag.dropped ? this.#drag : null;
  }

  /** The icon to draw at the pointer (a drag in progress with an icon surface), or null. */
  get dragIcon(): Surface | null {
    const i = this.dragging?.icon ?? null;
    return i && !i.resource.destroyed ? i : null;
  }

  /**
   * start_drag: only from the pointer's implicit grab on a surface of the same client, with
   * an input serial that client was given, and one drag at a time; otherwise cancelled.
   */
  #startDrag(dev: WlDataDevice, src: Source | null, origin: Surface, icon: Surface | null, serial: number): void {
    const seat = this.seat;
    const grab = seat?.pointerGrab() ?? null;
    // A dropped drag still waiting for its target's finish does not block the next one.
    const ok = seat && !this.dragging && grab && grab.resource.client === dev.client && origin.resource.client === dev.client && seat.validSerial(dev.client, serial);
    if (!ok || (src && src.resource.destroyed)) {
      if (src && !src.resource.destroyed) src.resource.sendCancelled();
      return;
    }
    const originGone = (): void => drag.cancel();
    const drag: Drag = new Drag(seat, dev.client, src, origin, icon, (c) => [...this.#devices].filter((d) => d.client === c && !d.destroyed), (d) => {
      origin.off('destroy', originGone);
      if (this.#drag === d) this.#drag = null;
      seat.changed();
    });
    this.#drag = drag;
    origin.once('destroy', originGone);
    seat.releasePointer();
    seat.changed();
  }

  /** The client with the keyboard focus gets the selection (and every later change of it). */
  focus(client: Client | null): void {
    if (client === this.#focus) return;
    this.#focus = client;
    for (const d of this.#devices) if (d.client === client) this.#offerTo(d);
  }

  #setSelection(src: Source | null): void {
    const old = this.#selection;
    if (old === src) return;
    this.#selection = src;
    if (old && !old.resource.destroyed) old.resource.sendCancelled();
    for (const d of this.#devices) if (d.client === this.#focus) this.#offerTo(d);
  }

  /** Sends the current selection to one data device: a new offer with its types, or null. */
  #offerTo(dev: WlDataDevice): void {
    const src = this.#selection;
    if (!src || src.resource.destroyed) {
      dev.sendSelection(null);
      return;
    }
    const offer = WlDataOffer.create(dev.client, dev.version, 0, {
      accept() {},
      receive(_r, mime, fd) {
        try {
          if (!src.resource.destroyed && src.mimeTypes.includes(mime)) src.resource.sendSend(mime, fd);
        } finally {
          libc.close(fd, 'wl_data_offer.receive fd');
        }
      },
      finish(r) {
        throw new ProtocolViolation(r, WlDataOfferError.INVALID_FINISH, 'finish is for drag-and-drop offers; this is the selection');
      },
      setActions(r) {
        throw new ProtocolViolation(r, WlDataOfferError.INVALID_OFFER, 'set_actions is for drag-and-drop offers; this is the selection');
      },
    });
    dev.sendDataOffer(offer);
    for (const m of src.mimeTypes) offer.sendOffer(m);
    dev.sendSelection(offer);
  }
}
