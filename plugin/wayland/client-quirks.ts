// Clients that cannot take the events of the version they bound. A client that binds
// xdg_wm_base at whatever version the compositor advertises, but whose xdg_toplevel
// listener only has version 1's entries, is aborted by libwayland at the first v4/v5 event
// ("listener function for opcode 2 of xdg_toplevel is NULL"). Debian's
// weston-presentation-shm (Weston 10.0.1, clients/presentation-shm.c) does exactly that:
// it binds with the registry's version and sets only .configure and .close. It runs on
// Weston 10 only because Weston 10 advertises xdg_wm_base v3; Mutter, KWin and wlroots
// compositors advertising v4+ send configure_bounds / wm_capabilities and abort it too.
//
// Every other client gets the events of the version it bound; a listed program gets
// xdg_toplevel's events up to version 3 (what it would see on Weston 10). The program is
// the basename of the client's argv[0] (/proc/PID/cmdline, readable for any process).
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Client } from '../../protocols/runtime.js';

/** Programs whose xdg_toplevel listener lacks configure_bounds and wm_capabilities. */
const XDG_TOPLEVEL_V3_ONLY: ReadonlySet<string> = new Set(['weston-presentation-shm']);

const programs = new WeakMap<Client, string | null>();

/** The basename of the client's argv[0], or null when it cannot be read (it exited, another namespace). */
export function clientProgram(client: Client): string | null {
  const known = programs.get(client);
  if (known !== undefined) return known;
  let name: string | null = null;
  try {
    const argv0 = readFileSync(`/proc/${client.credentials().pid}/cmdline`, 'latin1').split('\0')[0] ?? '';
    name = argv0 ? basename(argv0) : null;
  } catch {
    name = null;
  }
  programs.set(client, name);
  return name;
}

/** The xdg_toplevel version whose events the client can take: the bound one, capped at 3 for a listed program. */
export function xdgToplevelEventVersion(client: Client, bound: number): number {
  const program = clientProgram(client);
  return program !== null && XDG_TOPLEVEL_V3_ONLY.has(program) ? Math.min(bound, 3) : bound;
}
