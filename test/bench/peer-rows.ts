// The qemu-dbus rows whose QEMU is the bench's own peer (peer-child.ts) in a process of its
// own: our CPU (this process: the listener, the source, the output) and the peer's CPU
// (encoding its calls, reading our answers, writing its guest memory) are measured apart.
//
//   dmabuf   udmabufs scanned out zero-copy, one ScanoutDMABUF (unanswered, as QEMU's) + UpdateDMABUF per frame,
//            paced by our answer (compare with 'udmabuf direct', the same buffers without D-Bus)
//   update   the copy path as QEMU without Unix.Map sends it: every frame's pixels in an
//            Update message ("before Unix.Map")
//   map      the copy path with Unix.Map (QEMU 9.2+): the memfd once, per frame only the
//            rectangle's coordinates ("after"); the pixels are read from the memfd (pread)
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import * as libc from '../../ffi/libc.js';
import { DbusConnection } from '../../plugin/dbus/connection.js';
import { QemuConsoleSource, type QemuConsoleInfo } from '../../plugin/sources/qemu-dbus.js';
import { percentile } from './measure.js';
import { FIRST_FRAME_MS, measureWindow, openOutput, rows, waitFor, withTeardown, type QemuDbusSpec, type Row } from './qemu-dbus.js';

export type PeerMode = 'dmabuf' | 'update' | 'map';
const W = 640;
const H = 480;

interface Mark {
  frames: number;
  answers: number[];
  cpuUs: number;
  bytesOut: number;
}

const NOTES: Record<PeerMode, string> = {
  dmabuf: 'the peer playing QEMU runs in a process of its own (its CPU is the peer row below, not ours); per frame ScanoutDMABUF (the other of two udmabufs; NO_REPLY_EXPECTED, as QEMU sends it) + UpdateDMABUF, the next sent when the UpdateDMABUF is answered (after its flip)',
  update: 'before Unix.Map: the peer (own process) sends the whole 640x480 surface as pixels in an Update message 59.75 times a second (full-frame damage), the next after the answer; copy path',
  map: 'with Unix.Map (QEMU 9.2+): ScanoutMap hands the surface memfd once, then UpdateMap names the damaged rectangle (the whole frame) 59.75 times a second; we pread it from the memfd; copy path',
};

export function runPeerChild(spec: QemuDbusSpec, mode: PeerMode): Promise<Row> {
  return withTeardown(async (t) => {
    const [ours, theirs] = libc.socketpair(libc.AF_UNIX, libc.SOCK_STREAM, 'bench peer');
    const listener = DbusConnection.fromSocket(ours, 'listener');
    t.push('closing the listener', () => listener.close());
    const script = fileURLToPath(new URL('./peer-child.js', import.meta.url));
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, [script, mode, String(W), String(H)], { stdio: ['pipe', 'pipe', 'inherit', theirs] });
    } finally {
      // The child has its own copy (fd 3); ours would keep the connection open past it.
      libc.close(theirs);
    }
    const proc = child;
    const { stdin, stdout } = proc;
    if (!stdin || !stdout) throw new Error('the peer process has no stdin/stdout pipes');
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    t.push('stopping the peer process', async () => {
      stdin.write('stop\n');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      if (proc.exitCode === null) proc.kill('SIGKILL');
    });
    const marks: Mark[] = [];
    const waiting: Array<(m: Mark) => void> = [];
    createInterface({ input: stdout }).on('line', (l) => {
      const m = JSON.parse(l) as Mark;
      const w = waiting.shift();
      if (w) w(m);
      else marks.push(m);
    });
    const nextMark = () => new Promise<Mark>((r) => (marks.length ? r(marks.shift()!) : waiting.push(r)));
    const info: QemuConsoleInfo = { id: 0, path: '/org/qemu/Display1/Console_0', type: 'Graphic', label: 'bench peer', head: 0, width: W, height: H, deviceAddress: '', interfaces: [] };
    const src = new QemuConsoleSource(info, listener, listener, null);
    t.push('closing the source', () => src.close());
    const { out, errors } = openOutput(t, spec);
    out.attach(src, 'native');
    await waitFor(() => out.statsSnapshot().framesPresented > 1 || proc.exitCode !== null, 'first frame from the peer', FIRST_FRAME_MS);
    if (proc.exitCode !== null) throw new Error(`the peer process exited (${proc.exitCode})`);
    let bytes0 = 0;
    const w = await measureWindow(out, spec, src, null, {
      start: () => {
        bytes0 = listener.stats.bytesIn;
        stdin.write('mark\n');
      },
      stop: () => stdin.write('mark\n'),
    });
    const bytesIn = listener.stats.bytesIn - bytes0;
    await nextMark();
    const m = await nextMark();
    const a = [...m.answers].sort((x, y) => x - y);
    const peerMs = m.cpuUs / 1000;
    return rows(w, m.frames, errors, [
      ['guest_frames', m.frames, 'count'],
      ['answer_p50', percentile(a, 50), 'ms'],
      ['answer_p99', percentile(a, 99), 'ms'],
      ['dbus_bytes_in_per_frame', m.frames ? bytesIn / m.frames : null, 'B'],
      ['dbus_bytes_out_per_frame_peer', m.frames ? m.bytesOut / m.frames : null, 'B'],
      ['peer_cpu_per_frame', m.frames ? peerMs / m.frames : null, 'ms'],
      ['peer_cpu_load', m.cpuUs / 10 / w.windowMs, '%'],
      ['note', NOTES[mode], ''],
    ]);
  });
}
