/**
 * Complete, compiled file descriptors for server reflection, so stock tools (grpcurl, `buf curl`)
 * work without the .proto files. `pnpm proto:gen` writes them next to the generated code with
 * `buf build`: the radfed.v1 files with their imports, and the standard grpc.health.v1 service.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';

const GEN = join(dirname(fileURLToPath(import.meta.url)), 'gen');
const SETS = ['radfed-v1.binpb', 'grpc-health-v1.binpb'];

/** One serialized `google.protobuf.FileDescriptorProto` per file, every import included. */
export function reflectionFileDescriptors(): Uint8Array[] {
  return SETS.flatMap((name) =>
    fromBinary(FileDescriptorSetSchema, readFileSync(join(GEN, name))).file.map((file) =>
      toBinary(FileDescriptorProtoSchema, file),
    ),
  );
}
