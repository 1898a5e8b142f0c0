/**
 * The TensorFlow wheel: which one this machine can use, whether its bytes are the pinned ones, and
 * the few files the native backend takes from it (the C library and the C API headers).
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import yauzl from 'yauzl';
import { NativeInstallError } from '../errors.js';
import { PINNED_WHEELS, type PinnedWheel } from './pins.js';

/** Parts of a wheel file name (PEP 427): `{project}-{version}-{python}-{abi}-{platform}.whl`. */
export interface WheelName {
  project: string;
  version: string;
  python: string;
  abi: string;
  platform: string;
}

export function parseWheelName(file: string): WheelName | undefined {
  const match = /^([A-Za-z0-9_.]+)-([^-]+)-([^-]+)-([^-]+)-([^-]+)\.whl$/.exec(basename(file));
  if (match === null) return undefined;
  const [, project = '', version = '', python = '', abi = '', platform = ''] = match;
  return { project: project.toLowerCase().replaceAll('_', '-'), version, python, abi, platform };
}

/** This machine as wheel platform tags spell it (`x86_64`, `aarch64`), and its glibc version. */
export function machinePlatform(): { os: string; arch: string; glibc: string | undefined } {
  const arch = process.arch === 'x64' ? 'x86_64' : process.arch === 'arm64' ? 'aarch64' : process.arch;
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)
    ?.header;
  return { os: process.platform, arch, glibc: header?.glibcVersionRuntime };
}

/**
 * Why this machine cannot use a wheel built for `platform` (a tag such as
 * `manylinux_2_27_x86_64`), or undefined when it can.
 */
export function platformProblem(platform: string, machine = machinePlatform()): string | undefined {
  const here = `${machine.os} ${machine.arch}${machine.glibc ? ` with glibc ${machine.glibc}` : ''}`;
  const linux = /^(?:many)?linux(?:_(\d+)_(\d+)|2014|1|2010)?_(.+)$/.exec(platform);
  if (linux === null || machine.os !== 'linux')
    return `it is built for ${platform}, and this machine is ${here}`;
  const [, major, minor, arch] = linux;
  if (arch !== machine.arch) return `it is built for ${platform} (${arch}), and this machine is ${here}`;
  if (major !== undefined && minor !== undefined && machine.glibc !== undefined) {
    const [haveMajor = 0, haveMinor = 0] = machine.glibc.split('.').map(Number);
    if (haveMajor < Number(major) || (haveMajor === Number(major) && haveMinor < Number(minor))) {
      return `it needs glibc ${major}.${minor} or newer, and this machine is ${here}`;
    }
  }
  return undefined;
}

/** The pin a wheel file of `project` must match, or a NativeInstallError saying why there is none. */
export function pinFor(file: string, project: PinnedWheel['project'], sha256?: string): PinnedWheel {
  const name = parseWheelName(file);
  if (name === undefined) {
    throw new NativeInstallError(
      `${basename(file)} is not a wheel file name (project-version-python-abi-platform.whl).`,
    );
  }
  if (name.project !== project) {
    throw new NativeInstallError(
      `${basename(file)} is a ${name.project} wheel; this install needs ${project}${project === 'tensorflow' ? ' (the CUDA build, for --gpu)' : '; pass --gpu to build on the CUDA wheel, tensorflow'}.`,
    );
  }
  const platform = platformProblem(name.platform);
  if (platform !== undefined) throw new NativeInstallError(`Cannot use ${basename(file)}: ${platform}.`);
  if (sha256 !== undefined) return { project, file: basename(file), sha256: sha256.toLowerCase() };
  const pin = PINNED_WHEELS.find((p) => p.file === basename(file));
  if (pin === undefined) {
    const pinned = PINNED_WHEELS.filter((p) => p.project === project).map((p) => p.file);
    throw new NativeInstallError(
      `${basename(file)} (${name.project} ${name.version} for Python ${pythonOf(name.python)}, ${name.platform}) is not a pinned wheel; pinned: ${pinned.length > 0 ? pinned.join(', ') : 'none'}. Use a pinned wheel, or verify this one's sha256 by other means and pass --sha256 HEX.`,
    );
  }
  return pin;
}

const pythonOf = (tag: string) => {
  const match = /^cp(\d)(\d+)$/.exec(tag);
  return match ? `${match[1]}.${match[2]}` : tag;
};

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

/** Checks `file` hashes to `pin.sha256`; a NativeInstallError naming both hashes when it does not. */
export async function verifyWheel(file: string, pin: PinnedWheel): Promise<void> {
  let actual: string;
  try {
    actual = await sha256File(file);
  } catch (cause) {
    throw new NativeInstallError(`Cannot read the wheel ${file}: ${(cause as Error).message}.`, { cause });
  }
  if (actual !== pin.sha256) {
    throw new NativeInstallError(
      `${basename(file)} has sha256 ${actual}, not the pinned ${pin.sha256}: it is not the wheel RadFed was built against (corrupt, truncated or substituted). Download it again from your PyPI index.`,
    );
  }
}

/** The wheel members the binding needs: the C library, its framework library, the C API headers. */
const LIBRARIES = ['tensorflow/libtensorflow_cc.so.2', 'tensorflow/libtensorflow_framework.so.2'];
const HEADER_DIRS = [
  'tensorflow/include/tensorflow/c/',
  'tensorflow/include/tensorflow/core/platform/',
  'tensorflow/include/tsl/',
  'tensorflow/include/xla/tsl/c/',
];

/**
 * Extracts the libraries into `dest/lib` and the headers into `dest/include` (paths as under the
 * wheel's `tensorflow/include`).
 *
 * @throws NativeInstallError when the wheel is not a zip or lacks one of the libraries.
 */
export async function extractTensorflow(wheel: string, dest: string): Promise<void> {
  let zip: yauzl.ZipFile;
  try {
    zip = await yauzl.openPromise(wheel, { lazyEntries: true });
  } catch (cause) {
    throw new NativeInstallError(
      `${basename(wheel)} is not a readable wheel (zip): ${(cause as Error).message}.`,
      {
        cause,
      },
    );
  }
  const found = new Set<string>();
  try {
    await new Promise<void>((resolve, reject) => {
      zip.on('error', reject);
      zip.on('end', resolve);
      zip.on('entry', (entry: yauzl.Entry) => {
        const name = entry.fileName;
        const target = LIBRARIES.includes(name)
          ? join(dest, 'lib', basename(name))
          : HEADER_DIRS.some((d) => name.startsWith(d)) && !name.endsWith('/')
            ? join(dest, 'include', name.slice('tensorflow/include/'.length))
            : undefined;
        if (target === undefined) {
          zip.readEntry();
          return;
        }
        found.add(name);
        mkdir(dirname(target), { recursive: true })
          .then(() => zip.openReadStreamPromise(entry))
          .then((stream) => pipeline(stream, createWriteStream(target)))
          .then(() => zip.readEntry(), reject);
      });
      zip.readEntry();
    });
  } finally {
    zip.close();
  }
  const missing = [...LIBRARIES, 'tensorflow/include/tensorflow/c/c_api.h'].filter((m) => !found.has(m));
  if (missing.length > 0) {
    throw new NativeInstallError(
      `${basename(wheel)} lacks ${missing.join(', ')}: it is not a TensorFlow ${'wheel'} RadFed can build on.`,
    );
  }
}
