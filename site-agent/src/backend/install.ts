/**
 * `radfed-agent backend install native`: builds `@tensorflow/tfjs-node`'s binding against the C
 * library in TensorFlow's PyPI wheel, so a site with only a PyPI index (or mirror) and npm gets
 * native TensorFlow without the binding's own download from Google's storage.
 *
 * Steps: check the build tools; `pip download --no-deps` the pinned wheel (pip's configured index
 * is the only network access besides npm's registry); check its sha256 against the pinned list;
 * take `libtensorflow_cc.so.2`, `libtensorflow_framework.so.2` and the C API headers; `npm install
 * --ignore-scripts @tensorflow/tfjs-node`; point its `deps/` at those files; `node-gyp rebuild`;
 * run the known-answer check in a child process. All of it happens in a temporary folder beside
 * the target, renamed into place only after the check passes: a failure at any step leaves the
 * previous install (or none) exactly as it was.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { NativeInstallError } from '../errors.js';
import { checkBackend } from './check.js';
import { backendsHome, MANIFEST, type NativeManifest, nativeDir } from './native-home.js';
import { PINNED_WHEELS, type PinnedWheel, TENSORFLOW_VERSION, TFJS_NODE_VERSION } from './pins.js';
import { findPip, nodePrefix, requireBuildTools, runTool } from './tools.js';
import { extractTensorflow, parseWheelName, pinFor, verifyWheel } from './wheel.js';

export interface InstallNativeOptions {
  /** Backends folder (default {@link backendsHome}); the backend goes to `<home>/native`. */
  home?: string;
  /** A wheel already downloaded (air-gapped sites); default: `pip download` it. */
  wheel?: string;
  /** Build on the CUDA wheel (`tensorflow`) instead of `tensorflow-cpu`. */
  gpu?: boolean;
  /** Accept a wheel with this sha256 instead of a pinned one (the operator verified it). */
  sha256?: string;
  /** Environment of the tools (PATH, pip and npm configuration); default process.env. */
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
  /** Replaces the compile steps (tests): must leave a loadable tfjs-node under `stage`. */
  build?: (stage: string, tensorflow: string) => Promise<void>;
}

/**
 * Builds and checks the native backend, then moves it into place.
 *
 * @returns the manifest of the installed backend.
 * @throws NativeInstallError saying which step failed and why; nothing is left half-installed.
 */
