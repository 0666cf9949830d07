// Checks a real client's WAYLAND_DEBUG=client log for what the compositor owes it by the
// protocol, the bookkeeping a client builds on (mpv's wlshm keeps a free list filled by
// wl_buffer.release and crashed at exit when one buffer came back twice):
//  - wl_buffer.release only for a buffer attached and committed since its last release;
//  - one wl_callback.done per wl_callback;
//  - one of presented / discarded per wp_presentation_feedback.
// Object ids are reused once deleted: a `new id` (or the buffer's destroy) starts afresh.

const STAMP = /\[\s*\d+\.\d+\]\s/;
const REQUEST = /^\[\s*[\d.]+\]\s+-> (\w+)@(\d+)\.(\w+)\((.*)\)\s*$/;
const EVENT = /^\[\s*[\d.]+\]\s+(\w+)@(\d+)\.(\w+)\((.*)\)\s*$/;

/** What the trace shows the compositor got wrong (empty: nothing), each with its line number. */
export function clientTraceViolations(log: string): string[] {
  const out: string[] = [];
  const attached = new Map<number, number | null>(); // surface -> pending buffer (null: detach)
  const busy = new Map<number, boolean>(); // buffer -> attached+committed, not yet released
  const done = new Set<string>(); // "interface@id" of callbacks/feedbacks already completed
  const lines = log.split('\n');
  lines.forEach((raw, i) => {
    // mpv's status line ends without a newline: a trace line may follow it on the same line.
    const at = raw.search(STAMP);
    if (at < 0) return;
    const line = raw.slice(at);
    let m = REQUEST.exec(line);
    if (m) {
      const [, iface, idText, req, args] = m;
      const id = +idText!;
      for (const n of args!.matchAll(/new id (\w+)@(\d+)/g)) done.delete(`${n[1]}@${n[2]}`);
      if (iface === 'wl_surface' && req === 'attach') {
        const b = /wl_buffer@(\d+)/.exec(args!);
        attached.set(id, b ? +b[1]! : null);
      } else if (iface === 'wl_surface' && req === 'commit') {
        const b = attached.get(id);
        if (b !== undefined && b !== null) busy.set(b, true);
        attached.delete(id);
      } else if (iface === 'wl_buffer' && req === 'destroy') {
        busy.delete(id);
      }
      return;
    }
    m = EVENT.exec(line);
    if (!m) return;
    const [, iface, idText, ev] = m;
    const id = +idText!;
    const key = `${iface}@${id}`;
    if (iface === 'wl_buffer' && ev === 'release') {
      if (!busy.get(id)) out.push(`line ${i + 1}: ${key}.release() for a buffer not attached and committed since its last release`);
      busy.set(id, false);
    } else if ((iface === 'wl_callback' && ev === 'done') || (iface === 'wp_presentation_feedback' && (ev === 'presented' || ev === 'discarded'))) {
      if (done.has(key)) out.push(`line ${i + 1}: ${key}.${ev}() after it was already completed`);
      done.add(key);
    }
  });
  return out;
}
