// zxdg_decoration_manager_v1 for a kiosk: the toplevel is fullscreen and nobody draws
// decorations. Clients are told the mode is server-side (as cage does): they draw none,
// and the compositor chooses to draw none either. Errors as the protocol defines them.
import type { Display, Global } from '../../protocols/runtime.js';
import { ProtocolViolation } from '../../protocols/runtime.js';
import { ZxdgDecorationManagerV1, ZxdgToplevelDecorationV1Error, ZxdgToplevelDecorationV1Mode } from '../../protocols/generated/xdg_decoration_unstable_v1.js';
import { toplevelOf } from './xdg-shell.js';

export function createDecorationGlobal(display: Display): Global<ZxdgDecorationManagerV1> {
  return ZxdgDecorationManagerV1.global(display, 1, (id) => {
    id.create({
      destroy() {},
      getToplevelDecoration(_res, did, toplevelRes) {
        const t = toplevelOf(toplevelRes);
        const orphaned = () => toplevelRes.destroyed;
        // Answer any mode request the same way: server-side, with a new configure to apply it.
        const answer = () => {
          if (orphaned()) throw new ProtocolViolation(d, ZxdgToplevelDecorationV1Error.ORPHANED, 'its xdg_toplevel was destroyed before the decoration object');
          d.sendConfigure(ZxdgToplevelDecorationV1Mode.SERVER_SIDE);
          t.reconfigure();
        };
        const d = did.create({
          destroy() {
            t.decorated = false;
          },
          setMode: () => answer(),
          unsetMode: () => answer(),
        });
        if (t.decorated) throw new ProtocolViolation(d, ZxdgToplevelDecorationV1Error.ALREADY_CONSTRUCTED, `${toplevelRes} already has a decoration object`);
        if (t.surface.buffer) throw new ProtocolViolation(d, ZxdgToplevelDecorationV1Error.UNCONFIGURED_BUFFER, `${toplevelRes} already has a buffer; create the decoration object before the first commit with a buffer`);
        t.decorated = true;
        answer();
      },
    });
  });
}
