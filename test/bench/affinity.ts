// The CPUs a bench process runs on. The D-Bus comparison runs the peer (the QEMU it plays)
// and this process on CPUs of their own as well as wherever the scheduler puts them: in the
// rig the two otherwise share one vCPU for much of each frame (a unix socket's wake-up is
// a sync wake-up: the woken peer is placed on the waker's CPU), and QEMU's TCG empties its
// software TLB at every address-space switch (target/i386 cpu_x86_update_cr3 → tlb_flush),
// so each switch makes our process refill the translation of every page it touches next.
// A CPU with PCID keeps both processes' entries; the emulator charges that switch to us.
import { readdirSync, readFileSync } from 'node:fs';
import * as libc from '../../ffi/libc.js';

/** The CPUs online (/sys/devices/system/cpu/online: "0-1", "0,2-3"). */
export function onlineCpus(): number[] {
  const list = readFileSync('/sys/devices/system/cpu/online', 'utf8').trim();
  const cpus: number[] = [];
  for (const part of list.split(',')) {
    const [a, b] = part.split('-').map(Number) as [number, number | undefined];
    for (let c = a; c <= (b ?? a); c++) cpus.push(c);
  }
  return cpus;
}

/** Binds every thread of this process to `cpus` (threads made later take their creator's mask). */
export function pinProcess(cpus: readonly number[]): void {
  for (const tid of readdirSync('/proc/self/task').map(Number)) {
    try {
      libc.setAffinity(tid, cpus, `bench thread ${tid}`);
    } catch (e) {
      // A thread that ended since the listing has no mask to set.
      if (!(e instanceof libc.SysError && e.errno === libc.errno.ESRCH)) throw e;
    }
  }
}

/** Runs `fn` with this process bound to `cpus`, then unbinds it (all CPUs online). */
export async function onCpus<T>(cpus: readonly number[], fn: () => Promise<T>): Promise<T> {
  pinProcess(cpus);
  try {
    return await fn();
  } finally {
    pinProcess(onlineCpus());
  }
}