export async function installNative(options: InstallNativeOptions = {}): Promise<NativeManifest> {
  // Absolute, since pip and node-gyp run with other working directories.
  const home = options.home !== undefined ? resolve(options.home) : backendsHome();
  const env = options.env ?? process.env;
  const log = options.log ?? (() => {});
  const project: PinnedWheel['project'] = options.gpu ? 'tensorflow' : 'tensorflow-cpu';
  if (options.sha256 === undefined && !PINNED_WHEELS.some((p) => p.project === project)) {
    throw new NativeInstallError(
      `No ${project} wheel is pinned in this release${options.gpu ? ' (the CUDA build could not be fetched or tested where RadFed is built)' : ''}: check the wheel's sha256 against PyPI's published hash and pass it with --sha256 HEX. Nothing was installed.`,
    );
  }
  let pin = options.wheel === undefined ? undefined : pinFor(options.wheel, project, options.sha256);
  if (options.build === undefined) requireBuildTools(env);

  await mkdir(home, { recursive: true });
  await removeStale(home);
  const temp = join(home, `.install-${randomBytes(4).toString('hex')}`);
  const stage = nativeDir(temp);
  await mkdir(stage, { recursive: true });
  try {
    let wheel = options.wheel;
    if (wheel === undefined) {
      log(`downloading ${project}==${TENSORFLOW_VERSION} with pip (its configured index)`);
      wheel = await pipDownload(project, join(temp, 'wheel'), env);
      pin = pinFor(wheel, project, options.sha256);
    }
    if (pin === undefined) throw new NativeInstallError('internal: no wheel pin');
    log(`checking the sha256 of ${pin.file}`);
    await verifyWheel(wheel, pin);

    const tensorflow = join(stage, 'tensorflow');
    log('extracting the TensorFlow C library and headers');
    await extractTensorflow(wheel, tensorflow);
    await rm(join(temp, 'wheel'), { recursive: true, force: true });
    await (options.build ?? ((s, t) => buildBinding(s, t, env, log)))(stage, tensorflow);

    const manifest: NativeManifest = {
      kind: 'native',
      gpu: options.gpu === true,
      tensorflow: { project, version: TENSORFLOW_VERSION, wheel: pin.file, sha256: pin.sha256 },
      tfjsNode: TFJS_NODE_VERSION,
      builtAt: new Date().toISOString(),
      node: process.version,
      knownAnswer: { passed: false, ms: 0 },
    };
    await writeManifest(stage, manifest);
    log('running the known-answer check on the new binding');
    const check = await checkBackend('native', temp);
    if (!check.passed) {
      throw new NativeInstallError(
        `The native backend built but failed its known-answer check, so it cannot be trusted to train: ${check.reason}. Nothing was installed; the agent keeps using the next backend (WASM).`,
      );
    }
    manifest.knownAnswer = { passed: true, ms: Math.round(check.warmMs ?? 0) };
    await writeManifest(stage, manifest);

    const target = nativeDir(home);
    await rename(target, join(temp, 'previous')).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
    await rename(stage, target);
    log(`installed in ${target}`);
    return manifest;
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}

const writeManifest = (stage: string, manifest: NativeManifest) =>
  writeFile(join(stage, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);

/** Leftovers of an install that was killed part-way (never loaded: the agent reads only `native`). */
async function removeStale(home: string): Promise<void> {
  for (const name of await readdir(home)) {
    if (name.startsWith('.install-')) await rm(join(home, name), { recursive: true, force: true });
  }
}

/** `pip download`s exactly the pinned wheel's tags, whatever Python this machine has. */
async function pipDownload(
  project: PinnedWheel['project'],
  dest: string,
  env: NodeJS.ProcessEnv,
): Promise<string> {
  const pip = findPip(env);
  if (pip === undefined) {
    throw new NativeInstallError(
      'Cannot download the TensorFlow wheel: pip is not installed (install python3-pip, or download the wheel on another machine and pass --wheel FILE). Nothing was installed; the agent keeps using WASM.',
    );
  }
  const reference = PINNED_WHEELS.find((p) => p.project === 'tensorflow-cpu');
  const tags = parseWheelName(reference?.file ?? '');
  if (tags === undefined) throw new NativeInstallError('internal: no pinned wheel to take tags from');
  const [cmd = 'pip', ...pre] = pip;
  await mkdir(dest, { recursive: true });
  await runTool(
    `pip download ${project}==${TENSORFLOW_VERSION}`,
    cmd,
    [
      ...pre,
      'download',
      '--no-deps',
      '--only-binary=:all:',
      '--implementation',
      'cp',
      '--python-version',
      tags.python.replace(/^cp(\d)/, '$1.'),
      '--abi',
      tags.abi,
      '--platform',
      tags.platform,
      '--dest',
      dest,
      `${project}==${TENSORFLOW_VERSION}`,
    ],
    { cwd: dest, env },
  );
  const file = (await readdir(dest)).find((f) => f.endsWith('.whl'));
  if (file === undefined) throw new NativeInstallError(`pip download saved no wheel in ${dest}.`);
  return join(dest, file);
}

/** npm-installs tfjs-node (no install scripts), links its deps/ to the wheel's files, compiles. */
async function buildBinding(
  stage: string,
  tensorflow: string,
  env: NodeJS.ProcessEnv,
  log: (line: string) => void,
): Promise<void> {
  await writeFile(
    join(stage, 'package.json'),
    `${JSON.stringify({ private: true, dependencies: { '@tensorflow/tfjs-node': TFJS_NODE_VERSION } }, null, 2)}\n`,
  );
  log(`npm install --ignore-scripts @tensorflow/tfjs-node@${TFJS_NODE_VERSION}`);
  await runTool(
    'npm install @tensorflow/tfjs-node',
    'npm',
    ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--omit=dev'],
    { cwd: stage, env },
  );
  const pkg = join(stage, 'node_modules', '@tensorflow', 'tfjs-node');
  const deps = join(pkg, 'deps');
  await mkdir(join(deps, 'lib'), { recursive: true });
  // Relative links, so the folder still works after it is renamed into place.
  await symlink(relative(deps, join(tensorflow, 'include')), join(deps, 'include'));
  const lib = (name: string) => relative(join(deps, 'lib'), join(tensorflow, 'lib', name));
  for (const name of ['libtensorflow.so', 'libtensorflow.so.2', 'libtensorflow_cc.so.2']) {
    await symlink(lib('libtensorflow_cc.so.2'), join(deps, 'lib', name));
  }
  for (const name of ['libtensorflow_framework.so', 'libtensorflow_framework.so.2']) {
    await symlink(lib('libtensorflow_framework.so.2'), join(deps, 'lib', name));
  }
  log('compiling the binding (node-gyp, about 15-30 s)');
  const gyp = createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
  await runTool(
    'node-gyp rebuild of the tfjs-node binding',
    process.execPath,
    [
      gyp,
      'rebuild',
      `--nodedir=${nodePrefix()}`,
      '--module_name=tfjs_binding',
      '--module_path=lib/napi-v8',
      '--napi_build_version=8',
    ],
    { cwd: pkg, env },
  );
  const binding = join(pkg, 'lib', 'napi-v8', 'tfjs_binding.node');
  await mkdir(dirname(binding), { recursive: true });
  await copyFile(join(pkg, 'build', 'lib', 'napi-v8', 'tfjs_binding.node'), binding);
  await rm(join(pkg, 'build'), { recursive: true, force: true });
}
