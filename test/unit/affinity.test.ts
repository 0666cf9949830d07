// libc.setAffinity (sched_setaffinity) on the real kernel, and the bench's binding of a whole
// process to CPUs (test/bench/affinity.ts), which the D-Bus comparison uses to run the
// peer and this process on CPUs of their own.
import { describe, it, expect } from 'vitest';
import { spawn } from 'node:child_process';
import { cpus } from 'node:os';
import { readFileSync, readdirSync } from 'node:fs';
import * as libc from '../../ffi/libc.js';
import { onCpus, onlineCpus } from '../bench/affinity.js';

const allowed = (path: string) => /^Cpus_allowed_list:\s+(\S+)$/m.exec(readFileSync(path, 'utf8'))?.[1];
const online = readFileSync('/sys/devices/system/cpu/online', 'utf8').trim();

describe('CPU affinity', () => {
  it('binds another process to one CPU and back to all, as /proc shows', () => {
    const child = spawn('sleep', ['30']);
    try {
      libc.setAffinity(child.pid!, [0], 'sleep');
      expect(allowed(`/proc/${child.pid}/status`)).toBe('0');
      libc.setAffinity(child.pid!, onlineCpus(), 'sleep');
      expect(allowed(`/proc/${child.pid}/status`)).toBe(online);
    } finally {
      child.kill();
    }
  });

  it('names the thread and the reason when it cannot', () => {
    // A pid above pid_max names no thread.
    expect(() => libc.setAffinity(0x3fffffff, [0], 'thread 1073741823')).toThrow(/sched_setaffinity\(thread 1073741823\) failed: ESRCH/);
    expect(() => libc.setAffinity(0, [libc.CPU_SETSIZE], 'this thread')).toThrow(/this thread: CPU 1024 is not one of 0\.\.1023/);
    expect(() => libc.setAffinity(0, [-1])).toThrow(RangeError);
  });

  it('onlineCpus lists the CPUs the kernel has online', () => {
    expect(onlineCpus()).toHaveLength(cpus().length);
  });

  it('onCpus binds every thread of this process for the run, then unbinds them', async () => {
    const masks = () => readdirSync('/proc/self/task').map((t) => allowed(`/proc/self/task/${t}/status`));
    const during = await onCpus([0], async () => masks());
    expect(during.length).toBeGreaterThan(1); // node's own threads as well as the main one
    expect(new Set(during)).toEqual(new Set(['0']));
    expect(new Set(masks())).toEqual(new Set([online]));
  });
});
