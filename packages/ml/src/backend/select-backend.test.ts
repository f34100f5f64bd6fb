import { describe, expect, it } from 'vitest';

import { currentBackend, initBackend, parseBackendRequest } from './select-backend.js';

async function importable(packageName: string): Promise<boolean> {
  try {
    await import(packageName);
    return true;
  } catch {
    return false;
  }
}

describe('backend selection', () => {
  it('names the setting and the allowed values for a bad NS_BACKEND', () => {
    expect(() => parseBackendRequest('gpu')).toThrow('NS_BACKEND: expected one of auto|tensorflow|wasm|cpu, got "gpu"');
    expect(parseBackendRequest(undefined)).toBe('auto');
    expect(parseBackendRequest(' WASM ')).toBe('wasm');
  });

  it('tries tfjs-node-gpu, then tfjs-node, then wasm, and logs one line saying why', async () => {
    const tensorflowPresent =
      (await importable('@tensorflow/tfjs-node-gpu')) || (await importable('@tensorflow/tfjs-node'));
    if (!tensorflowPresent) {
      await expect(initBackend({ request: 'tensorflow', log: () => undefined })).rejects.toThrow(
        /NS_BACKEND=tensorflow: no backend could start: @tensorflow\/tfjs-node-gpu unavailable \(.+\); @tensorflow\/tfjs-node unavailable/,
      );
      expect(currentBackend()).toBeUndefined();
    }
    const lines: string[] = [];
    const choice = await initBackend({ request: 'auto', log: (line) => lines.push(line) });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      new RegExp(`^backend=${choice.backend} native=${choice.native} threads=\\d+ source=\\S+ reason=`),
    );
    if (!tensorflowPresent) {
      expect(choice.backend).toBe('wasm');
      expect(lines[0]).toContain('@tensorflow/tfjs-node-gpu unavailable');
      if (process.env['NS_NATIVE_KERNELS'] === '0') {
        // Without the addon, plain wasm still trains, and the log says why.
        expect(choice.native).toBe(false);
        expect(lines[0]).toContain('native kernels unavailable: disabled by NS_NATIVE_KERNELS=0');
      }
    }
    await expect(initBackend({ request: 'cpu' })).rejects.toThrow(`cannot switch to cpu in the same process`);
    expect(await initBackend({ request: 'auto' })).toBe(choice);
  });
});
