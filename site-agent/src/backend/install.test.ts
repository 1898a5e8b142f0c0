/**
 * Bad input to `backend install native`: each gives a clear message, leaves nothing installed
 * (no `native` folder, no temporary folder), and the agent still trains on the next backend.
 * None of these needs the real 270 MB wheel, pip, npm or a compiler.
 */
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import yazl from 'yazl';
import { NativeInstallError } from '../errors.js';
import { checkBackend } from './check.js';
import { installNative } from './install.js';
import { MANIFEST, nativeDir } from './native-home.js';
import { PINNED_WHEELS } from './pins.js';
import { sha256File } from './wheel.js';

const PINNED = PINNED_WHEELS[0]?.file ?? '';
const home = () => mkdtemp(join(tmpdir(), 'radfed-backends-'));

/** A zip with the members the installer takes, holding junk: right shape, wrong bytes. */
async function fakeWheel(dir: string, file: string): Promise<string> {
  const zip = new yazl.ZipFile();
  for (const name of [
    'tensorflow/libtensorflow_cc.so.2',
    'tensorflow/libtensorflow_framework.so.2',
    'tensorflow/include/tensorflow/c/c_api.h',
  ]) {
    zip.addBuffer(Buffer.from(`not really ${name}\n`), name);
  }
  zip.end();
  const path = join(dir, file);
  await pipeline(zip.outputStream, createWriteStream(path));
  return path;
}

/**
 * A "binding" that loads and registers the `tensorflow` backend, but one with no kernels: the
 * shape of a build against the wrong library, which computes nothing right.
 */
async function brokenBinding(stage: string): Promise<void> {
  const pkg = join(stage, 'node_modules', '@tensorflow', 'tfjs-node');
  await mkdir(pkg, { recursive: true });
  const tfjs = createRequire(import.meta.url).resolve('@tensorflow/tfjs');
  await writeFile(
    join(pkg, 'package.json'),
    JSON.stringify({ name: '@tensorflow/tfjs-node', main: 'index.cjs' }),
  );
  await writeFile(
    join(pkg, 'index.cjs'),
    `const tf = require(${JSON.stringify(tfjs)});\ntf.registerBackend('tensorflow', () => new tf.KernelBackend());\n`,
  );
}

/** Nothing half-installed: no backend, no temporary folder; `before` (a prior install) intact. */
async function expectNothingInstalled(dir: string, before?: string): Promise<void> {
  const left = await readdir(dir);
  expect(left.filter((name) => name.startsWith('.install-'))).toEqual([]);
  if (before === undefined) expect(left).not.toContain('native');
  else expect(existsSync(join(nativeDir(dir), before))).toBe(true);
}

describe('backend install native refuses bad input', () => {
  it('a wheel with the wrong sha256', async () => {
    const dir = await home();
    const wheel = await fakeWheel(dir, PINNED);
    const attempt = installNative({ home: dir, wheel, build: brokenBinding });
    await expect(attempt).rejects.toThrow(NativeInstallError);
    await expect(attempt).rejects.toThrow(
      /has sha256 [0-9a-f]{64}, not the pinned [0-9a-f]{64}.*Download it again/,
    );
    await expectNothingInstalled(dir);
  });

  it('a wheel for another platform, another Python, or the other TensorFlow build', async () => {
    const dir = await home();
    const cases: [string, boolean, RegExp][] = [
      [
        'tensorflow_cpu-2.21.0-cp311-cp311-macosx_12_0_arm64.whl',
        false,
        /built for macosx_12_0_arm64.*this machine is/,
      ],
      ['tensorflow_cpu-2.21.0-cp311-cp311-win_amd64.whl', false, /built for win_amd64/],
      ['tensorflow_cpu-2.21.0-cp311-cp311-manylinux_2_17_aarch64.whl', false, /built for .*\(aarch64\)/],
      [
        'tensorflow_cpu-2.21.0-cp312-cp312-manylinux_2_27_x86_64.whl',
        false,
        /for Python 3\.12.*is not a pinned wheel.*--sha256/,
      ],
      [
        'tensorflow-2.21.0-cp311-cp311-manylinux_2_27_x86_64.whl',
        false,
        /is a tensorflow wheel; .*pass --gpu/,
      ],
      ['tensorflow.tar.gz', false, /not a wheel file name/],
    ];
    for (const [file, gpu, message] of cases) {
      const wheel = await fakeWheel(dir, file);
      await expect(installNative({ home: dir, wheel, gpu, build: brokenBinding })).rejects.toThrow(message);
    }
    // The CUDA build has no pin yet: refused before any download unless the operator gives a hash,
    // and a CPU wheel is not taken for it.
    await expect(installNative({ home: dir, gpu: true, build: brokenBinding })).rejects.toThrow(
      /No tensorflow wheel is pinned.*--sha256 HEX/,
    );
    await expect(
      installNative({
        home: dir,
        wheel: join(dir, PINNED),
        gpu: true,
        sha256: '0'.repeat(64),
        build: brokenBinding,
      }),
    ).rejects.toThrow(/is a tensorflow-cpu wheel; this install needs tensorflow \(the CUDA build/);
    await expectNothingInstalled(dir);
  });

  it('missing build tools, and no pip, each named with what to install', async () => {
    const dir = await home();
    const empty = await mkdtemp(join(tmpdir(), 'radfed-empty-path-'));
    const env = { ...process.env, PATH: empty, CXX: 'no-such-compiler' };
    await expect(installNative({ home: dir, env })).rejects.toThrow(
      /missing a C\+\+ compiler \(no-such-compiler or g\+\+\), make, python3 .*npm .*apt-get install/,
    );
    // With the build replaced (so the tools are not needed) it gets as far as pip, and says so.
    await expect(installNative({ home: dir, env, build: brokenBinding })).rejects.toThrow(
      /pip is not installed \(install python3-pip, or .* pass --wheel FILE\)/,
    );
    await expectNothingInstalled(dir);
  });

  it('a binding that builds but fails its known-answer check: nothing replaced, the agent trains on the next backend', async () => {
    const dir = await home();
    const wheel = await fakeWheel(dir, PINNED);
    const sha256 = await sha256File(wheel);
    // A previous, working install must survive the failed one untouched.
    await mkdir(nativeDir(dir), { recursive: true });
    await writeFile(join(nativeDir(dir), 'previous-install'), '');
    await expect(installNative({ home: dir, wheel, sha256, build: brokenBinding })).rejects.toThrow(
      /built but failed its known-answer check.*dense: .*Nothing was installed; the agent keeps using the next backend/,
    );
    await expectNothingInstalled(dir, 'previous-install');
  });

  it('a broken native backend already in place is skipped at start, with its reason, and another trains', async () => {
    const dir = await home();
    await brokenBinding(nativeDir(dir));
    await writeFile(join(nativeDir(dir), MANIFEST), JSON.stringify({ kind: 'native', tensorflow: {} }));
    const chosen = await checkBackend('auto', dir);
    expect(chosen.passed).toBe(true);
    expect(chosen.id).not.toBe('native');
    expect(chosen.skipped).toContainEqual({
      id: 'native',
      reason: expect.stringMatching(/known-answer check/),
    });
  });
});
