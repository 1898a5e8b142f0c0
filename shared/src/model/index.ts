export type { ModelSpec, ModelSpecOverrides, SupportedArchitecture, TensorSpec } from './spec.js';
export {
  builtinModelSpec,
  checkModelSpec,
  modelSpecSchema,
  parameterCount,
  SUPPORTED_ARCHITECTURES,
  sharedParameterCount,
  tensorSpecSchema,
} from './spec.js';
