/** Model export: safetensors / tfjs files, config.json and the signed model card. */

export { encoderFeatures } from './features.js';
export {
  type ExportFormat,
  exportModel,
  type ModelExportOptions,
  type ModelExportResult,
} from './model-export.js';
export { decodeSafetensors, encodeSafetensors, type NamedTensor } from './safetensors.js';
export { encoderLayersModel, saveLayersModel } from './tfjs-model.js';
export { torchStateDict } from './torch-names.js';
