// Conveniences over the client runtime that need the generated wayland core classes
// (client-runtime.ts itself knows no protocol): an async roundtrip (wl_display.sync, the
// Node loop keeps running while the compositor answers) and binding globals from the
// registry with version caps.
//
// Ownership: the wl_callback of a roundtrip is destroyed when `done` arrives (or with the
// connection); bound globals and the registry belong to the caller's connection.
import { Connection, Proxy, type ProxyClass } from './client-runtime.js';
import { WlDisplay, WlRegistry } from './generated/client/wayland.js';

/** Resolves when the compositor has handled everything sent before; rejects if the connection ends first. */
export function roundtrip(conn: Connection): Promise<void> {
  return new Promise((resolve, reject) => {
    if (conn.closed) return reject(new Error('roundtrip: the Wayland connection is closed'));
    const onClosed = (r: { message: string }) => reject(new Error(`roundtrip: ${r.message}`));
    conn.once('closed', onClosed);
    const cb = conn.display(WlDisplay).sync();
    cb.on({
      done: () => {
        conn.off('closed', onClosed);
        cb.destroyProxy();
        resolve();
      },
    });
  });
}

export interface AdvertisedGlobal {
  name: number;
  interface: string;
  version: number;
}

/** What to bind: interface name → [generated class, highest version we speak]. */
export type GlobalWants = Record<string, readonly [ProxyClass, number]>;
export type BoundGlobals<W extends GlobalWants> = {
  [K in keyof W]?: W[K][0] extends ProxyClass<infer P> ? P : never;
};

/**
 * Gets the registry, waits one roundtrip for the globals, binds the first global of each
 * wanted interface at min(advertised, cap). Missing ones are simply absent from the result.
 */
export async function bindGlobals<W extends GlobalWants>(
  conn: Connection,
  wants: W,
): Promise<BoundGlobals<W> & { registry: WlRegistry; advertised: AdvertisedGlobal[] }> {
  const registry = conn.display(WlDisplay).getRegistry();
  const advertised: AdvertisedGlobal[] = [];
  registry.on({
    global: (name, iface, version) => advertised.push({ name, interface: iface, version }),
    globalRemove: (name) => {
      const i = advertised.findIndex((g) => g.name === name);
      if (i >= 0) advertised.splice(i, 1);
    },
  });
  await roundtrip(conn);
  const out: Record<string, Proxy> = {};
  for (const [iface, [cls, cap]] of Object.entries(wants)) {
    const g = advertised.find((a) => a.interface === iface);
    if (g) out[iface] = registry.bind(g.name, cls, Math.min(g.version, cap));
  }
  return Object.assign(out as BoundGlobals<W>, { registry, advertised });
}
